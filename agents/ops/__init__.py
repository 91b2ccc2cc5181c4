"""Operators' tools: audit, replay, dead letters, keys, status, the dashboard."""
