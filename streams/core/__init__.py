"""The CCC's pure decisions: data in, data (or effects as data) out; no I/O, no clock."""
