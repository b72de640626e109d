"""Fixtures of the browser tests: `cidash demo` in a subprocess, its live feed, and Debian's Chromium.

The fixtures are package-scoped: the demo, the feed listener and the browser start once for
tests/browser and stop when its last test is done (not at the end of the whole pytest session).
Playwright's sync API is used; it never downloads a browser: it drives /usr/bin/chromium
(`scripts/ensure-browser` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.wait import until_blocking

ROOT = Path(__file__).resolve().parents[2]
DIST_INDEX = ROOT / "frontend" / "dist" / "index.html"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_ARGS = ["demo", "--port", "0", "--rate", "8", "--history", "1d"]
DEMO_START_TIMEOUT_S = 120.0
# the default rules plus an incident from each counted failure to the next pass: live traffic then
# opens incidents within seconds (the toast test), and a day of history has pages of notifications
DEMO_RULES = [
    {"name": "consecutive-failures", "kind": "consecutive_failures", "count": 3},
    {"name": "failure-rate", "kind": "failure_rate"},
    {"name": "silent", "kind": "silent"},
    {"name": "each-failure", "kind": "failure", "for_s": 0, "clear_s": 0},
]
DEMO_ENV = {"CIDASH_ALERTS": json.dumps(DEMO_RULES)}
DEMO_LINE = re.compile(r"dashboard at (http://127\.0\.0\.1:\d+/).*simulated Gerrit at (http://127\.0\.0\.1:\d+)")
WRITE_TOKEN_LINE = re.compile(r"write token \(acks, silences\): (\S+)")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}

# Recorded in every page from its start: each toast when it enters the DOM (text, epoch ms), and each
# change of the connection indicator (`conn-state`), so that a test can tell what the page showed when.
PAGE_RECORDER = """
(() => {
  const seen = new WeakSet();
  window.__cidashToasts = [];
  window.__cidashConn = [];
  const scan = () => {
    for (const el of document.querySelectorAll('[data-testid="toast"]')) {
      if (seen.has(el)) continue;
      seen.add(el);
      window.__cidashToasts.push({ text: el.textContent || '', at: Date.now() });
    }
    const conn = document.querySelector('[data-testid="conn-state"]');
    const state = conn ? (conn.textContent || '').trim() : '';
    const last = window.__cidashConn[window.__cidashConn.length - 1];
    if (state && (!last || last.state !== state)) window.__cidashConn.push({ state, at: Date.now() });
  };
  new MutationObserver(scan).observe(document, { childList: true, subtree: true, characterData: true });
})();
"""


# -- the demo ------------------------------------------------------------------------------------------


@dataclass
class Demo:
    url: str  # the dashboard, ends with "/"
    sim_url: str  # the simulated Gerrit's REST API
    process: subprocess.Popen[str]
    output: list[str]

    @property
    def api(self) -> str:
        return self.url + "api/v1"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "api/v1/ws"

    def get(self, path: str, timeout: float = 10.0) -> Any:
        """GET `path` (under /api/v1) as JSON."""
        with urllib.request.urlopen(self.api + path, timeout=timeout) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return "".join(self.output[-200:])

    def write_token(self) -> str:
        """The write token the demo prints (for acks, silences, maintenance)."""
        return until_blocking(
            lambda: next((m.group(1) for m in map(WRITE_TOKEN_LINE.search, self.output) if m), None),
            90,
            "the demo's write token",
        )


def read_output(
    process: subprocess.Popen[str], output: list[str], line_seen: threading.Event, pattern: re.Pattern[str] = DEMO_LINE
) -> None:
    """Collect the process's output; set `line_seen` at the first line matching `pattern` (or at its end)."""
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if pattern.search(line):
            line_seen.set()
    line_seen.set()  # the process ended: wake the waiter


def stop_process(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class Started:
    match: re.Match[str]  # the line that said it was ready
    process: subprocess.Popen[str]
    output: list[str]


@contextlib.contextmanager
def running_cidash(
    args: list[str], ready: re.Pattern[str], timeout_s: float, *, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Iterator[Started]:
    """`cidash ARGS` in its own process group, until it prints a line matching `ready`; stopped on exit."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environment.pop("CIDASH_CONFIG", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "from cidash.cli import main; main()", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: killed as a whole
    )
    output: list[str] = []
    line_seen = threading.Event()
    threading.Thread(target=read_output, args=(process, output, line_seen, ready), daemon=True).start()
    try:
        line_seen.wait(timeout_s)
        found = next((m for m in map(ready.search, list(output)) if m), None)
        if found is None:
            state = f"exited with {process.poll()}" if process.poll() is not None else "still running"
            pytest.fail(
                f"`cidash {' '.join(args)}` printed no {ready.pattern!r} within {timeout_s:.0f} s "
                f"({state}); its output:\n{''.join(output)}",
                pytrace=False,
            )
        yield Started(found, process, output)
    finally:
        stop_process(process)


API_LINE = re.compile(r"API on (http://127\.0\.0\.1:\d+/)")


@contextlib.contextmanager
def serving_api(directory: Path, env: dict[str, str], events: bytes) -> Iterator[str]:
    """`cidash ingest` of `events` (stream-events lines) into the store `env` names, then
    `cidash serve --role api` over it; yields the API's URL."""
    archive = directory / "events.jsonl"
    archive.write_bytes(events)
    subprocess.run(
        [sys.executable, "-c", "from cidash.cli import main; main()", "ingest", str(archive), "--server", "review"],
        env={**os.environ, **env},
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with running_cidash(["serve", "--role", "api"], API_LINE, 60, cwd=directory, env=env) as started:
        yield started.match.group(1)


@pytest.fixture(scope="package")
def demo() -> Iterator[Demo]:
    dist_index = Path(os.environ.get("CIDASH_FRONTEND_DIR") or DIST_INDEX.parent) / "index.html"
    if not dist_index.is_file():
        pytest.fail(
            f"the dashboard is not built ({dist_index} is missing): run `cd frontend && npm ci && npm run build` "
            "(`make test` does it)",
            pytrace=False,
        )
    with running_cidash(DEMO_ARGS, DEMO_LINE, DEMO_START_TIMEOUT_S, env=DEMO_ENV) as started:
        found = started.match
        yield Demo(url=found.group(1), sim_url=found.group(2), process=started.process, output=started.output)


# -- our own subscriber to the live feed ------------------------------------------------------------------


@dataclass
class FeedMessage:
    received: float  # time.time() when it arrived here
    type: str
    id: int
    data: dict[str, Any]


@dataclass
class Feed:
    """Every message of the demo's websocket feed, as a client of `/api/v1/ws` receives it."""

    url: str
    messages: list[FeedMessage] = field(default_factory=list)
    error: BaseException | None = None
    connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url + "?kinds=run,alert,state", open_timeout=10) as ws:
                self.connected.set()
                last_ping = time.monotonic()
                while not self._stop.is_set():
                    if time.monotonic() - last_ping > 10:  # the server closes idle clients after 45 s
                        ws.send('{"type":"ping"}')
                        last_ping = time.monotonic()
                    try:
                        raw = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    message = json.loads(raw)
                    if message.get("type") in ("run", "alert", "state"):
                        with self._lock:
                            self.messages.append(
                                FeedMessage(time.time(), message["type"], int(message["id"]), message["data"])
                            )
        except BaseException as exc:
            self.error = exc
        finally:
            self.connected.set()

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> list[FeedMessage]:
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, predicate: Callable[[FeedMessage], bool], timeout: float, *, after: int = 0, what: str = "a message"
    ) -> FeedMessage:
        """The first message from index `after` on that satisfies `predicate`, waiting up to `timeout` s."""
        deadline = time.monotonic() + timeout
        index = after
        while True:
            current = self.snapshot()
            for message in current[index:]:
                if predicate(message):
                    return message
            index = len(current)
            if self.error is not None:
                pytest.fail(f"the live feed {self.url} failed: {self.error!r}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} on the live feed {self.url} within {timeout:.0f} s", pytrace=False)
            time.sleep(0.05)


@pytest.fixture(scope="package")
def feed(demo: Demo) -> Iterator[Feed]:
    listener = Feed(demo.ws_url)
    thread = threading.Thread(target=listener.run, name="feed", daemon=True)
    thread.start()
    listener.connected.wait(15)  # a failure to connect is reported by the tests that read the feed
    yield listener
    listener.stop()
    thread.join(5)


# -- the browser -------------------------------------------------------------------------------------------


@dataclass
class PageProblems:
    """What went wrong in any page: console errors, uncaught exceptions, dialogs (alert/confirm)."""

    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="package")
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser (installs Debian's chromium)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


PageFactory = Callable[..., Any]


@pytest.fixture(scope="package")
def new_page(browser: Any, demo: Demo, problems: PageProblems) -> Iterator[PageFactory]:
    """`new_page(viewport=..., color_scheme=...)`: a page in its own context, watched for problems."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] | None = None, color_scheme: str = "light") -> Any:
        context = browser.new_context(
            base_url=demo.url,
            viewport=viewport or DESKTOP,
            color_scheme=color_scheme,
            service_workers="block",
        )
        context.add_init_script(PAGE_RECORDER)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)

        def on_console(message: Any) -> None:
            if message.type == "error":
                problems.console_errors.append(f"{page.url}: console error: {message.text} ({message.location})")

        def on_page_error(error: Any) -> None:
            problems.console_errors.append(f"{page.url}: uncaught: {error}")

        def on_dialog(dialog: Any) -> None:
            problems.dialogs.append(f"{page.url}: {dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


@dataclass
class Watcher:
    page: Any
    opened_at: float  # time.time()


@pytest.fixture(scope="package", autouse=True)
def watcher(new_page: PageFactory, feed: Feed) -> Watcher:
    """A dashboard left open on the overview from the start of the browser tests: every page records
    the toasts it shows (`window.__cidashToasts`), and alerts come in the first seconds of live
    traffic, before the alert test runs. Whether it went live is the alert test's business."""
    page = new_page()
    page.goto("./#/")
    return Watcher(page, time.time())


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
