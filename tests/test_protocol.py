"""Protocol v1: every message survives a round trip, and every malformed message is refused at the
door with the error code that says why."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import (
    PROTOCOL_VERSION,
    Ack,
    CameraInfo,
    Cancel,
    Error,
    ErrorCode,
    Hello,
    Ping,
    Pong,
    Progress,
    ProtocolError,
    ProtocolLimits,
    Reconstruct,
    Result,
    Shutdown,
    decode,
    encode,
    new_id,
)

BAD, TOO_LARGE = ErrorCode.BAD_MESSAGE, ErrorCode.MESSAGE_TOO_LARGE


def make_result(**overrides) -> Result:
    """A tiny but valid head: a tetrahedron with a 4x4 texture."""
    fields = dict(
        name="tetra", head_id=new_id(),
        verts_m=np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]], np.float32),
        faces=np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32),
        loop_uvs=np.random.default_rng(0).random((4, 3, 2), dtype=np.float32),
        texture=np.arange(48, dtype=np.uint8).reshape(4, 4, 3),
        landmarks_m=np.zeros((478, 3), np.float32),
        camera=CameraInfo(R_cam_from_canonical=np.eye(3), pixels_per_metre=2500.0,
                          principal_px=np.array([455.0, 560.0]), image_size=(910, 1137)),
        timings_s={"perception": 0.04, "meshing": 1.5}, warnings=["two faces; used the largest"])
    fields.update(overrides)
    return Result(**fields)


def raw(header_updates: dict | None = None, *buffers: bytes, drop: tuple = ()) -> list[bytes]:
    """Hand-made frames around a valid ping header, for messages ``encode`` would never produce."""
    header = {"protocol": PROTOCOL_VERSION, "type": "ping", "id": new_id(), "body": {},
              "buffers": []}
    header.update(header_updates or {})
    for key in drop:
        header.pop(key)
    return [json.dumps(header).encode(), *buffers]


def with_header(frames: list, **updates) -> list:
    """``frames`` with fields of the JSON header replaced (``body`` updates merge)."""
    header = json.loads(bytes(frames[0]))
    body_updates = updates.pop("body", None)
    header.update(updates)
    if body_updates is not None:
        header["body"].update(body_updates)
    return [json.dumps(header).encode(), *frames[1:]]


def refused(frames, limits: ProtocolLimits = ProtocolLimits()) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frames, limits)
    return info.value


# --- round trips -----------------------------------------------------------------------------

ROUND_TRIP = [
    Hello(agent="headlift-blender 0.1"),
    Hello(versions=[1], agent="headlift-backend 0.1", device="cuda:0 (NVIDIA H100)",
          capabilities=["hello", "reconstruct"], max_message_bytes=64 << 20),
    Ping(), Pong(), Shutdown(), Cancel(target=new_id()), Ack(ok=False, message="no such job"),
    Progress(stage="meshing", fraction=0.5, message="marching cubes"),
    Error(code=ErrorCode.NO_FACE, message="no face found\n(try a frontal portrait)"),
    Error(id="", code=ErrorCode.BAD_MESSAGE, message="header: not valid JSON"),
    Reconstruct(image=b"\xff\xd8\xff\xe0 jpeg bytes", name="Frédéric 顔",
                options={"texture_size": 1024, "smooth": 0.5, "mode": "fast", "hair": True,
                         "seed": None}),
]


@pytest.mark.parametrize("msg", ROUND_TRIP, ids=lambda m: m.TYPE)
def test_every_message_kind_survives_a_round_trip(msg):
    assert decode(encode(msg)) == msg


def test_a_result_round_trips_with_its_arrays_in_wire_dtypes():
    sent = make_result()
    got = decode(encode(sent))
    for name in ("verts_m", "faces", "loop_uvs", "texture", "landmarks_m"):
        np.testing.assert_array_equal(getattr(got, name), getattr(sent, name))
    assert (got.verts_m.dtype, got.faces.dtype, got.texture.dtype) == (
        np.float32, np.int32, np.uint8)
    np.testing.assert_array_equal(got.camera.R_cam_from_canonical, np.eye(3))
    assert got.camera.image_size == (910, 1137)
    assert (got.name, got.head_id, got.timings_s, got.warnings) == (
        sent.name, sent.head_id, sent.timings_s, sent.warnings)


def test_arrays_travel_as_raw_frames_not_inside_the_json_header():
    frames = encode(make_result())
    header = json.loads(bytes(frames[0]))
    assert [b["name"] for b in header["buffers"]] == [
        "verts_m", "faces", "loop_uvs", "texture", "landmarks_m"]
    assert len(frames) == 6 and memoryview(frames[4]).nbytes == 4 * 4 * 3
    assert len(frames[0]) < 2000  # the 478 landmarks are not in the header


def test_encode_narrows_float64_and_int64_to_the_wire_dtypes():
    result = make_result(verts_m=np.zeros((4, 3)), faces=np.array([[0, 1, 2]] * 4, np.int64))
    got = decode(encode(result))
    assert got.verts_m.dtype == np.float32 and got.faces.dtype == np.int32


def test_decoded_arrays_are_zero_copy_views_of_the_frames():
    frames = [bytes(f) for f in encode(make_result())]
    got = decode(frames)
    assert not got.texture.flags.owndata and not got.texture.flags.writeable


def test_decode_accepts_zmq_frames():
    frames = [zmq.Frame(bytes(f)) for f in encode(make_result())]
    assert decode(frames).name == "tetra"


# --- envelope: frames, size, JSON ------------------------------------------------------------

@pytest.mark.parametrize("frames, code", [
    ([], BAD),
    ([b"\xff\xfe not utf-8"], BAD),
    ([b"{not json"], BAD),
    ([b"[1, 2, 3]"], BAD),
    ([b'"just a string"'], BAD),
    ([b'{"protocol": NaN}'], BAD),
    ([b"[" * 50_000 + b"]" * 50_000], TOO_LARGE),  # over the 64 KiB header limit
    ([b"[" * 30_000 + b"]" * 30_000], BAD),  # nesting that would blow Python's recursion limit
    ([b""], BAD),
    ([12345], BAD),
], ids=["no-frames", "not-utf8", "not-json", "json-array", "json-string", "nan", "huge-header",
        "deep-nesting", "empty-header", "not-bytes"])
def test_a_malformed_envelope_is_refused_with_its_code(frames, code):
    assert refused(frames).code is code


def test_a_message_over_the_total_size_limit_is_message_too_large_naming_the_request():
    msg = Reconstruct(image=bytes(5000), name="big")
    error = refused(encode(msg), ProtocolLimits(max_message_bytes=4096))
    assert error.code is TOO_LARGE and error.request_id == msg.id


def test_a_header_over_its_size_limit_is_message_too_large():
    frames = encode(Progress(stage="x", fraction=0.0, message="m" * 1000))
    assert refused(frames, ProtocolLimits(max_header_bytes=512)).code is TOO_LARGE


# --- header fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("updates, drop, code", [
    ({"protocol": 99}, (), ErrorCode.UNSUPPORTED_VERSION),
    ({"protocol": 0}, (), ErrorCode.UNSUPPORTED_VERSION),
    ({"protocol": 99, "type": "teleport"}, (), ErrorCode.UNSUPPORTED_VERSION),
    ({}, ("protocol",), BAD),
    ({"protocol": "1"}, (), BAD),
    ({"protocol": True}, (), BAD),
    ({"protocol": 1.0}, (), BAD),
    ({"type": "teleport"}, (), ErrorCode.UNKNOWN_TYPE),
    ({"type": ""}, (), ErrorCode.UNKNOWN_TYPE),
    ({}, ("type",), BAD),
    ({"type": 7}, (), BAD),
    ({}, ("id",), BAD),
    ({"id": ""}, (), BAD),
    ({"id": "x" * 65}, (), BAD),
    ({"id": "has space"}, (), BAD),
    ({"id": 42}, (), BAD),
    ({"body": []}, (), BAD),
    ({"body": {"surprise": 1}}, (), BAD),
    ({"buffers": {}}, (), BAD),
    ({"extra": True}, (), BAD),
], ids=["v99", "v0", "v99-unknown-type", "no-protocol", "protocol-str", "protocol-bool",
        "protocol-float", "unknown-type", "empty-type", "no-type", "type-int", "no-id", "empty-id",
        "long-id", "id-space", "id-int", "body-list", "unknown-body-field", "buffers-object",
        "unknown-header-field"])
def test_a_bad_header_field_is_refused_with_its_code(updates, drop, code):
    assert refused(raw(updates, drop=drop)).code is code


def test_an_error_carries_the_request_id_when_the_header_names_one():
    request_id = new_id()
    assert refused(raw({"id": request_id, "protocol": 99})).request_id == request_id
    assert refused(raw({"id": request_id, "type": "teleport"})).request_id == request_id
    assert refused(raw({"id": "not valid!"})).request_id is None


def test_body_and_buffers_may_be_left_out_when_empty():
    assert isinstance(decode(raw(drop=("body", "buffers"))), Ping)


# --- buffers ---------------------------------------------------------------------------------

def image_frames(descriptor: dict, *payload: bytes) -> list[bytes]:
    return raw({"type": "reconstruct", "body": {"name": "x"}, "buffers": [descriptor]}, *payload)


@pytest.mark.parametrize("descriptor, payload", [
    ({"name": "image", "dtype": "|u1", "shape": [4]}, []),  # described but not sent
    ({"name": "image", "dtype": "|u1", "shape": [5]}, [b"abcd"]),  # 5 bytes described, 4 sent
    ({"name": "image", "dtype": "|O", "shape": [4]}, [b"abcd"]),  # objects would mean pickle
    ({"name": "image", "dtype": "<U1", "shape": [1]}, [b"abcd"]),
    ({"name": "image", "dtype": ">u2", "shape": [2]}, [b"abcd"]),  # big-endian is not the wire
    ({"name": "image", "dtype": "|u1", "shape": [-4]}, [b"abcd"]),
    ({"name": "image", "dtype": "|u1", "shape": [1, 1, 1, 1, 4]}, [b"abcd"]),  # ndim > 4
    ({"name": "image", "dtype": "|u1", "shape": []}, [b"a"]),
    ({"name": "image", "dtype": "|u1", "shape": [2, 2]}, [b"abcd"]),  # image must be 1-D
    ({"name": "image", "dtype": "<i4", "shape": [1]}, [b"abcd"]),  # image must be bytes
    ({"name": "picture", "dtype": "|u1", "shape": [4]}, [b"abcd"]),
    ({"name": "image", "dtype": "|u1", "shape": [0]}, [b""]),
    ({"name": "image", "dtype": "|u1"}, [b"abcd"]),
    ({"name": "image", "dtype": "|u1", "shape": [4], "offset": 0}, [b"abcd"]),
], ids=["missing-frame", "length-mismatch", "object-dtype", "unicode-dtype", "big-endian",
        "negative-dim", "too-many-dims", "scalar", "image-2d", "image-int32", "wrong-name",
        "empty-image", "no-shape", "unknown-descriptor-field"])
def test_a_bad_buffer_is_refused_as_bad_message(descriptor, payload):
    assert refused(image_frames(descriptor, *payload)).code is BAD


def test_an_extra_frame_without_a_descriptor_is_refused():
    assert refused(raw({}, b"stowaway")).code is BAD


def test_two_buffers_with_one_name_are_refused():
    d = {"name": "image", "dtype": "|u1", "shape": [1]}
    frames = raw({"type": "reconstruct", "body": {"name": "x"}, "buffers": [d, d]}, b"a", b"b")
    assert refused(frames).code is BAD


def test_too_many_buffers_is_refused():
    d = [{"name": f"b{i}", "dtype": "|u1", "shape": [1]} for i in range(9)]
    assert refused(raw({"buffers": d}, *[b"x"] * 9)).code is BAD


def result_with(name: str, array: np.ndarray) -> list:
    """Frames of a valid result with one buffer swapped for ``array`` (header kept in step)."""
    frames = list(encode(make_result()))
    header = json.loads(bytes(frames[0]))
    index = [b["name"] for b in header["buffers"]].index(name)
    header["buffers"][index].update(dtype=array.dtype.str, shape=list(array.shape))
    frames[0] = json.dumps(header).encode()
    frames[1 + index] = array.tobytes()
    return frames


@pytest.mark.parametrize("name, array", [
    ("faces", np.array([[0, 1, 2]] * 4, np.float32)),  # faces must be int32
    ("faces", np.array([[0, 1, 2]] * 4, np.int64)),
    ("faces", np.array([[0, 1, 4]] * 4, np.int32)),  # vertex 4 does not exist
    ("faces", np.array([[0, 1, -1]] * 4, np.int32)),
    ("faces", np.array([[0, 1, 2, 3]] * 4, np.int32)),  # quads are not triangles
    ("verts_m", np.zeros((4, 2), np.float32)),
    ("verts_m", np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, np.nan]], np.float32)),
    ("verts_m", np.zeros((2, 3), np.float32)),  # not a mesh; faces point past them too
    ("loop_uvs", np.zeros((3, 3, 2), np.float32)),  # one per face: 4
    ("loop_uvs", np.full((4, 3, 2), np.inf, np.float32)),
    ("texture", np.zeros((4, 4, 4), np.uint8)),  # RGBA is not the contract
    ("texture", np.zeros((4, 4, 3), np.float32)),
    ("texture", np.zeros((0, 4, 3), np.uint8)),
    ("landmarks_m", np.zeros((478, 2), np.float32)),
], ids=["faces-float", "faces-int64", "faces-past-end", "faces-negative", "faces-quads",
        "verts-2d", "verts-nan", "verts-two", "uvs-count", "uvs-inf", "texture-rgba",
        "texture-float", "texture-empty", "landmarks-2d"])
def test_a_result_with_inconsistent_arrays_is_refused(name, array):
    assert refused(result_with(name, array)).code is BAD


# --- bodies ----------------------------------------------------------------------------------

@pytest.mark.parametrize("msg, body, code", [
    (Reconstruct(image=b"x"), {"name": ""}, BAD),
    (Reconstruct(image=b"x"), {"name": "n" * 129}, BAD),
    (Reconstruct(image=b"x"), {"name": "tab\x07bell"}, BAD),
    (Reconstruct(image=b"x"), {"name": 5}, BAD),
    (Reconstruct(image=b"x"), {"options": {"nested": {"a": 1}}}, BAD),
    (Reconstruct(image=b"x"), {"options": {"list": [1]}}, BAD),
    (Reconstruct(image=b"x"), {"options": {f"k{i}": i for i in range(33)}}, BAD),
    (Reconstruct(image=b"x"), {"options": {"": 1}}, BAD),
    (Reconstruct(image=b"x"), {"options": {"big": 2**60}}, BAD),
    (Reconstruct(image=b"x"), {"options": []}, BAD),
    (Progress(stage="s", fraction=0), {"fraction": 1.5}, BAD),
    (Progress(stage="s", fraction=0), {"fraction": -0.1}, BAD),
    (Progress(stage="s", fraction=0), {"fraction": "0.5"}, BAD),
    (Progress(stage="s", fraction=0), {"fraction": True}, BAD),
    (Progress(stage="s", fraction=0), {"stage": ""}, BAD),
    (Progress(stage="s", fraction=0), {"stage": "s" * 65}, BAD),
    (Hello(), {"versions": []}, BAD),
    (Hello(), {"versions": [1.5]}, BAD),
    (Hello(), {"versions": "1"}, BAD),
    (Hello(), {"capabilities": [1]}, BAD),
    (Hello(), {"max_message_bytes": -1}, BAD),
    (Cancel(target="abc"), {"target": ""}, BAD),
    (Cancel(target="abc"), {"target": None}, BAD),
    (Ack(), {"ok": "yes"}, BAD),
    (Error(code=ErrorCode.BUSY, message="m"), {"code": 3}, BAD),
    (Error(code=ErrorCode.BUSY, message="m"), {"message": "m" * 4001}, BAD),
    (make_result(), {"head_id": "no/slashes"}, BAD),
    (make_result(), {"timings_s": {"stage": -1.0}}, BAD),
    (make_result(), {"timings_s": {"stage": "fast"}}, BAD),
    (make_result(), {"warnings": ["line\x00"]}, BAD),
    (make_result(), {"warnings": "one"}, BAD),
    (make_result(), {"camera": {"pixels_per_metre": 1.0}}, BAD),
], ids=lambda v: v.TYPE if hasattr(v, "TYPE") else None)
def test_a_bad_body_field_is_refused_with_its_code(msg, body, code):
    assert refused(with_header(encode(msg), body=body)).code is code


@pytest.mark.parametrize("camera_update", [
    {"pixels_per_metre": 0.0},
    {"R_cam_from_canonical": [[1, 0, 0], [0, 1, 0]]},
    {"R_cam_from_canonical": [[1, 0, 0], [0, 1, 0], [0, 0, "1"]]},
    {"principal_px": [1.0]},
    {"image_size": [0, 10]},
    {"image_size": [10.5, 10]},
    {"focal": 3},
])
def test_a_bad_camera_is_refused(camera_update):
    frames = encode(make_result())
    camera = json.loads(bytes(frames[0]))["body"]["camera"]
    camera.update(camera_update)
    assert refused(with_header(frames, body={"camera": camera})).code is BAD


def test_an_error_code_from_a_newer_peer_reads_as_internal():
    frames = with_header(encode(Error(code=ErrorCode.BUSY, message="m")),
                         body={"code": "quantum_flux"})
    assert decode(frames).code is ErrorCode.INTERNAL


def test_only_an_error_may_have_an_empty_id():
    assert decode(encode(Error(id="", code=ErrorCode.BAD_MESSAGE, message="?"))).id == ""
    assert refused(with_header(encode(Ping()), id="")).code is BAD


def test_a_reply_to_a_request_keeps_its_id():
    request = Reconstruct(image=b"x", name="n")
    assert decode(encode(Progress(id=request.id, stage="s", fraction=0.1))).id == request.id


# --- encode refuses what decode would refuse ------------------------------------------------

@pytest.mark.parametrize("msg", [
    Reconstruct(image=b"x", name="n" * 200),
    Reconstruct(image=b"", name="empty"),
    Reconstruct(image="not bytes", name="n"),
    Reconstruct(image=b"x", options={"nested": {"no": 1}}),
    Progress(stage="s", fraction=float("nan")),
    Progress(stage="s", fraction=2.0),
    Cancel(target="bad id!"),
    Error(code="not a code", message="m"),
    Ping(id=""),
    make_result(faces=np.array([[0, 1, 9]] * 4, np.int32)),
    make_result(verts_m=np.full((4, 3), np.nan, np.float32)),
    make_result(texture=np.zeros((4, 4, 3), np.float32)),
    make_result(faces=np.array([[0, 1, 2**40]] * 4, np.int64)),
], ids=["long-name", "empty-image", "image-str", "nested-option", "nan-fraction",
        "fraction-2", "bad-target", "bad-code", "empty-id", "faces-past-end", "nan-verts",
        "float-texture", "faces-overflow"])
def test_encode_refuses_a_message_the_peer_would_refuse(msg):
    with pytest.raises(ProtocolError) as info:
        encode(msg)
    assert info.value.code is BAD


# --- fuzzing: decode only ever returns a message or raises ProtocolError ----------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                      children, max_size=4),
    max_leaves=20)


def decodes_or_refuses(frames) -> None:
    try:
        decode(frames)
    except ProtocolError as exc:
        assert isinstance(exc.code, ErrorCode) and exc.message


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_random_frames_never_crash_decode(frames):
    decodes_or_refuses(frames)


@FUZZ
@given(kind=st.sampled_from(["hello", "ping", "reconstruct", "progress", "result", "error",
                             "cancel", "ack", "shutdown", "pong", "x"]),
       body=st.dictionaries(st.sampled_from(["name", "stage", "fraction", "versions", "target",
                                             "code", "message", "options", "camera", "ok"]),
                            json_values, max_size=4),
       buffers=json_values, extra=st.lists(st.binary(max_size=16), max_size=3))
def test_random_json_headers_never_crash_decode(kind, body, buffers, extra):
    header = {"protocol": 1, "type": kind, "id": new_id(), "body": body, "buffers": buffers}
    decodes_or_refuses([json.dumps(header).encode(), *extra])


@FUZZ
@given(msg=st.sampled_from(ROUND_TRIP + [make_result()]), data=st.data())
def test_corrupted_valid_messages_never_crash_decode(msg, data):
    frames = [bytearray(bytes(f)) for f in encode(msg)]
    index = data.draw(st.integers(0, len(frames) - 1))
    if frames[index]:
        position = data.draw(st.integers(0, len(frames[index]) - 1))
        frames[index][position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        frames = frames[: data.draw(st.integers(0, len(frames)))]
    decodes_or_refuses(frames)


# --- animation messages --------------------------------------------------------------------------

from shared.messages import Animate, Bake, BakeChunk, BakeDone, Frame, Rig, RigData  # noqa: E402


def make_rig_data(n_verts: int = 5, names=("jawOpen",), joints=("root", "neck", "head")) -> RigData:
    rng = np.random.default_rng(3)
    weights = rng.random((n_verts, len(joints)), dtype=np.float32)
    return RigData(expression_names=list(names), joint_names=list(joints),
                   joint_parents=list(range(-1, len(joints) - 1)),
                   expression_deltas=rng.normal(0, 0.01, (len(names), n_verts, 3)),
                   joint_rest_m=rng.random((len(joints), 3)),
                   skin_weights=weights / weights.sum(1, keepdims=True))


ANIMATION_ROUND_TRIP = [
    Animate(head_id=new_id(), expressions={"jawOpen": 1.0, "eyeBlinkLeft": -0.5},
            pose={"head": [0.0, 0.1, 6.2], "root": [0, 0, 0]}),
    Animate(head_id=new_id()),
    Frame(verts_m=np.ones((7, 3), np.float32)),
    Bake(head_id=new_id(), expression_names=["jawOpen"], pose_joints=["head", "neck"],
         expressions=np.full((4, 1), 0.5, np.float32), poses=np.zeros((4, 2, 3)), frame_start=-3),
    Bake(head_id=new_id(), expression_names=[], pose_joints=[],
         expressions=np.zeros((10_000, 0), np.float32), poses=np.zeros((10_000, 0, 3))),
    BakeChunk(frame_start=101, verts_m=np.zeros((3, 7, 3), np.float32)),
    BakeDone(frames=250, timings_s={"pose": 1.5}),
    Rig(head_id=new_id()),
    make_rig_data(),
    make_rig_data(names=()),
]


@pytest.mark.parametrize("msg", ANIMATION_ROUND_TRIP, ids=lambda m: m.TYPE)
def test_every_animation_message_survives_a_round_trip(msg):
    back = decode(encode(msg))
    assert type(back) is type(msg) and back.id == msg.id
    for name, value in vars(msg).items():
        got = getattr(back, name)
        if isinstance(value, np.ndarray):
            assert got.dtype.str in ("<f4",) and np.array_equal(got, np.asarray(value, np.float32))
        else:
            assert got == value, name


def bake_frames(expressions: np.ndarray, names: list, poses: np.ndarray, joints: list,
                dtype: str = "<f4") -> list[bytes]:
    header = {"protocol": 1, "type": "bake", "id": new_id(),
              "body": {"head_id": "h1", "expression_names": names, "pose_joints": joints},
              "buffers": [{"name": "expressions", "dtype": dtype, "shape": list(expressions.shape)},
                          {"name": "poses", "dtype": "<f4", "shape": list(poses.shape)}]}
    return [json.dumps(header).encode(), np.ascontiguousarray(expressions, dtype).tobytes(),
            np.ascontiguousarray(poses, "<f4").tobytes()]


@pytest.mark.parametrize("frames, words", [
    (bake_frames(np.zeros((0, 0)), [], np.zeros((0, 0, 3)), []), "1..10000 frames, got 0"),
    (bake_frames(np.zeros((100_000, 0)), [], np.zeros((100_000, 0, 3)), []), "got 100000"),
    (bake_frames(np.zeros((5, 1)), ["jawOpen"], np.zeros((5, 0, 3)), [], "<f8"), "dtype must be <f4"),
    (bake_frames(np.zeros((5, 1, 1)), ["jawOpen"], np.zeros((5, 0, 3)), []), "shape must be (N, N)"),
    (bake_frames(np.zeros((5, 2)), ["jawOpen"], np.zeros((5, 0, 3)), []), "2 columns for 1"),
    (bake_frames(np.zeros((5, 0)), [], np.zeros((4, 1, 3)), ["head"]), "(5, 1, 3)"),
    (bake_frames(np.zeros((5, 1)), ["smile"], np.zeros((5, 0, 3)), []), "'smile'"),
    (bake_frames(np.zeros((5, 0)), [], np.zeros((5, 2, 3)), ["neck", "neck"]), "repeats"),
    (bake_frames(np.full((5, 1), np.nan), ["jawOpen"], np.zeros((5, 0, 3)), []), "'jawOpen'"),
    (bake_frames(np.full((5, 1), 2.5), ["jawOpen"], np.zeros((5, 0, 3)), []), "[-2, 2]"),
    (bake_frames(np.zeros((5, 0)), [], np.full((5, 1, 3), np.inf), ["head"]), "NaN or infinity"),
    (bake_frames(np.zeros((5, 0)), [], np.full((5, 1, 3), 4.0), ["head"]), "rad long"),
], ids=["0-frames", "100000-frames", "float64", "rank-3-weights", "columns", "pose-frames",
        "unknown-name", "repeated-joint", "nan-weight", "weight-2.5", "inf-rotation",
        "rotation-over-2pi"])
def test_a_malformed_bake_is_refused_naming_the_problem(frames, words):
    error = refused(frames)
    assert error.code is BAD and words in error.message, error.message


@pytest.mark.parametrize("body, words", [
    ({"expressions": {"jawOpen": 0.2, "grin": 1, "wink": 0}}, "'grin', 'wink'"),
    ({"pose": {"left_knee": [0, 0, 0]}}, "'left_knee'"),
    ({"expressions": {"jawOpen": -2.5}}, "[-2, 2]"),
    ({"pose": {"head": [0, 0, 6.3]}}, "rad long"),
    ({"pose": {"head": [0, 0]}}, "3 numbers"),
    ({"pose": {"head": [0, True, 0]}}, "must be a number"),
    ({"expressions": [0.5]}, "must be a JSON object"),
    ({"head_id": "../../etc"}, "head_id"),
], ids=["unknown-expressions", "unknown-joint", "weight", "rotation", "short-vector", "bool",
        "list", "head-id"])
def test_a_malformed_animate_is_refused_naming_the_problem(body, words):
    frames = with_header(encode(Animate(head_id="h1")), body=body)
    error = refused(frames)
    assert error.code is BAD and words in error.message, error.message


def test_encode_refuses_nan_controls_and_names_the_joint():
    with pytest.raises(ProtocolError) as info:
        encode(Animate(head_id="h1", pose={"neck": [0.0, float("nan"), 0.0]}))
    assert info.value.code is BAD and "pose.neck[1]" in info.value.message


@pytest.mark.parametrize("update, words", [
    (dict(skin_weights=np.full((5, 2), 0.5, np.float32)), "must have 3 joints"),
    (dict(expression_deltas=np.zeros((1, 4, 3), np.float32)), "shape must be (1, 5, 3)"),
    (dict(joint_parents=[-1, 2, 1]), "joint_parents[1]"),
    (dict(joint_rest_m=np.full((3, 3), np.nan, np.float32)), "NaN"),
], ids=["weights-joints", "deltas-vertices", "parent-after-child", "nan-rest"])
def test_inconsistent_rig_data_is_refused(update, words):
    rig = make_rig_data()
    for key, value in update.items():
        setattr(rig, key, value)
    with pytest.raises(ProtocolError) as info:
        encode(rig)
    assert info.value.code is BAD and words in info.value.message, info.value.message


def test_a_bake_chunk_without_frames_or_with_nan_vertices_is_refused():
    with pytest.raises(ProtocolError):
        encode(BakeChunk(frame_start=1, verts_m=np.zeros((0, 4, 3), np.float32)))
    with pytest.raises(ProtocolError) as info:
        encode(BakeChunk(frame_start=1, verts_m=np.full((1, 4, 3), np.nan, np.float32)))
    assert "NaN" in info.value.message
