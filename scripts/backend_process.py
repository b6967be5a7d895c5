"""Start ``python -m backend`` on a free loopback port and stop it again (for the demo and tools).

The server prints a ready line naming the endpoint it bound; port 0 lets the OS pick a free one.
"""
from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = re.compile(r"tcp://[\w.\-\[\]:]+:\d+")


class BackendProcess:
    """A running backend; ``endpoint`` is the address it listens on. Use as a context manager."""

    def __init__(self, python: str = sys.executable, cwd: Path = ROOT, ready_timeout_s: float = 60.0,
                 bind: str = "tcp://127.0.0.1:0", args: tuple[str, ...] = ()) -> None:
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.process = subprocess.Popen(
            [python, "-m", "backend", "--bind", bind, *args], cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        self.endpoint = self._wait_ready(ready_timeout_s)

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.log.append(line.rstrip())
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise RuntimeError("the backend exited before it was ready:\n" + "\n".join(self.log[-20:]))
            endpoint = ready_endpoint(line)
            if endpoint:
                return endpoint
        self.stop()
        raise RuntimeError(f"the backend printed no ready line within {timeout_s:g} s:\n"
                           + "\n".join(self.log[-20:]))

    def stop(self, timeout_s: float = 15.0) -> int:
        """Ask the server to shut down (so it closes cleanly), terminate it if it does not."""
        if self.process.poll() is None and getattr(self, "endpoint", None):
            try:
                sys.path.insert(0, str(ROOT))
                from shared.client import HeadliftClient

                with HeadliftClient(self.endpoint) as client:
                    client.shutdown(timeout_s=5.0)
            except Exception:  # noqa: BLE001 - a dead or stuck server is handled just below
                pass
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                return self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()

    def __enter__(self) -> "BackendProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ready_endpoint(line: str) -> str | None:
    """The endpoint in the server's ready line, else None. The line is JSON
    (``{"event": "ready", "endpoint": ...}``); a plain-text line naming 'ready' and a tcp:// address
    is accepted too."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict):
        if record.get("event") != "ready":
            return None
        for value in record.values():
            if isinstance(value, str) and ENDPOINT.fullmatch(value):
                return value
        return None
    match = ENDPOINT.search(line)
    return match.group(0) if match and "ready" in line.lower() else None
