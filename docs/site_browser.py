"""A tiny headless-Chromium driver over the DevTools protocol, for the site's tests and screenshots.

Chromium is started with ``--remote-debugging-pipe``: it reads JSON commands, each ended by a NUL
byte, on file descriptor 3 and writes replies and events the same way on descriptor 4. No
websocket library and no browser download: Debian's ``chromium`` is all it needs.

    with Browser() as b:
        page = b.open(Path("docs/_build/html/index.html").resolve().as_uri())
        page.failed            # requests that failed (missing files, blocked loads)
        page.evaluate("document.title")
        page.screenshot("index.png")
"""
from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """The first Chromium-like browser on PATH, or None."""
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


class Browser:
    """One headless Chromium process; :meth:`open` loads a page in a fresh tab."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0):
        self.executable = executable or find_browser()
        if self.executable is None:
            raise RuntimeError("no Chromium found on PATH (apt-get install chromium)")
        self.timeout, self.next_id = timeout, 0
        self.events: queue.Queue = queue.Queue()
        self.replies: dict[int, dict] = {}
        self.lock = threading.Condition()

    def __enter__(self) -> "Browser":
        self.profile = tempfile.TemporaryDirectory(prefix="site-chromium-")
        to_chrome, self.write_end = os.pipe()        # chromium reads commands on fd 3
        self.read_end, from_chrome = os.pipe()       # and writes replies on fd 4

        def as_fds_3_and_4():                        # runs in the child, before exec
            a = fcntl.fcntl(to_chrome, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                 "--remote-debugging-pipe", f"--user-data-dir={self.profile.name}"]
        self.proc = subprocess.Popen([self.executable, *flags, "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     close_fds=False, preexec_fn=as_fds_3_and_4)
        os.close(to_chrome)
        os.close(from_chrome)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.write_end)
        self.profile.cleanup()

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self.read_end, 1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    with self.lock:
                        self.replies[message["id"]] = message
                        self.lock.notify_all()
                else:
                    self.events.put(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its reply; raise on a protocol error."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_end, json.dumps(message).encode() + b"\0")
        with self.lock:
            if not self.lock.wait_for(lambda: self.next_id in self.replies, self.timeout):
                raise TimeoutError(f"no reply to {method} in {self.timeout} s")
            reply = self.replies.pop(self.next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str, width: int = 1280, height: int = 900) -> "Page":
        """Load ``url`` in a new tab and wait for its load event (and MathJax, if any)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        page = Page(self, target, session)
        for domain in ("Network", "Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                  "deviceScaleFactor": 1, "mobile": False}, session)
        self.send("Page.navigate", {"url": url}, session)
        page.wait_for("Page.loadEventFired")
        page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        page.evaluate("new Promise(r => setTimeout(r, 100))")   # late requests, then settle
        page.drain()
        return page


class Page:
    """A loaded tab: the requests that failed and the errors it logged, and a JS evaluator."""

    def __init__(self, browser: Browser, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session
        self.failed: list[str] = []       # "url (reason)" for every failed request
        self.errors: list[str] = []       # exceptions and console errors
        self.requests: dict[str, str] = {}   # request id → URL

    def _note(self, event: dict) -> None:
        method, p = event.get("method"), event.get("params", {})
        if event.get("sessionId") != self.session:
            return
        if method == "Network.requestWillBeSent":
            self.requests[p["requestId"]] = p["request"]["url"]
        elif method == "Network.loadingFailed":
            url = self.requests.get(p["requestId"], p["requestId"])
            why = p.get("blockedReason") or p.get("errorText")
            self.failed.append(f"{url} ({why})")
        elif method == "Network.responseReceived" and p["response"].get("status", 200) >= 400:
            self.failed.append(f"{p['response']['url']} (HTTP {p['response']['status']})")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(p["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            self.errors.append(f"{p['entry'].get('url', '')}: {p['entry']['text']}")

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.browser.timeout
        while time.monotonic() < deadline:
            try:
                event = self.browser.events.get(timeout=0.5)
            except queue.Empty:
                continue
            self._note(event)
            if event.get("method") == method and event.get("sessionId") == self.session:
                return
        raise TimeoutError(f"{method} not seen in {self.browser.timeout} s")

    def drain(self) -> None:
        while not self.browser.events.empty():
            self._note(self.browser.events.get())

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (promises awaited), as JSON-able data."""
        result = self.browser.send("Runtime.evaluate", {"expression": expression,
                                   "awaitPromise": True, "returnByValue": True}, self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def platform_fonts(self, selector: str) -> list[dict]:
        """The fonts the browser really drew the text of the first element matching
        ``selector`` with: [{"familyName", "glyphCount", …}] (DevTools' CSS domain). A family
        that is not installed never shows up here, whatever the stylesheet asks for."""
        self.browser.send("DOM.enable", session=self.session)
        self.browser.send("CSS.enable", session=self.session)
        root = self.browser.send("DOM.getDocument", session=self.session)["root"]["nodeId"]
        node = self.browser.send("DOM.querySelector", {"nodeId": root, "selector": selector},
                                 self.session)["nodeId"]
        if not node:
            raise LookupError(f"no element matches {selector!r}")
        return self.browser.send("CSS.getPlatformFontsForNode", {"nodeId": node},
                                 self.session)["fonts"]

    def screenshot(self, path: Path, full_height: int = 2400) -> Path:
        """A PNG of the top of the page (up to ``full_height`` CSS pixels tall)."""
        import base64
        height = min(full_height, int(self.evaluate("document.documentElement.scrollHeight")))
        self.browser.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": height,
                          "deviceScaleFactor": 1, "mobile": False}, self.session)
        data = self.browser.send("Page.captureScreenshot", {"format": "png"}, self.session)
        Path(path).write_bytes(base64.b64decode(data["data"]))
        return Path(path)

    def close(self) -> None:
        self.drain()
        self.browser.send("Target.closeTarget", {"targetId": self.target})
