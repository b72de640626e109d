"""A throwaway real Gerrit on loopback: init a site, start the daemon, wait until ready, stop.

The Gerrit release and its jars come from ``scripts/ensure-gerrit`` (the one place the version
is pinned); it is assembled from Gerrit's published Maven jars and runs ``--headless`` (REST and
SSH, no web UI). ``init --dev`` makes an ``admin`` account (HTTP password ``secret``) and uses
DEVELOPMENT_BECOME_ANY_ACCOUNT, which keeps HTTP basic auth with passwords working on ``/a/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[3]
ENSURE_SCRIPT = REPO_ROOT / "scripts" / "ensure-gerrit"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "secret"  # what `init --dev` gives the admin account
READY_LINE = "Gerrit Code Review [headless]"
# Fast start-up matters more than peak throughput for a test server on a shared 2-core machine.
JVM_OPTIONS = ("-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss1m")


class GerritSiteError(RuntimeError):
    """The real Gerrit could not be had or did not start; the message says what is missing."""


def ensure_gerrit() -> tuple[str, str]:
    """(pinned version, Java class path), fetching the jars on first use."""
    if not ENSURE_SCRIPT.is_file():
        raise GerritSiteError(f"{ENSURE_SCRIPT} not found (run from a cidash checkout)")
    run = subprocess.run([str(ENSURE_SCRIPT), "--classpath"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise GerritSiteError(run.stderr.strip() or f"{ENSURE_SCRIPT} failed with status {run.returncode}")
    version = subprocess.run([str(ENSURE_SCRIPT), "--version"], capture_output=True, text=True, check=True)
    return version.stdout.strip(), run.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class GerritSite:
    """One Gerrit site directory and its daemon process."""

    directory: Path
    classpath: str
    version: str
    http_port: int = 0
    ssh_port: int = 0
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "daemon.out"  # not in logs/: Gerrit compresses and prunes that

    def _java(self, *args: str) -> list[str]:
        return ["java", *JVM_OPTIONS, "-cp", self.classpath, "com.google.gerrit.launcher.GerritLauncher", *args]

    def init(self, timeout_s: float = 240.0) -> None:
        """`init --batch --dev`, then loopback-only listeners on free ports and no outgoing mail."""
        run = subprocess.run(
            self._java("init", "--batch", "--dev", "--no-auto-start", "--skip-plugins", "-d", str(self.directory)),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if run.returncode != 0:
            raise GerritSiteError(f"gerrit init failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
        self.http_port = self.http_port or free_port()
        self.ssh_port = self.ssh_port or free_port()
        self.configure(
            {
                "gerrit.canonicalWebUrl": f"{self.url}/",
                "httpd.listenUrl": f"{self.url}/",
                "sshd.listenAddress": f"127.0.0.1:{self.ssh_port}",
                "sendemail.enable": "false",
                "sshd.threads": "4",
                "index.batchThreads": "1",
            }
        )

    def configure(self, values: dict[str, str]) -> None:
        config = self.directory / "etc" / "gerrit.config"
        for key, value in values.items():
            subprocess.run(["git", "config", "-f", str(config), key, value], check=True)

    def host_public_keys(self) -> list[str]:
        """The site's SSH host public keys (`type base64`), for a known_hosts line."""
        return [
            " ".join(path.read_text().split()[:2]) for path in sorted((self.directory / "etc").glob("ssh_host_*.pub"))
        ]

    def write_known_hosts(self, path: Path) -> Path:
        path.write_text("".join(f"[127.0.0.1]:{self.ssh_port} {key}\n" for key in self.host_public_keys()))
        return path

    def start(self, timeout_s: float = 180.0) -> None:
        if self._process is not None:
            raise GerritSiteError("Gerrit is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._java("daemon", "-d", str(self.directory), "--headless", "--console-log"),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GERRIT_SITE": str(self.directory)},
            start_new_session=True,  # Ctrl-C in a terminal reaches cidash, which then stops Gerrit itself
        )
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            if READY_LINE in text and " ready" in text:
                return
            if self._process.poll() is not None:
                self._process = None
                raise GerritSiteError(f"Gerrit exited during start-up; log tail:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise GerritSiteError(f"Gerrit not ready after {timeout_s:.0f} s; log tail:\n{text[-3000:]}")
            time.sleep(0.2)

    def stop(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def create_site(directory: Path) -> GerritSite:
    """A new site in `directory` (fetching the pinned jars first if needed), initialised, not started."""
    version, classpath = ensure_gerrit()
    if shutil.which("java") is None:
        raise GerritSiteError("java not found on PATH")
    site = GerritSite(directory=directory, classpath=classpath, version=version)
    site.init()
    return site
