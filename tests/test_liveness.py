"""A backend that dies, restarts or loses a reply: the client finds out in seconds instead of at
its deadline, idempotent requests are retried, and a retried reconstruct never runs twice."""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import time

import pytest
import zmq

from shared import Error, ErrorCode, Hello, Ping, Pong, Progress, Reconstruct, Result, decode, encode
from shared.client import RECONSTRUCT_TIMEOUT_S, HeadliftClient

BOUND_S = 300.0  # a bound on every wait (a reconstruct on a loaded 2-core CPU included), far below
# RECONSTRUCT_TIMEOUT_S; not a speed expectation

requires_pipeline = pytest.mark.skipif(
    importlib.util.find_spec("backend.reconstruct.pipeline") is None, reason="no reconstruction pipeline yet")


def wait_for(client: HeadliftClient, request_id: str, final: bool = True) -> object:
    """The next event for ``request_id`` (the final one when ``final``), within BOUND_S."""
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        for event in client.poll_events(timeout_s=0.5):
            if event.id == request_id and (not final or not isinstance(event, Progress)):
                return event
    pytest.fail(f"no answer to {request_id} within {BOUND_S:g} s")


def port_of(address: str) -> str:
    return address.rsplit(":", 1)[1]


def worker_runs(backend, request_id: str) -> list[dict]:
    """The worker's log lines for ``request_id``: one per time the job actually ran. The worker
    logs just after it answers, so wait (bounded) for the first line."""
    deadline = time.monotonic() + BOUND_S
    while True:
        lines = [json.loads(l) for l in backend.log().splitlines() if l.startswith("{")]
        runs = [l for l in lines if l.get("id") == request_id and "stages" in l]
        if runs or time.monotonic() > deadline:
            return runs
        time.sleep(0.05)


def test_a_hello_lost_with_a_dead_backend_is_retried_and_answered_by_its_restart(start_backend):
    first = start_backend()
    with HeadliftClient(first.address) as client:
        assert client.hello(timeout_s=BOUND_S)
        os.kill(first.process.pid, signal.SIGSTOP)  # frozen: the next hello goes nowhere
        request_id = client.submit(Hello(), timeout_s=BOUND_S)
        assert client.poll_events(timeout_s=0.5) == []
        first.process.kill()
        first.process.wait()
        restarted = start_backend("--bind", f"tcp://127.0.0.1:{port_of(first.address)}")
        assert restarted.address == first.address
        assert isinstance(wait_for(client, request_id), Hello)


def test_a_ping_is_answered_once_even_when_it_was_sent_more_than_once(backend_server):
    with HeadliftClient(backend_server, retry_interval_s=0.0) as client:  # resend at every poll
        request_id = client.submit(Ping(), timeout_s=BOUND_S)
        answers = [wait_for(client, request_id)]
        answers += [e for e in client.poll_events(timeout_s=0.5) if e.id == request_id]
    assert len(answers) == 1 and isinstance(answers[0], Pong)


def test_a_reconstruct_sent_again_after_it_finished_gets_the_same_answer_without_a_rerun(
        backend_process):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(backend_process.address)
    request = Reconstruct(image=b"not an image at all", name="retry")
    answers = []
    for _ in range(2):
        sock.send_multipart(encode(request), copy=False)
        assert sock.poll(BOUND_S * 1000), "the server did not answer"
        answers.append(decode(sock.recv_multipart()))
    sock.close()
    assert [(a.id, a.code) for a in answers] == [(request.id, ErrorCode.BAD_IMAGE)] * 2
    assert answers[0].message == answers[1].message
    assert len(worker_runs(backend_process, request.id)) == 1
    assert '"outcome": "replayed"' in backend_process.log()


@requires_pipeline
def test_a_reconstruct_sent_twice_while_it_runs_runs_once_and_answers_once(backend_process,
                                                                          portraits_dir):
    image = (portraits_dir / "fr_obama.jpg").read_bytes()
    with HeadliftClient(backend_process.address) as client:
        request = Reconstruct(image=image, name="twice")
        client.submit(request)
        wait_for(client, request.id, final=False)  # running: its first progress arrived
        client._socket.send_multipart(encode(request), copy=False)  # the retry, same id
        result = wait_for(client, request.id)
        assert isinstance(result, Result) and result.name == "twice"
    assert len(worker_runs(backend_process, request.id)) == 1
    assert '"outcome": "attached"' in backend_process.log()


@requires_pipeline
def test_a_backend_killed_mid_reconstruct_ends_the_job_long_before_its_deadline(start_backend,
                                                                                portraits_dir):
    backend = start_backend()
    with HeadliftClient(backend.address) as client:
        request_id = client.submit(Reconstruct(image=(portraits_dir / "fr_obama.jpg").read_bytes()))
        assert isinstance(wait_for(client, request_id, final=False), Progress)
        backend.process.kill()
        answer = wait_for(client, request_id)
        assert client.pending == []
    assert isinstance(answer, Error) and answer.code is ErrorCode.BACKEND_UNREACHABLE
    assert "lost the connection" in answer.message  # not the deadline's "no answer within 600 s"
    assert RECONSTRUCT_TIMEOUT_S > BOUND_S


@requires_pipeline
def test_a_reconstruct_after_a_backend_restart_works_on_the_same_client(start_backend,
                                                                        portraits_dir):
    first = start_backend()
    image = (portraits_dir / "fr_obama.jpg").read_bytes()
    with HeadliftClient(first.address) as client:
        lost = client.submit(Reconstruct(image=image, name="lost"))
        wait_for(client, lost, final=False)
        first.process.kill()
        assert wait_for(client, lost).code is ErrorCode.BACKEND_UNREACHABLE
        start_backend("--bind", f"tcp://127.0.0.1:{port_of(first.address)}")
        assert client.hello(timeout_s=BOUND_S)
        request_id = client.submit(Reconstruct(image=b"still not an image", name="after"))
        assert wait_for(client, request_id).code is ErrorCode.BAD_IMAGE  # answered by the restart
