"""``python -m streams.databases``: build the simulated databases once, before the hubs start.

Every hub opens them at start; building them there would make three hubs build the same
files side by side on a first run. The demo runs this first, with the hubs' environment.
"""

from __future__ import annotations

import time

from brokers.settings import Settings
from streams.databases import open_configured

if __name__ == "__main__":
    started = time.monotonic()
    settings = Settings.from_env()
    databases = open_configured(settings)
    sizes = {name: f"{size:,}" for name, size in settings.database_sizes.items()}
    databases.close()
    print(f"simulated databases ready in {time.monotonic() - started:.1f} s: {sizes}")
