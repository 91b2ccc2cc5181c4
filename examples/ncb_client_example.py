"""Two bureaus through the backbone with ``NcbClient``: send, open, acknowledge, receipt.

Run it against a running backbone (a hub on duty; ``i247 keys init`` and ``i247 provision``
done), with the same ``I247_*`` variables as the hub::

    I247_BOOTSTRAP=127.0.0.1:9092 python examples/ncb_client_example.py

France sends Germany a message; Germany opens and acknowledges it; France reads the CCC's
delivery receipt and Germany's acknowledgement. Run it twice: each run sends a new message
and each client reads on from where its last run stopped (under ``I247_DATA_DIR``).
tests/integration/test_ncb_client_cli.py runs it.
"""

from __future__ import annotations

import asyncio
import sys

from agents.ncb.client import InboxMessage, InboxReceipt, NcbClient
from brokers.settings import Settings
from schemas.bodies import MessageBody
from schemas.header import MessageType, Precedence


async def main() -> int:
    settings = Settings.from_env()  # I247_BOOTSTRAP, I247_KEYS_DIR, I247_DATA_DIR, ...
    async with (
        NcbClient("FRA", settings.keys_dir, settings) as france,
        NcbClient("DEU", settings.keys_dir, settings) as germany,
    ):
        sent = await france.send(
            ["DEU"],
            MessageBody(subject="Vehicle seized", text="VIN WDB1240221A123456 at Kehl"),
            precedence=Precedence.PRIORITY,
        )
        print(f"FRA sent {sent}")

        async for item in germany.inbox(follow=True):
            if isinstance(item, InboxMessage) and item.message_id == sent:
                print(f"DEU opened {item.message_id}: {item.body}")
                ack = await germany.ack(item)
                print(f"DEU acknowledged it with {ack}")
                break

        receipted = acknowledged = False
        async for item in france.inbox(follow=True):
            if isinstance(item, InboxReceipt) and sent in repr(item.item):
                receipted = True
                print(f"FRA got the CCC's receipt (offset {item.offset})")
            elif (
                isinstance(item, InboxMessage)
                and item.header.message_type is MessageType.ACKNOWLEDGEMENT
                and item.header.correlation_id == sent
            ):
                acknowledged = True
                print(f"FRA got DEU's acknowledgement {item.message_id}")
            if receipted and acknowledged:
                break
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(), timeout=120)))
