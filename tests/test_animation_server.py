"""Animating a reconstructed head through a real backend process on loopback: animate (the
slider fast lane), bake (queued, streamed in chunks, cancellable, idempotent by request id) and
rig, the refusals of bad input, and a backend that dies in the middle of a bake.

One head is reconstructed for the whole module. It may carry expression shapes or not (they land
separately); whatever ``expression_names`` the result reports is used, expression-specific checks
only run for names the head has, and every pose-only path is tested either way. The last test
kills the module's backend, so it stays last.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import zmq

from backend.rig import HeadRig, pose_vertices
from shared import Error, ErrorCode, ProtocolError, decode, encode
from shared.client import BakeCollector, HeadliftClient, make_bake
from shared.controls import ARKIT_NAMES, MAX_BAKE_FRAMES, POSE_JOINTS
from shared.messages import (
    Ack,
    Animate,
    Bake,
    BakeChunk,
    BakeDone,
    Cancel,
    Frame,
    Progress,
    Rig,
    RigData,
    new_id,
)

BOUND_S = 600.0  # a bound on every wait (a reconstruct on a loaded 2-core CPU), not a speed goal
TOLERANCE_M = 1e-5
DEAD_BACKEND_NOTICE_S = 5.0  # the bound for surfacing a dead backend during a bake
LONG_BAKE = 5000  # frames: long enough to still be streaming when it is cancelled or killed
NOSE_TIP = 1  # mediapipe face-mesh landmark index

pytestmark = pytest.mark.skipif(importlib.util.find_spec("backend.reconstruct.pipeline") is None,
                                reason="no reconstruction pipeline yet")


@dataclass
class Head:
    backend: object  # conftest.BackendProcess
    address: str
    head_id: str
    rest_m: np.ndarray  # (V, 3)
    landmarks_m: np.ndarray  # (478, 3)
    expression_names: list[str]
    joint_names: list[str]


@pytest.fixture(scope="module")
def head(tmp_path_factory, portraits_dir) -> Head:
    """A private backend holding one reconstructed head (this module kills it at the end)."""
    from conftest import start_backend_process

    backend = start_backend_process(tmp_path_factory.mktemp("anim-backend"))
    with HeadliftClient(backend.address) as client:
        result = client.reconstruct((portraits_dir / "fr_obama.jpg").read_bytes(), name="anim",
                                    timeout_s=BOUND_S)
    yield Head(backend, backend.address, result.head_id, np.array(result.verts_m),
               np.array(result.landmarks_m), list(result.expression_names),
               list(result.joint_names))
    backend.stop()


@pytest.fixture
def client(head: Head):
    with HeadliftClient(head.address) as c:
        yield c


def rig_from(data: RigData) -> HeadRig:
    return HeadRig(expression_names=tuple(data.expression_names),
                   expression_deltas=np.array(data.expression_deltas),
                   joint_names=tuple(data.joint_names),
                   joint_parents=np.array(data.joint_parents, dtype=np.int32),
                   joint_rest_m=np.array(data.joint_rest_m), skin_weights=np.array(data.skin_weights))


def some_controls(head: Head) -> tuple[dict[str, float], dict[str, list[float]]]:
    """A pose on several joints, plus every expression the head has at a distinct weight."""
    expressions = {n: 0.2 + 0.6 * i / max(1, len(head.expression_names))
                   for i, n in enumerate(head.expression_names)}
    pose = {"head": [0.1, -0.05, 0.5], "neck": [0.15, 0.0, 0.1], "left_shoulder": [0.0, 0.2, 0.0]}
    return expressions, pose


def curves(head: Head, frames: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Smooth control curves over ``frames`` frames: a head turn and nod, every expression."""
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    expressions = {n: (0.5 - 0.5 * np.cos(2 * np.pi * (t + i / 7))).astype(np.float32)
                   for i, n in enumerate(head.expression_names)}
    pose = {"head": np.stack([0.3 * np.sin(2 * np.pi * t), 0 * t, 0.8 * np.sin(np.pi * t)], 1),
            "neck": np.stack([0.2 * t, 0 * t, -0.3 * t], 1)}
    return expressions, pose


def events_for(client: HeadliftClient, request_id: str, until_final: bool = True,
               bound_s: float = BOUND_S):
    """Yield every event for ``request_id`` until its final one (a non-interim answer)."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        for event in client.poll_events(timeout_s=0.2):
            if event.id != request_id:
                continue
            yield event
            if until_final and not isinstance(event, (Progress, BakeChunk)):
                return
    if until_final:
        pytest.fail(f"no final answer to {request_id} within {bound_s:g} s")


def assert_serving(head: Head) -> None:
    """The backend still animates the head after whatever came before."""
    with HeadliftClient(head.address) as fresh:
        assert fresh.animate(head.head_id, {}, {}, timeout_s=BOUND_S).shape == head.rest_m.shape


def spoiled(msg, edit) -> list[bytes]:
    """A valid request's frames with ``edit(header)`` applied to the JSON header (bypasses the
    client's own checks, as a buggy or hostile peer would)."""
    header, *buffers = encode(msg)
    obj = json.loads(bytes(header))
    edit(obj)
    return [json.dumps(obj).encode(), *[bytes(b) for b in buffers]]


def bake_frames(head_id: str, expressions: np.ndarray, names: list[str], poses: np.ndarray,
                joints: list[str]) -> list[bytes]:
    """Raw bake frames with arbitrary arrays (the client would refuse bad ones before sending)."""
    header = {"protocol": 1, "type": "bake", "id": new_id(),
              "body": {"head_id": head_id, "expression_names": names, "pose_joints": joints},
              "buffers": [{"name": "expressions", "dtype": "<f4", "shape": list(expressions.shape)},
                          {"name": "poses", "dtype": "<f4", "shape": list(poses.shape)}]}
    return [json.dumps(header).encode(), np.ascontiguousarray(expressions, "<f4").tobytes(),
            np.ascontiguousarray(poses, "<f4").tobytes()]


def raw_exchange(address: str, frames: list[bytes]) -> object:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    try:
        sock.send_multipart(frames)
        assert sock.poll(BOUND_S * 1000), "the server did not answer"
        return decode(sock.recv_multipart())
    finally:
        sock.close()


def worker_bake_runs(head: Head, request_id: str) -> list[dict]:
    """The worker's log lines for bake ``request_id``: one per time it actually ran. The worker
    logs just after its final answer, so wait (bounded) for the first line."""
    deadline = time.monotonic() + BOUND_S
    while True:
        lines = [json.loads(l) for l in head.backend.log().splitlines() if l.startswith("{")]
        runs = [l for l in lines if l.get("id") == request_id and "frames_sent" in l]
        if runs or time.monotonic() > deadline:
            return runs
        time.sleep(0.05)


# --- the head and its rig ------------------------------------------------------------------------

def test_the_result_names_the_joints_and_expressions_the_head_can_be_animated_with(head):
    assert head.joint_names == list(POSE_JOINTS)
    assert set(head.expression_names) <= set(ARKIT_NAMES)
    assert len(set(head.expression_names)) == len(head.expression_names)


def test_the_rig_request_returns_the_heads_rig(head, client):
    rig = client.rig(head.head_id, timeout_s=BOUND_S)
    n_verts, n_joints = len(head.rest_m), len(POSE_JOINTS)
    assert isinstance(rig, RigData)
    assert rig.joint_names == head.joint_names and rig.expression_names == head.expression_names
    assert rig.skin_weights.shape == (n_verts, n_joints)
    assert np.allclose(rig.skin_weights.sum(axis=1), 1.0, atol=1e-4)
    assert rig.skin_weights.min() >= 0.0
    assert rig.expression_deltas.shape == (len(head.expression_names), n_verts, 3)
    assert rig.joint_parents[0] == -1 and all(0 <= p < j for j, p in
                                              enumerate(rig.joint_parents) if j)
    lo, hi = head.rest_m.min(0) - 0.05, head.rest_m.max(0) + 0.05
    assert ((rig.joint_rest_m >= lo) & (rig.joint_rest_m <= hi)).all(), "joints outside the bust"
    nose = int(np.argmin(np.linalg.norm(head.rest_m - head.landmarks_m[NOSE_TIP], axis=1)))
    assert rig.skin_weights[nose, POSE_JOINTS.index("head")] > 0.5  # the face follows the head


# --- animate: the slider fast lane ---------------------------------------------------------------

def test_animate_without_controls_gives_the_rest_mesh(head, client):
    verts = client.animate(head.head_id, {}, {}, timeout_s=BOUND_S)
    assert verts.shape == head.rest_m.shape and verts.dtype == np.float32
    assert np.abs(verts - head.rest_m).max() < TOLERANCE_M


def test_animate_equals_the_rigs_pose_vertices_for_the_same_controls(head, client):
    rig = rig_from(client.rig(head.head_id, timeout_s=BOUND_S))
    expressions, pose = some_controls(head)
    verts = client.animate(head.head_id, expressions, pose, timeout_s=BOUND_S)
    weights = np.array([[expressions.get(n, 0.0) for n in rig.expression_names]], np.float32)
    weights = weights.reshape(1, len(rig.expression_names))
    rotations = np.array([[pose.get(j, [0.0, 0.0, 0.0]) for j in rig.joint_names]], np.float32)
    expected = pose_vertices(rig, head.rest_m, weights, rotations)[0]
    assert np.abs(verts - expected).max() < TOLERANCE_M
    assert np.abs(verts - head.rest_m).max() > 0.01  # the pose really moved the head


def test_a_positive_head_yaw_turns_the_face_toward_the_subjects_left(head, client):
    nose = int(np.argmin(np.linalg.norm(head.rest_m - head.landmarks_m[NOSE_TIP], axis=1)))
    turned = client.animate(head.head_id, {}, {"head": [0.0, 0.0, 0.5]}, timeout_s=BOUND_S)
    assert turned[nose, 0] - head.rest_m[nose, 0] > 0.01  # +X is the subject's left
    bust = head.rest_m[:, 2] < head.rest_m[:, 2].min() + 0.03  # the bottom of the bust stays put
    assert np.abs(turned[bust] - head.rest_m[bust]).max() < 0.005


def test_jaw_open_lowers_the_chin_when_the_head_has_that_shape(head, client):
    if "jawOpen" not in head.expression_names:
        pytest.skip("this head has no jawOpen shape (expression shapes not built yet)")
    opened = client.animate(head.head_id, {"jawOpen": 1.0}, {}, timeout_s=BOUND_S)
    chin = int(np.argmin(np.linalg.norm(head.rest_m - head.landmarks_m[152], axis=1)))
    assert head.rest_m[chin, 2] - opened[chin, 2] > 0.003


# --- bake: queued, streamed, cancellable, idempotent -----------------------------------------------

def test_a_bake_streams_every_frame_once_in_one_topology_equal_to_animate(head, client):
    frames, frame_start = 120, 1
    expressions, pose = curves(head, frames)
    bake = make_bake(head.head_id, expressions, pose, frame_start=frame_start)
    seen: list[int] = []
    collector = BakeCollector(bake, on_chunk=lambda offset, v: seen.extend(
        range(offset, offset + len(v))))
    chunk_starts = []
    client.submit(bake)
    for event in events_for(client, bake.id):
        if isinstance(event, BakeChunk):
            chunk_starts.append(event.frame_start)
            assert event.verts_m.shape[1:] == head.rest_m.shape  # one topology for every frame
        if collector.add(event):
            break
    assert isinstance(event, BakeDone) and event.frames == frames
    assert sorted(seen) == list(range(frames)) and len(seen) == frames
    assert chunk_starts[0] == frame_start and chunk_starts == sorted(chunk_starts)
    baked = collector.result()
    assert baked.shape == (frames, *head.rest_m.shape)
    for k in range(frames):
        one = client.animate(head.head_id, {n: float(c[k]) for n, c in expressions.items()},
                             {j: [float(x) for x in r[k]] for j, r in pose.items()},
                             timeout_s=BOUND_S)
        assert np.abs(baked[k] - one).max() < TOLERANCE_M, f"frame {k} differs from animate"


def test_the_blocking_bake_returns_all_frames_and_the_rest_pose_bake_is_the_rest_mesh(head,
                                                                                     client):
    baked = client.bake(head.head_id, {}, {}, frames=3, timeout_s=BOUND_S)
    assert baked.shape == (3, *head.rest_m.shape)
    assert np.abs(baked - head.rest_m).max() < TOLERANCE_M


def test_a_cancelled_bake_ends_with_cancelled_and_nothing_after_it(head, client):
    bake = make_bake(head.head_id, {}, {"head": np.zeros((LONG_BAKE, 3), np.float32)})
    collector = BakeCollector(bake, keep=False)
    client.submit(bake)
    cancel_id = None
    final = None
    for event in events_for(client, bake.id):
        if isinstance(event, BakeChunk) and cancel_id is None:
            cancel_id = client.submit(Cancel(target=bake.id))
        if isinstance(event, Error):
            final = event
            break
        collector.add(event)
    assert final is not None and final.code is ErrorCode.CANCELLED
    assert 0 < collector.received < LONG_BAKE and not collector.done
    with pytest.raises(ProtocolError):
        collector.result()
    # Nothing of the bake arrives after its final answer (the cancel's ack may still come).
    late = [e for e in events_for(client, bake.id, until_final=False, bound_s=2.0)]
    assert late == []
    runs = worker_bake_runs(head, bake.id)
    assert len(runs) == 1 and runs[0]["outcome"] == "cancelled"
    assert runs[0]["frames_sent"] < LONG_BAKE
    assert_serving(head)


def test_a_bake_request_sent_again_is_not_baked_again(head):
    """Same request id on the same connection: while it runs the retry attaches to it (every
    frame still arrives once, one bake_done); once it is done the retry is told so."""
    bake = make_bake(head.head_id, {}, {"head": np.full((40, 3), 0.1, np.float32)})
    frames = [bytes(f) for f in encode(bake)]
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(head.address)
    try:
        sock.send_multipart(frames)
        sock.send_multipart(frames)  # a retry while the first is queued or running
        received, finals = [], []
        while not finals:
            assert sock.poll(BOUND_S * 1000), "the server did not answer"
            msg = decode(sock.recv_multipart())
            assert msg.id == bake.id
            if isinstance(msg, BakeChunk):
                received.extend(range(msg.frame_start - 1, msg.frame_start - 1 + len(msg.verts_m)))
            elif not isinstance(msg, Progress):
                finals.append(msg)
        assert isinstance(finals[0], BakeDone) and sorted(received) == list(range(40))
        sock.send_multipart(frames)  # a retry after it finished
        assert sock.poll(BOUND_S * 1000)
        again = decode(sock.recv_multipart())
        assert isinstance(again, Error) and again.code is ErrorCode.BAD_MESSAGE
        assert "already finished" in again.message
        assert not sock.poll(1000), "a retry produced more replies"
    finally:
        sock.close()
    assert len(worker_bake_runs(head, bake.id)) == 1


# --- bad input: clear errors, and the server keeps serving ----------------------------------------

def test_unknown_slider_names_are_refused_by_name_before_sending(head, client):
    with pytest.raises(ProtocolError) as info:
        client.animate(head.head_id, {"jawOpenn": 0.5, "smile": 1.0}, {}, timeout_s=BOUND_S)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert "'jawOpenn'" in info.value.message and "'smile'" in info.value.message


@pytest.mark.parametrize("body_edit, names", [
    (lambda b: b["expressions"].update(jawOpenn=0.5, smile=1.0), ["'jawOpenn'", "'smile'"]),
    (lambda b: b["pose"].update(left_knee=[0, 0, 0]), ["'left_knee'", "unknown joint"]),
    (lambda b: b["expressions"].update(mouthSmileLeft=2.5), ["2.5", "'mouthSmileLeft'"]),
    (lambda b: b["pose"].update(head=[7.0, 0.0, 0.0]), ["'head'", "7 rad"]),
    (lambda b: b["pose"].update(head=[0.0, 1.0]), ["animate.body.pose.head", "3 numbers"]),
    (lambda b: b["expressions"].update(jawOpen="wide"), ["jawOpen", "must be a number"]),
], ids=["unknown-expressions", "unknown-joint", "weight-over-2", "rotation-over-2pi",
        "rotation-of-2-numbers", "weight-not-a-number"])
def test_a_bad_animate_gets_bad_message_naming_the_problem(head, body_edit, names):
    msg = Animate(head_id=head.head_id, expressions={"jawOpen": 0.1}, pose={"neck": [0, 0, 0.1]})
    reply = raw_exchange(head.address, spoiled(msg, lambda h: body_edit(h["body"])))
    assert isinstance(reply, Error) and reply.code is ErrorCode.BAD_MESSAGE and reply.id == msg.id
    for name in names:
        assert name in reply.message, reply.message
    assert_serving(head)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinite_controls_are_refused(head, client, value):
    with pytest.raises(ProtocolError) as info:  # the client refuses before sending
        client.animate(head.head_id, {}, {"head": [0.0, value, 0.0]}, timeout_s=BOUND_S)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert "pose.head[1]" in info.value.message and "finite" in info.value.message
    # A peer that sends them anyway (JSON has no NaN; Python writes it) is refused by the server.
    msg = Animate(head_id=head.head_id, pose={"head": [0.0, 0.0, 0.0]})
    reply = raw_exchange(head.address, spoiled(msg, lambda h: h["body"]["pose"].update(
        head=[0.0, value, 0.0])))
    assert isinstance(reply, Error) and reply.code is ErrorCode.BAD_MESSAGE
    assert reply.message.startswith("header: not valid JSON") and "allowed" in reply.message
    # And in a bake's curves, the bad value is located.
    poses = np.zeros((10, 1, 3), np.float32)
    poses[4, 0, 2] = value
    reply = raw_exchange(head.address, bake_frames(head.head_id, np.zeros((10, 0)), [], poses,
                                                   ["head"]))
    assert isinstance(reply, Error) and reply.code is ErrorCode.BAD_MESSAGE
    assert "NaN or infinity at [4, 0, 2]" in reply.message
    weights = np.zeros((10, 1), np.float32)
    weights[7, 0] = value
    reply = raw_exchange(head.address, bake_frames(head.head_id, weights, ["jawOpen"],
                                                   np.zeros((10, 0, 3)), []))
    assert isinstance(reply, Error) and "'jawOpen'" in reply.message and "[7, 0]" in reply.message
    assert_serving(head)


@pytest.mark.parametrize("frames", [0, 100_000])
def test_a_bake_of_0_or_100000_frames_is_refused(head, client, frames):
    with pytest.raises(ProtocolError) as info:  # the client refuses before sending
        client.bake(head.head_id, {}, {"head": np.zeros((frames, 3), np.float32)},
                    timeout_s=BOUND_S)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    reply = raw_exchange(head.address, bake_frames(head.head_id, np.zeros((frames, 0)), [],
                                                   np.zeros((frames, 1, 3)), ["head"]))
    assert isinstance(reply, Error) and reply.code is ErrorCode.BAD_MESSAGE
    assert f"1..{MAX_BAKE_FRAMES} frames, got {frames}" in reply.message
    assert_serving(head)


@pytest.mark.parametrize("expressions, names, poses, joints, words", [
    (np.zeros((10, 2)), ["jawOpen"], np.zeros((10, 0, 3)), [], "2 columns for 1"),
    (np.zeros((10, 0)), [], np.zeros((9, 1, 3)), ["head"], "(10, 1, 3)"),
    (np.zeros((10, 0)), [], np.zeros((10, 2, 3)), ["head", "head"], "repeats joint"),
    (np.zeros((10, 0)), [], np.full((10, 1, 3), 4.0), ["head"], "rad long"),
    (np.full((10, 1), -3.0), ["browInnerUp"], np.zeros((10, 0, 3)), [], "'browInnerUp'"),
    (np.zeros((10, 1)), ["grin"], np.zeros((10, 0, 3)), [], "'grin'"),
], ids=["columns-mismatch", "frames-mismatch", "repeated-joint", "rotation-too-long",
        "weight-below-minus-2", "unknown-expression"])
def test_a_malformed_bake_gets_bad_message_naming_the_problem(head, expressions, names, poses,
                                                              joints, words):
    reply = raw_exchange(head.address, bake_frames(head.head_id, expressions, names, poses, joints))
    assert isinstance(reply, Error) and reply.code is ErrorCode.BAD_MESSAGE
    assert words in reply.message, reply.message
    assert_serving(head)


def test_an_expression_the_head_does_not_have_is_refused_naming_what_it_has(head, client):
    missing = [n for n in ARKIT_NAMES if n not in head.expression_names]
    if not missing:
        pytest.skip("this head has every ARKit shape")
    with pytest.raises(ProtocolError) as info:
        client.animate(head.head_id, {missing[0]: 0.5}, {}, timeout_s=BOUND_S)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert repr(missing[0]) in info.value.message and "supports" in info.value.message
    with pytest.raises(ProtocolError) as info:
        client.bake(head.head_id, {missing[0]: np.zeros(5, np.float32)}, {}, timeout_s=BOUND_S)
    assert info.value.code is ErrorCode.BAD_MESSAGE and repr(missing[0]) in info.value.message
    assert_serving(head)


def test_a_head_id_the_backend_never_made_gets_unknown_head(head, client):
    stranger = new_id()
    for call in (lambda: client.animate(stranger, {}, {}, timeout_s=BOUND_S),
                 lambda: client.bake(stranger, {}, {}, frames=2, timeout_s=BOUND_S),
                 lambda: client.rig(stranger, timeout_s=BOUND_S)):
        with pytest.raises(ProtocolError) as info:
            call()
        assert info.value.code is ErrorCode.UNKNOWN_HEAD and stranger in info.value.message
    assert_serving(head)


def test_after_a_backend_restart_the_old_head_id_gets_unknown_head(head, start_backend):
    """A new backend process (what a restart gives) does not know heads made before it."""
    restarted = start_backend()
    with HeadliftClient(restarted.address) as client:
        with pytest.raises(ProtocolError) as info:
            client.animate(head.head_id, {}, {"head": [0, 0, 0.2]}, timeout_s=BOUND_S)
        assert info.value.code is ErrorCode.UNKNOWN_HEAD
        assert "restarted" in info.value.message and "reconstruct" in info.value.message
        with pytest.raises(ProtocolError) as info:
            client.bake(head.head_id, {}, {"head": np.zeros((5, 3), np.float32)},
                        timeout_s=BOUND_S)
        assert info.value.code is ErrorCode.UNKNOWN_HEAD
        assert client.hello(timeout_s=BOUND_S).versions == [1]


# --- a consumer that reads nothing -------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def test_a_client_that_reads_nothing_cannot_make_the_server_grow_and_loses_its_bake(head, client):
    """A 5,000-frame bake (gigabytes of frames) for a client that never reads: the server holds
    a bounded number of chunks, then gives the bake up; everyone else is served meanwhile."""
    pid = head.backend.process.pid
    client.animate(head.head_id, {}, {"head": [0, 0, 0.1]}, timeout_s=BOUND_S)  # warm
    before = rss_mb(pid)
    bake = make_bake(head.head_id, {}, {"head": np.full((LONG_BAKE, 3), 0.2, np.float32)})
    sleeper = zmq.Context.instance().socket(zmq.DEALER)
    sleeper.linger = 0
    sleeper.rcvhwm = 1  # its own queue fills at once; from then on the server has to hold
    sleeper.connect(head.address)
    try:
        sleeper.send_multipart(encode(bake))
        peak = before
        runs: list[dict] = []
        deadline = time.monotonic() + BOUND_S
        while not runs and time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid))
            # Others are answered while the bake is stuck on the sleeper.
            assert client.animate(head.head_id, {}, {}, timeout_s=BOUND_S).shape == \
                head.rest_m.shape
            lines = [json.loads(l) for l in head.backend.log().splitlines() if l.startswith("{")]
            runs = [l for l in lines if l.get("id") == bake.id and "frames_sent" in l]
            time.sleep(0.2)
    finally:
        sleeper.close()
    assert len(runs) == 1 and runs[0]["outcome"] == "cancelled"
    assert runs[0]["frames_sent"] < LONG_BAKE
    assert peak - before < 300, f"the server grew by {peak - before:.0f} MB for one slow client"
    assert_serving(head)


# --- a backend that freezes or dies during a bake ---------------------------------------------------

def test_a_backend_frozen_mid_bake_surfaces_within_5_s_through_heartbeats(head):
    """SIGSTOP: the connection stays open but nothing answers; ZMTP heartbeats (answered by
    libzmq's I/O thread, never by Python) turn that into backend_unreachable. Once the backend
    resumes, it finds the client gone, gives the bake up and serves again."""
    bake = make_bake(head.head_id, {}, {"head": np.full((LONG_BAKE, 3), -0.2, np.float32)})
    collector = BakeCollector(bake, keep=False)
    frozen_at = None
    final = None
    with HeadliftClient(head.address) as client:
        client.submit(bake)
        try:
            for event in events_for(client, bake.id):
                if isinstance(event, Error):
                    final = event
                    break
                collector.add(event)
                if collector.received >= 20 and frozen_at is None:
                    os.kill(head.backend.process.pid, signal.SIGSTOP)
                    frozen_at = time.monotonic()
            noticed_s = time.monotonic() - frozen_at
        finally:
            os.kill(head.backend.process.pid, signal.SIGCONT)
    print(f"frozen backend noticed after {noticed_s:.2f} s")
    assert final is not None and final.code is ErrorCode.BACKEND_UNREACHABLE
    assert noticed_s < DEAD_BACKEND_NOTICE_S
    assert collector.received < LONG_BAKE and not collector.done
    runs = worker_bake_runs(head, bake.id)
    assert len(runs) == 1 and runs[0]["outcome"] == "cancelled"
    assert_serving(head)


# (keep this test last: it kills the module's backend)

def test_a_backend_killed_mid_bake_surfaces_within_5_s_and_no_partial_bake_is_complete(head):
    """SIGKILL while a bake streams and another waits in the queue: both end with
    backend_unreachable within seconds, and neither is ever reported complete."""
    poses = {"head": np.tile(np.float32([0.0, 0.0, 0.3]), (LONG_BAKE, 1))}
    queued_outcome: dict[str, object] = {}
    connected = threading.Event()

    def queued_bake() -> None:
        with HeadliftClient(head.address) as other:
            other.hello(timeout_s=BOUND_S)  # connected, so the bake goes out at once
            connected.set()
            try:
                queued_outcome["frames"] = other.bake(head.head_id, {}, poses, timeout_s=BOUND_S)
            except ProtocolError as exc:
                queued_outcome["error"] = exc
            queued_outcome["at"] = time.monotonic()

    waiting = threading.Thread(target=queued_bake, daemon=True)
    killed_at = None
    final = None
    with HeadliftClient(head.address) as client:
        bake = make_bake(head.head_id, {}, poses)
        collector = BakeCollector(bake, keep=False)
        client.submit(bake)
        for event in events_for(client, bake.id):
            if isinstance(event, Error):
                final = event
                break
            collector.add(event)
            if collector.received >= 50 and killed_at is None:
                waiting.start()
                assert connected.wait(BOUND_S)
                time.sleep(0.5)  # let the second bake reach the backend's queue
                os.kill(head.backend.process.pid, signal.SIGKILL)
                killed_at = time.monotonic()
        noticed_s = time.monotonic() - killed_at
    waiting.join(timeout=BOUND_S)
    print(f"killed backend noticed after {noticed_s:.2f} s")
    assert final is not None and final.code is ErrorCode.BACKEND_UNREACHABLE
    assert "lost the connection" in final.message
    assert noticed_s < DEAD_BACKEND_NOTICE_S
    assert 50 <= collector.received < LONG_BAKE and not collector.done
    with pytest.raises(ProtocolError):
        collector.result()
    assert "frames" not in queued_outcome, "a bake of a killed backend was reported complete"
    assert queued_outcome["error"].code is ErrorCode.BACKEND_UNREACHABLE
    assert queued_outcome["at"] - killed_at < DEAD_BACKEND_NOTICE_S
