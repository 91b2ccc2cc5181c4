"""The audit archiver: every backbone record, appended to the archive."""
