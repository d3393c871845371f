"""Headless Chromium for the viewer's tests: a small DevTools-protocol client over a pipe.

`Chromium()` starts Debian's `chromium` headless with `--remote-debugging-pipe` (the protocol
over file descriptors 3 and 4 of the child: no port, no websocket library) and the flags
that keep it off the network; `page = browser.new_page(width, height)` opens a tab, and
`page.goto(url)`, `page.evaluate(js)`, `page.wait_for(js)`, `page.screenshot(path)` drive
it. JavaScript dialogs (`alert`) are recorded in `page.dialogs` and dismissed, so a test
can assert that a page opened none.

`find_chromium()` returns the executable or None; `require_chromium()` skips the test when
there is none, or fails it when OR_ENV_REQUIRE_CHROMIUM=1 (CI installs Chromium and sets
it, so a broken install cannot pass as skipped tests).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "OR_ENV_REQUIRE_CHROMIUM"
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium fonts-dejavu-core"
EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, as root, without any request to the network (updates, sync, safe browsing...).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    """The Chromium executable; skips the test without one (fails when it is required)."""
    path = find_chromium()
    if path is not None:
        return path
    reason = f"no Chromium on PATH (install it: {INSTALL_HINT})"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


class BrowserError(RuntimeError):
    """The browser answered a command with an error, closed, or did not answer in time."""


class Chromium:
    """A headless Chromium driven over the DevTools pipe (see the module doc)."""

    def __init__(self, executable: str | None = None, timeout_s: float = 60.0) -> None:
        self.executable = executable or require_chromium()
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="or-env-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def place_pipes() -> None:
            # In the child, before exec: the protocol reads fd 3 and writes fd 4. Move both
            # ends out of the way first (either may be 3 or 4 already); os.pipe's own fds
            # are close-on-exec, the dup2 copies are inherited.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)
            os.close(high_r)
            os.close(high_w)

        self.process = subprocess.Popen(
            [
                self.executable,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=place_pipes,
            close_fds=False,  # close_fds would close 3 and 4 after place_pipes
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self.dialogs: list[tuple[str | None, str]] = []  # (session, message) of each dialog

    # ------------------------------------------------------------------ protocol
    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command and wait for its result (events that arrive meanwhile are kept)."""
        wanted = self._write(method, params, session)
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") == wanted:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._event(reply)

    def _write(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _event(self, event: dict[str, Any]) -> None:
        if event["method"] == "Page.javascriptDialogOpening":
            # A dialog blocks the page's script: record it and dismiss it at once.
            session = event.get("sessionId")
            self.dialogs.append((session, event["params"].get("message", "")))
            self._write("Page.handleJavaScriptDialog", {"accept": False}, session)
        else:
            self._events.append(event)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def pump(self, seconds: float = 0.0) -> None:
        """Read the events that are waiting (for up to `seconds`)."""
        deadline = time.monotonic() + seconds
        while True:
            ready, _, _ = select.select(
                [self._from_child], [], [], max(deadline - time.monotonic(), 0)
            )
            if not ready and b"\0" not in self._buffer:
                return
            message = self._read(time.monotonic() + self.timeout_s)
            if "method" in message:
                self._event(message)

    def take_events(self, method: str, session: str | None = None) -> list[dict[str, Any]]:
        """The events of `method` received so far (removed from the queue)."""
        taken = [
            e
            for e in self._events
            if e.get("method") == method and (session is None or e.get("sessionId") == session)
        ]
        self._events = [e for e in self._events if e not in taken]
        return taken

    # ------------------------------------------------------------------ pages
    def new_page(self, width: int = 1280, height: int = 900) -> Page:
        """A new tab of this size, with page and runtime events on."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.resize(width, height)
        return page

    def close(self) -> None:
        """Close the browser and remove its profile."""
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab of a `Chromium` (see the module doc)."""

    def __init__(self, browser: Chromium, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target
        self.console_errors: list[str] = []

    @property
    def dialogs(self) -> list[str]:
        """The messages of the JavaScript dialogs this page opened (each was dismissed)."""
        return [message for session, message in self.browser.dialogs if session == self.session]

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.browser.send(method, params, self.session)
        self._collect()
        return result

    def _collect(self) -> None:
        for event in self.browser.take_events("Runtime.exceptionThrown", self.session):
            details = event["params"].get("exceptionDetails", {})
            self.console_errors.append(
                str((details.get("exception") or {}).get("description") or details.get("text"))
            )

    def close(self) -> None:
        """Close the tab."""
        self.browser.send("Target.closeTarget", {"targetId": self.target})

    def resize(self, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def goto(self, url: str, ready: str = "document.readyState === 'complete'") -> None:
        """Open `url` and wait until the JavaScript expression `ready` is true."""
        self.browser.take_events("Page.loadEventFired", self.session)
        started = self.send("Page.navigate", {"url": url})
        if started.get("errorText"):
            raise BrowserError(f"{url}: {started['errorText']}")
        if started.get("loaderId"):  # a new document (not a fragment change): wait for it
            deadline = time.monotonic() + self.browser.timeout_s
            while not self.browser.take_events("Page.loadEventFired", self.session):
                if time.monotonic() > deadline:
                    raise BrowserError(f"{url} did not load in time")
                self.browser.pump(0.05)
            self._collect()
        self.wait_for(ready)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(
                f"{expression[:80]!r}: "
                f"{(details.get('exception') or {}).get('description') or details.get('text')}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None  # the page is still loading (no document yet)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            self.browser.pump(0.05)
            self._collect()

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        """A PNG of the viewport (or of the whole page, up to 4000 px high)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size[0],
                "height": min(size[1], 4000),
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
