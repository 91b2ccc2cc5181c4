"""Headless Chromium driven over the DevTools protocol (a websocket, through aiohttp).

Enough to open a page, evaluate JavaScript in it and take a screenshot: what the
dashboard's test needs, without a browser-automation package. Chromium writes the port
it picked (``--remote-debugging-port=0``) to ``DevToolsActivePort`` in its profile
directory; ``/json/list`` then names the page's websocket.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from brokers.clients import terminate

__all__ = ["CHROMIUM", "Chromium", "ChromiumError", "chromium_flags"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class ChromiumError(RuntimeError):
    """The browser did not start, or a DevTools call failed; the message says which."""


def chromium_flags(profile: Path) -> list[str]:
    """Headless, sandbox-less (containers), and quiet: no network of its own, no updates."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]


class Chromium:
    """``async with Chromium(url, profile) as page: await page.evaluate("1 + 1")``."""

    def __init__(self, url: str, profile: Path, *, width: int = 1500, height: int = 1000):
        if CHROMIUM is None:
            raise ChromiumError("chromium is not installed (apt-get install -y chromium)")
        self._command = [
            CHROMIUM,
            *chromium_flags(profile),
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            url,
        ]
        self._profile = profile
        self._process: subprocess.Popen[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Chromium:
        self._process = await asyncio.to_thread(self._launch)
        try:
            port = await self._port(timeout=30.0)
            self._session = aiohttp.ClientSession()
            socket_url = await self._page_socket(port, timeout=30.0)
            self._socket = await self._session.ws_connect(socket_url, max_msg_size=0)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    def _launch(self) -> subprocess.Popen[bytes]:
        self._profile.mkdir(parents=True, exist_ok=True)
        with (self._profile / "chromium.out").open("ab") as log:
            return subprocess.Popen(
                self._command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()
        if self._process is not None:
            await asyncio.to_thread(terminate, self._process, 5.0)

    async def _port(self, timeout: float) -> int:
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ChromiumError(f"chromium exited; see {self._profile / 'chromium.out'}")
            if marker.exists() and (lines := marker.read_text().split()):
                return int(lines[0])
            await asyncio.sleep(0.2)
        raise ChromiumError(f"chromium wrote no DevToolsActivePort within {timeout:.0f} s")

    async def _page_socket(self, port: int, timeout: float) -> str:
        assert self._session is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json(content_type=None)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
            await asyncio.sleep(0.2)
        raise ChromiumError("chromium opened no page")

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its ``result``."""
        assert self._socket is not None
        ident = next(self._ids)
        await self._socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = await self._socket.receive(timeout=30.0)
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise ChromiumError(f"DevTools socket closed during {method}")
            reply = json.loads(message.data)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def text(self, element_id: str) -> str | None:
        """The text of the element with that id, or None if there is none."""
        return await self.evaluate(  # type: ignore[no-any-return]
            f"(document.getElementById({json.dumps(element_id)}) || {{}}).textContent ?? null"
        )

    async def screenshot(self, path: Path) -> None:
        result = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))
