"""Metrics and health probes of a hub and of the archiver."""
