"""A 512 MiB PATCH against a real `cidash serve --role api`: anonymous, then with the write token
(declared length, then chunked). Prints each answer, how long it took, how much the server took
before it stopped reading, and the server's RSS before and at its peak (VmHWM).

    .venv/bin/python benchmarks/body_attack.py [--mib 512]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITE = "bench-write"
CHUNK = b"x" * (1 << 20)


def memory_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for process {pid}")


def attack(port: int, size: int, authorization: str, chunked: bool) -> tuple[str, int]:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"PATCH /api/v1/systems/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{authorization}{framing}\r\n\r\n".encode()
        )
        sent = 0
        sock.settimeout(5)
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
                sent += len(CHUNK)
        except OSError:
            pass
        status = sock.recv(200).split(b"\r\n")[0].decode()
    return status, sent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=512)
    size = parser.parse_args().mib << 20
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "cidash.toml"
        config.write_text(
            f'database_url = "sqlite+aiosqlite:///{directory}/cidash.db"\nrole = "api"\n'
            f'[api]\nport = 0\nwrite_token = "{WRITE}"\n'
        )
        command = [sys.executable, "-c", "from cidash.cli import main; main()", "--config", str(config), "serve"]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stderr is not None
            port = next(
                int(found.group(1))
                for line in process.stderr
                if (found := re.search(r"API on http://127\.0\.0\.1:(\d+)/", line))
            )
            cases = [
                ("anonymous, Content-Length", "", False),
                ("write token, Content-Length", f"Authorization: Bearer {WRITE}\r\n", False),
                ("write token, chunked", f"Authorization: Bearer {WRITE}\r\n", True),
            ]
            for name, authorization, chunked in cases:
                before = memory_mib(process.pid, "VmRSS")
                started = time.perf_counter()
                status, sent = attack(port, size, authorization, chunked)
                print(
                    f"{name} {size >> 20} MiB: {status} after {time.perf_counter() - started:.2f} s; "
                    f"{sent >> 20} MiB sent before the server stopped reading; "
                    f"RSS {before:.0f} MiB, peak {memory_mib(process.pid, 'VmHWM'):.0f} MiB"
                )
        finally:
            process.terminate()
            process.wait(timeout=15)


if __name__ == "__main__":
    main()
