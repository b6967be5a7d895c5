"""Shared fixtures: real test portraits and a real backend process on a free loopback port."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = re.compile(r"headlift backend ready at (\S+)")
BACKEND_START_TIMEOUT_S = 60.0  # a deadline for a hung start, not a performance expectation


@pytest.fixture(scope="session")
def portraits_dir() -> Path:
    """``../shared/portraits`` beside the repository: the test portraits and their licences."""
    path = REPO_ROOT.parent / "shared" / "portraits"
    if not path.is_dir():
        pytest.skip(f"test portraits not found at {path}")
    return path


@pytest.fixture(scope="session")
def driving_dir(portraits_dir: Path) -> Path:
    """``../shared/driving``: the driving videos, beside the portraits."""
    return portraits_dir.parent / "driving"


@dataclass
class BackendProcess:
    """A ``python -m backend`` subprocess; ``address`` is the endpoint from its ready line."""

    process: subprocess.Popen
    address: str
    stderr_path: Path

    def log(self) -> str:
        """Everything the backend logged so far (one JSON object per line)."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (the server stops cleanly on it), kill if it hangs; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_backend_process(log_dir: Path, *args: str) -> BackendProcess:
    """Start the backend on ``tcp://127.0.0.1:0`` and wait for its ready line.

    Output goes to files in ``log_dir`` rather than pipes, so a chatty backend never blocks.
    """
    stdout_path, stderr_path = log_dir / "backend.stdout", log_dir / "backend.stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "--bind", "tcp://127.0.0.1:0", *args],
            cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    deadline = time.monotonic() + BACKEND_START_TIMEOUT_S
    while time.monotonic() < deadline:
        match = READY_LINE.search(stdout_path.read_text(errors="replace"))
        if match:
            return BackendProcess(process, match.group(1), stderr_path)
        if process.poll() is not None:
            pytest.fail(f"the backend exited with {process.returncode} before it was ready:\n"
                        f"{stderr_path.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"the backend printed no ready line within {BACKEND_START_TIMEOUT_S:g} s:\n"
                f"{stderr_path.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="session")
def backend_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    """One backend shared by the whole session (tests must leave it running)."""
    backend = start_backend_process(tmp_path_factory.mktemp("backend"))
    yield backend
    backend.stop()


@pytest.fixture(scope="session")
def backend_server(backend_process: BackendProcess) -> str:
    """The address of the session's backend, e.g. ``tcp://127.0.0.1:41873``."""
    return backend_process.address


@pytest.fixture
def start_backend(tmp_path: Path) -> Iterator[Callable[..., BackendProcess]]:
    """Factory for a private backend (extra CLI flags allowed), for tests that stop it or need
    other settings; every one started is stopped after the test."""
    started: list[BackendProcess] = []

    def start(*args: str) -> BackendProcess:
        log_dir = tmp_path / f"backend{len(started)}"
        log_dir.mkdir()
        started.append(start_backend_process(log_dir, *args))
        return started[-1]

    yield start
    for backend in started:
        backend.stop()


# --- Blender add-on ------------------------------------------------------------------------------

BLENDER_SCENARIO_TIMEOUT_S = 600.0  # a deadline for a hung Blender, not a performance expectation


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip, built like a release (wheels from the dist/wheels cache, else PyPI)."""
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import build_addon

    return build_addon.main(["--out", str(tmp_path_factory.mktemp("addon"))])


@pytest.fixture(scope="session")
def run_blender(addon_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict]:
    """Run one scenario of tests/blender_driver.py in a fresh headless Blender (own user folders)
    with the add-on installed from ``addon_zip``; returns the scenario's findings (a dict)."""
    import json

    def run(scenario: str, **args: object) -> dict:
        user_dir = tmp_path_factory.mktemp(f"blender-{scenario}")
        args = {"zip": str(addon_zip), "user_dir": str(user_dir), **args}
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / "tests" / "blender_driver.py"), scenario, json.dumps(args)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=BLENDER_SCENARIO_TIMEOUT_S)
        lines = [l for l in proc.stdout.splitlines() if l.startswith("HEADLIFT_DRIVER_RESULT ")]
        if proc.returncode != 0 or not lines:
            pytest.fail(f"blender driver '{scenario}' exited {proc.returncode}:\n"
                        f"{(proc.stdout + proc.stderr)[-4000:]}")
        result = json.loads(lines[-1].split(" ", 1)[1])
        if not result.pop("ok"):
            pytest.fail(f"blender driver '{scenario}' raised:\n{result['traceback']}")
        return result

    return run
