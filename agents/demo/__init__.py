"""``i247 demo`` and ``i247 simulate``: the whole backbone on one machine."""
