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


def test_an_answer_that_arrives_in_the_same_read_as_a_blocking_calls_answer_is_kept():
    """A blocking call returns on its own answer; another request's final reply read in the same
    batch must still reach poll_events (its request is no longer pending, so no deadline would
    ever report it: a caller waiting for it would wait for ever)."""
    import threading
    import time

    import zmq

    from shared.protocol import decode, encode

    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind("inproc://two-answers-at-once")

    def scripted_backend() -> None:
        # Hold the ping's answer until the hello arrives, then answer both back to back.
        identity, *frames = router.recv_multipart()
        ping = decode(frames)
        identity, *frames = router.recv_multipart()
        hello = decode(frames)
        router.send_multipart([identity, *encode(Hello(id=hello.id, versions=[1]))])
        router.send_multipart([identity, *encode(Pong(id=ping.id))])

    backend = threading.Thread(target=scripted_backend, daemon=True)
    backend.start()
    try:
        with HeadliftClient("inproc://two-answers-at-once", context=context) as client:
            ping_id = client.submit(Ping(), timeout_s=DEADLINE_S)
            assert client.hello(timeout_s=DEADLINE_S).versions == [1]
            backend.join(DEADLINE_S)
            events, deadline = [], time.monotonic() + 2.0
            while not events and time.monotonic() < deadline:
                events = client.poll_events(timeout_s=0.1)
            assert [(type(e), e.id) for e in events] == [(Pong, ping_id)]
    finally:
        router.close(linger=0)
        context.term()


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


# --- bakes: nothing partial is ever complete --------------------------------------------------------

import numpy as np  # noqa: E402

from shared.client import BakeCollector, make_bake  # noqa: E402
from shared.messages import BakeChunk, BakeDone, Progress  # noqa: E402


def chunk(bake, start: int, frames: int, n_verts: int = 4) -> BakeChunk:
    verts = np.full((frames, n_verts, 3), start, np.float32)
    return BakeChunk(id=bake.id, frame_start=bake.frame_start + start, verts_m=verts)


def test_make_bake_stacks_per_name_curves_and_refuses_curves_of_different_lengths():
    bake = make_bake("h1", {"jawOpen": np.zeros(5)}, {"head": np.ones((5, 3))}, frame_start=10)
    assert bake.expressions.shape == (5, 1) and bake.poses.shape == (5, 1, 3)
    assert bake.frames == 5 and bake.frame_start == 10
    assert make_bake("h1", {}, {}, frames=3).frames == 3
    with pytest.raises(ProtocolError) as info:
        make_bake("h1", {"jawOpen": np.zeros(5)}, {"head": np.ones((4, 3))})
    assert "[4, 5]" in info.value.message
    with pytest.raises(ProtocolError):
        make_bake("h1", {}, {})  # no curves and no frame count


def test_a_bake_collector_completes_only_on_a_bake_done_counting_every_frame():
    bake = make_bake("h1", {}, {}, frames=5, frame_start=1)
    collector = BakeCollector(bake)
    assert not collector.add(chunk(bake, 0, 2))
    assert not collector.add(Progress(id=bake.id, stage="bake", fraction=0.4))
    assert not collector.add(chunk(bake, 2, 3))
    assert collector.fraction == 1.0 and not collector.done
    with pytest.raises(ProtocolError):
        collector.result()  # every frame arrived, but the backend has not vouched for them yet
    assert collector.add(BakeDone(id=bake.id, frames=5))
    assert collector.result()[:, 0, 0].tolist() == [0, 0, 2, 2, 2]


@pytest.mark.parametrize("events", [
    lambda b: [chunk(b, 0, 2), BakeDone(id=b.id, frames=2)],  # done too early
    lambda b: [chunk(b, 0, 2), chunk(b, 3, 2)],  # a gap
    lambda b: [chunk(b, 0, 2), chunk(b, 0, 2)],  # a repeat
    lambda b: [chunk(b, 0, 2), chunk(b, 2, 3, n_verts=5)],  # another topology
    lambda b: [chunk(b, 0, 4), chunk(b, 4, 2)],  # more frames than asked for
    lambda b: [chunk(b, 0, 2), Error(id=b.id, code=ErrorCode.CANCELLED, message="cancelled")],
    lambda b: [chunk(b, 0, 2), Error(id=b.id, code=ErrorCode.BACKEND_UNREACHABLE,
                                     message="lost the connection")],
], ids=["short-done", "gap", "repeat", "topology", "too-many", "cancelled", "lost"])
def test_a_bake_collector_refuses_a_partial_or_inconsistent_bake(events):
    bake = make_bake("h1", {}, {}, frames=5)
    collector = BakeCollector(bake)
    with pytest.raises(ProtocolError):
        for event in events(bake):
            collector.add(event)
    assert not collector.done
    with pytest.raises(ProtocolError):
        collector.result()
