"""HeadliftClient against a real backend: blocking calls always end, and the non-blocking pair
(submit / poll_events) never blocks and delivers every answer exactly once."""
from __future__ import annotations

import pytest

from shared import Error, ErrorCode, Hello, Ping, Pong, ProtocolError, Reconstruct
from shared.client import HeadliftClient

DEADLINE_S = 30.0  # so a broken server fails a test instead of hanging it
NOBODY = "tcp://127.0.0.1:9"  # the discard port: nothing listens on loopback


def collect(client: HeadliftClient, ids: set[str]) -> dict[str, object]:
    """poll_events until every id in ``ids`` has a final answer."""
    answers: dict[str, object] = {}
    while set(answers) != ids:
        for event in client.poll_events(timeout_s=1.0):
            assert event.id not in answers, "an answer was delivered twice"
            answers[event.id] = event
    return answers


def test_submit_returns_an_id_at_once_and_poll_events_delivers_the_answers(backend_server):
    with HeadliftClient(backend_server) as client:
        hello_id = client.submit(Hello(), timeout_s=DEADLINE_S)
        ping_id = client.submit(Ping(), timeout_s=DEADLINE_S)
        answers = collect(client, {hello_id, ping_id})
        assert isinstance(answers[hello_id], Hello) and isinstance(answers[ping_id], Pong)
        assert client.pending == [] and client.poll_events() == []


def test_a_blocking_call_keeps_answers_to_other_requests_for_poll_events(backend_server):
    with HeadliftClient(backend_server) as client:
        ping_id = client.submit(Ping(), timeout_s=DEADLINE_S)
        assert client.hello(timeout_s=DEADLINE_S).versions == [1]
        assert ping_id in collect(client, {ping_id})


def test_an_error_reply_raises_from_a_blocking_call_and_is_an_event_when_polled(backend_server):
    with HeadliftClient(backend_server) as client:
        with pytest.raises(ProtocolError) as info:
            client.reconstruct(b"not an image", timeout_s=DEADLINE_S)
        assert info.value.code is ErrorCode.BAD_IMAGE and info.value.request_id
        request_id = client.submit(Reconstruct(image=b"not an image"), timeout_s=DEADLINE_S)
        answer = collect(client, {request_id})[request_id]
        assert isinstance(answer, Error) and answer.code is ErrorCode.BAD_IMAGE


def test_a_missing_backend_becomes_a_backend_unreachable_event():
    with HeadliftClient(NOBODY) as client:
        request_id = client.submit(Hello(), timeout_s=0.2)
        answer = collect(client, {request_id})[request_id]
        assert isinstance(answer, Error) and answer.code is ErrorCode.BACKEND_UNREACHABLE
        assert client.pending == []


def test_an_invalid_message_is_refused_at_submit_before_anything_is_sent():
    with HeadliftClient(NOBODY) as client:
        with pytest.raises(ProtocolError) as info:
            client.submit(Reconstruct(image=b"x", name=""))
        assert info.value.code is ErrorCode.BAD_MESSAGE and client.pending == []
