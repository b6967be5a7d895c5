"""A backend process started from Blender ("Start local backend") and stopped with it.

One process per Blender session, kept in this module: the panel shows whether it is alive, Stop
ends it, and unregistering the add-on ends it too so no orphan keeps the port.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

_process: subprocess.Popen | None = None
_output: deque[str] = deque(maxlen=200)  # the backend's last lines, for error reports


class StartError(Exception):
    """The backend could not be started; the message says what to fix."""


def is_alive() -> bool:
    return _process is not None and _process.poll() is None


def pid() -> int | None:
    return _process.pid if is_alive() else None


def recent_output(lines: int = 10) -> str:
    return "\n".join(list(_output)[-lines:])


def resolve_python(python_path: str, backend_dir: str) -> str:
    """The interpreter to run: the preference, else the project's .venv, else nothing."""
    if python_path:
        return python_path
    for candidate in ("bin/python", "Scripts/python.exe"):
        path = Path(backend_dir) / ".venv" / candidate
        if path.exists():
            return str(path)
    raise StartError("Set the backend's Python interpreter in the Headlift preferences")


def start(address: str, python_path: str, backend_dir: str) -> int:
    """Start ``python -m backend --bind ADDRESS`` in backend_dir; returns the process id."""
    global _process
    if is_alive():
        return _process.pid
    backend_dir = os.path.abspath(os.path.expanduser(backend_dir or ""))
    if not (Path(backend_dir) / "backend" / "__main__.py").exists():
        raise StartError(f"No Headlift project (backend/__main__.py) in '{backend_dir}': "
                         "set 'Backend Project' in the Headlift preferences")
    python = resolve_python(python_path, backend_dir)
    _output.clear()
    try:
        _process = subprocess.Popen(
            [python, "-m", "backend", "--bind", address],
            cwd=backend_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group on POSIX, so Ctrl+C in Blender's terminal does not hit it.
            start_new_session=(sys.platform != "win32"),
        )
    except OSError as exc:
        raise StartError(f"Could not run '{python}': {exc}") from exc
    # Drain the pipe so a chatty backend never blocks on a full buffer.
    threading.Thread(target=_drain, args=(_process,), daemon=True).start()
    return _process.pid


def stop(timeout_s: float = 5.0) -> None:
    """Terminate the process (kill it if it does not exit in timeout_s)."""
    global _process
    process, _process = _process, None
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def _drain(process: subprocess.Popen) -> None:
    for line in process.stdout:
        _output.append(line.rstrip())
