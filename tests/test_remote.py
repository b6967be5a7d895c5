"""Remote use with CurveZMQ, tried on loopback: key files from ``python -m backend keys``, a backend
that lets in only allowed client keys, and a refusal to listen beyond loopback without keys."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from backend.__main__ import parse_config
from shared import ErrorCode, Hello, ProtocolError
from shared.client import HeadliftClient
from shared.liveness import CurveKeys

REPO_ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_AFTER_S = 2.0  # how long a refused client waits before giving up


def make_keys(out: Path) -> Path:
    run = subprocess.run([sys.executable, "-m", "backend", "keys", "--out", str(out)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def curve_backend(start_backend, keys):
    return start_backend("--curve-secret", str(keys / "server.key_secret"),
                         "--allow", str(keys / "clients"))


def test_keys_writes_a_server_pair_a_client_pair_and_an_allow_list_with_private_secrets(keys):
    names = {p.relative_to(keys).as_posix() for p in keys.rglob("*") if p.is_file()}
    assert names == {"server.key", "server.key_secret", "client.key", "client.key_secret",
                     "clients/client.key"}
    for secret in ("server.key_secret", "client.key_secret"):
        assert stat.S_IMODE((keys / secret).stat().st_mode) == 0o600
    assert (keys / "clients" / "client.key").read_bytes() == (keys / "client.key").read_bytes()


def test_a_client_with_an_allowed_key_gets_answers_over_curve(curve_backend, keys):
    curve = CurveKeys.from_files(str(keys / "server.key"), str(keys / "client.key_secret"))
    with HeadliftClient(curve_backend.address, curve=curve) as client:
        assert client.hello(timeout_s=30).versions == [1]
        assert client.ping(timeout_s=30).id


def test_a_client_without_keys_gets_no_reply_and_times_out_unreachable(curve_backend):
    with HeadliftClient(curve_backend.address) as client:
        with pytest.raises(ProtocolError) as info:
            client.hello(timeout_s=UNREACHABLE_AFTER_S)
    assert info.value.code is ErrorCode.BACKEND_UNREACHABLE


def test_a_client_whose_key_is_not_allowed_gets_no_reply_and_is_told_why(curve_backend, keys,
                                                                          tmp_path):
    stranger = make_keys(tmp_path / "stranger")  # a valid pair the server has never heard of
    curve = CurveKeys.from_files(str(keys / "server.key"), str(stranger / "client.key_secret"))
    with HeadliftClient(curve_backend.address, curve=curve) as client:
        request_id = client.submit(Hello(), timeout_s=UNREACHABLE_AFTER_S)
        events = []
        while not events:
            events = client.poll_events(timeout_s=1.0)
    (answer,) = events
    assert answer.id == request_id and answer.code is ErrorCode.BACKEND_UNREACHABLE
    assert "CURVE key" in answer.message


def test_an_allowed_client_still_gets_answers_after_a_refused_one(curve_backend, keys):
    with HeadliftClient(curve_backend.address) as refused:
        with pytest.raises(ProtocolError):
            refused.hello(timeout_s=0.5)
    curve = CurveKeys.from_files(str(keys / "server.key"), str(keys / "client.key_secret"))
    with HeadliftClient(curve_backend.address, curve=curve) as client:
        assert client.hello(timeout_s=30).versions == [1]


def test_with_curve_keys_any_interface_passes_the_bind_check(keys):
    config = parse_config(["--bind", "tcp://0.0.0.0:5555",
                           "--curve-secret", str(keys / "server.key_secret"),
                           "--allow", str(keys / "clients")])
    assert config.bind == "tcp://0.0.0.0:5555" and config.curve is not None


@pytest.mark.parametrize("extra, says", [
    ([], "--curve-secret"),  # no keys: loopback only, and the message says how to get keys
    (["--allow", "/nonexistent"], "go together"),
])
def test_binding_beyond_loopback_without_complete_keys_is_refused(extra, says):
    run = subprocess.run([sys.executable, "-m", "backend", "--bind", "tcp://0.0.0.0:5555", *extra],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and says in run.stderr


def test_a_secret_key_file_without_its_secret_is_refused(keys, tmp_path):
    run = subprocess.run([sys.executable, "-m", "backend", "--bind", "tcp://127.0.0.1:0",
                          "--curve-secret", str(keys / "server.key"), "--allow", str(keys / "clients")],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "no secret key" in run.stderr
