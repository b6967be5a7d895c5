"""30,000 malformed messages over real ZeroMQ to a real backend process: every one gets an
error reply with a protocol code, the server never dies, and its memory does not grow.

Each case is malformed by construction (so a correct server must refuse it): random frames,
truncated and non-UTF-8 headers, fields of the wrong type, absurd buffer shapes and dtypes,
decompression-bomb PNGs and bytes that are no image; animate, bake and rig requests with
unknown names, out-of-range or non-finite values, arrays of the wrong dtype, rank or length, and
well-formed ones for a head the backend never made (unknown_head, from the fast lane and from the
job worker). Frames over the size limit, which ZeroMQ itself drops along with the connection, are
checked by asking hello afterwards. Seeded, so a failure replays exactly.
"""
from __future__ import annotations

import json
import random
import struct
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import zmq

from shared import Error, ErrorCode, Hello, Ping, Reconstruct, decode, encode
from shared.client import HeadliftClient
from shared.controls import ARKIT_NAMES, POSE_JOINTS
from shared.messages import Animate, Bake, Rig, new_id

SEED = 20240605
N_CASES = 30_000
WARM_UP_CASES = 500  # before the memory baseline: first use of PIL plugins, JSON, log buffers
REPLY_TIMEOUT_S = 30.0  # a bound so a stuck server fails the test; not a speed expectation
MAX_MESSAGE_MIB = 1  # a small limit keeps the frames ZeroMQ must drop cheap to send
RSS_GROWTH_LIMIT_MB = 50.0
BACKEND_WARM_TIMEOUT_S = 120.0

Frames = list[bytes]


# --- cases --------------------------------------------------------------------------------------

def valid_frames(rng: random.Random) -> tuple[dict, Frames]:
    """A well-formed request as (header dict, buffer frames), to be spoiled by a case."""
    msg = rng.choice([Hello(agent="fuzz"), Ping(),
                      Reconstruct(image=rng.randbytes(rng.randint(1, 64)), name="fuzz")])
    header, *buffers = encode(msg)
    return json.loads(bytes(header)), [bytes(b) for b in buffers]


def dump(header: dict) -> bytes:
    return json.dumps(header).encode()


def random_frames(rng: random.Random) -> Frames:
    return [rng.randbytes(rng.randint(0, 300)) for _ in range(rng.randint(1, 4))]


def truncated_header(rng: random.Random) -> Frames:
    header, buffers = valid_frames(rng)
    raw = dump(header)
    return [raw[:rng.randrange(len(raw))], *buffers]


def invalid_utf8(rng: random.Random) -> Frames:
    header, buffers = valid_frames(rng)
    raw = dump(header)
    at = rng.randrange(len(raw) + 1)
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"])
    return [raw[:at] + bad + raw[at:], *buffers]


WRONG_VALUES = [None, True, 1.5, -1, 2**70, "x", "", [], [None], {}, {"a": 1}]


def wrong_type(rng: random.Random) -> Frames:
    header, buffers = valid_frames(rng)
    fields = [("protocol",), ("type",), ("id",), ("body",), ("buffers",)]
    if header["type"] == "reconstruct":
        fields += [("body", "name"), ("body", "options")]
    if header["type"] == "hello":
        fields += [("body", "versions")]
    path = rng.choice(fields)
    target = header if len(path) == 1 else header[path[0]]
    original = target[path[-1]]
    target[path[-1]] = rng.choice([v for v in WRONG_VALUES if type(v) is not type(original)])
    return [dump(header), *buffers]


def bad_buffers(rng: random.Random) -> Frames:
    """Huge, negative or ill-formed shapes, bad dtypes, frames that do not match the header."""
    header = {"protocol": 1, "type": "reconstruct", "id": "f" * 32, "body": {"name": "fuzz"},
              "buffers": [{"name": "image", "dtype": "|u1", "shape": [16]}]}
    frame = rng.randbytes(16)
    desc = header["buffers"][0]
    kind = rng.randrange(6)
    if kind == 0:
        desc["shape"] = rng.choice([[2**40], [2**20, 2**20], [2**62], [10**30], [-1], [-16],
                                    [16, -1], [], [1.5], ["16"], [1, 1, 1, 1, 1, 16]])
    elif kind == 1:
        desc["dtype"] = rng.choice([">u1", "<f16", "O", "|O", "|S16", "<U4", "", "u1", "<c8",
                                    "V16", 7, None, "<" + "f" * 50])
    elif kind == 2:
        frame = frame[:rng.randrange(16)] if rng.random() < 0.5 else frame + rng.randbytes(8)
    elif kind == 3:
        return [dump(header)] + [frame] * rng.choice([0, 2, 3])  # frame count != descriptors
    elif kind == 4:
        desc["name"] = rng.choice(["", "verts_m", "x" * 100, 5, None])
    else:
        header["buffers"] = rng.choice([[desc] * 9, "image", [1, 2], [{"name": "image"}]])
    return [dump(header), frame]


def image_request(data: bytes) -> Frames:
    return [bytes(f) for f in encode(Reconstruct(image=data, name="fuzz"))]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(rng: random.Random) -> Frames:
    """A tiny PNG whose header announces up to 65535² pixels (its data would inflate to GBs)."""
    width, height = rng.randint(7000, 65535), rng.randint(7000, 65535)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, rng.choice([0, 2, 6]), 0, 0, 0)
    idat = zlib.compress(b"\0" * rng.randint(1, 1 << 16), 9)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
    return image_request(png + png_chunk(b"IEND", b""))


def not_an_image(rng: random.Random, real_jpeg: bytes) -> Frames:
    data = rng.choice([
        rng.randbytes(rng.randint(1, 4096)),
        b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(0, 200)),
        b"GIF89a" + rng.randbytes(rng.randint(0, 200)),
        b"\xff\xd8\xff\xe0" + rng.randbytes(rng.randint(0, 200)),
        real_jpeg[:rng.randint(1, 2000)],  # a real portrait cut short
        "no pixels here, just words ✓".encode() * rng.randint(1, 50),
    ])
    return image_request(data)


def unknown_or_unserved(rng: random.Random) -> Frames:
    header, buffers = valid_frames(rng)
    spoil = rng.randrange(3)
    if spoil == 0:
        header["type"] = rng.choice(["bake", "HELLO", "result", "pong", "ack", "x" * 70])
    elif spoil == 1:
        header["protocol"] = rng.choice([0, 2, 99, -1, 2**40])
    else:
        header["body"]["unexpected"] = rng.choice([1, "x", None])
    return [dump(header), *buffers]


# --- animation requests ----------------------------------------------------------------------

NOT_NAMES = ["", "jawopen", "JawOpen", "smile", "x" * 65, "left_knee", "pelvis", "jaw Open",
             "eyeBlinkLeft\n", "名前"]


def valid_animation(rng: random.Random) -> tuple[str, dict, Frames]:
    """A well-formed animate, bake or rig (for a head nobody made) as (type, header, buffers)."""
    kind = rng.choice(["animate", "bake", "rig"])
    if kind == "animate":
        names = rng.sample(ARKIT_NAMES, rng.randint(0, 4))
        joints = rng.sample(POSE_JOINTS, rng.randint(0, 3))
        msg = Animate(head_id=new_id(), expressions={n: rng.uniform(0, 1) for n in names},
                      pose={j: [rng.uniform(-1, 1) for _ in range(3)] for j in joints})
    elif kind == "bake":
        frames = rng.randint(1, 20)
        names = rng.sample(ARKIT_NAMES, rng.randint(0, 3))
        joints = rng.sample(POSE_JOINTS, rng.randint(0, 3))
        msg = Bake(head_id=new_id(), expression_names=names, pose_joints=joints,
                   expressions=np.zeros((frames, len(names)), np.float32),
                   poses=np.zeros((frames, len(joints), 3), np.float32))
    else:
        msg = Rig(head_id=new_id())
    header, *buffers = encode(msg)
    return kind, json.loads(bytes(header)), [bytes(b) for b in buffers]


def bad_animation(rng: random.Random) -> Frames:
    """Animate / bake / rig spoiled in one place: names, values, arrays or fields."""
    kind, header, buffers = valid_animation(rng)
    body = header["body"]
    spoil = rng.randrange(6)
    if spoil == 0:  # a field of the wrong type, missing, or unknown
        key = rng.choice(list(body) + ["unexpected"])
        if key in body and rng.random() < 0.3:
            del body[key]
        else:
            body[key] = rng.choice([v for v in WRONG_VALUES if type(v) is not type(body.get(key))])
    elif spoil == 1:  # a head id that is no id
        body["head_id"] = rng.choice(["", "../etc", "x" * 65, "id with spaces", 7, None])
    elif kind == "animate":
        table = rng.choice(["expressions", "pose"])
        name = rng.choice(NOT_NAMES + (["jawOpen"] if table == "expressions" else ["head"]))
        value = rng.choice([
            rng.choice([2.5, -2.01, 1e300, -1e300, "1", None, [], True]) if table == "expressions"
            else rng.choice([[7.0, 0.0, 0.0], [0.0, 1.0], [0, 0, 0, 0], [1e300, 0, 0],
                             [None, 0, 0], "0,0,0", {"x": 0}, 1.0]),
        ])
        if name in ("jawOpen", "head") and value in ([], [0, 0, 0, 0]):
            value = None
        body[table] = {**body[table], name: value}
        raw = json.dumps(header)
        if rng.random() < 0.2:  # NaN / Infinity tokens, which strict JSON does not have
            raw = raw.replace('"body": {', f'"body": {{"nan": {rng.choice(["NaN", "Infinity"])}, ', 1)
        return [raw.encode(), *buffers]
    elif kind == "bake":
        frames = header["buffers"][0]["shape"][0]
        names, joints = len(body["expression_names"]), len(body["pose_joints"])
        which = rng.randrange(7)
        if which == 0:  # a dtype the bake does not take, with bytes to match
            dtype = rng.choice(["<f8", "<i4", "|u1", "<f2"])
            arr = np.zeros((frames, names), dtype)
            header["buffers"][0] = {"name": "expressions", "dtype": dtype, "shape": list(arr.shape)}
            buffers[0] = arr.tobytes()
        elif which == 1:  # the wrong rank or frame count
            shape = rng.choice([[frames], [frames, names, 1], [frames + 1, joints, 3],
                                [frames, joints, 2], [frames, joints]])
            arr = np.zeros(shape, np.float32)
            target = 0 if len(shape) == 1 or len(shape) == 3 and shape[2] == 1 else 1
            name = "expressions" if target == 0 else "poses"
            header["buffers"][target] = {"name": name, "dtype": "<f4", "shape": shape}
            buffers[target] = arr.tobytes()
        elif which == 2:  # 0 or more than MAX_BAKE_FRAMES frames (no columns: no bytes needed)
            frames = rng.choice([0, 10_001, 100_000, 2**31])
            body["expression_names"], body["pose_joints"] = [], []
            header["buffers"] = [{"name": "expressions", "dtype": "<f4", "shape": [frames, 0]},
                                 {"name": "poses", "dtype": "<f4", "shape": [frames, 0, 3]}]
            buffers = [b"", b""]
        elif which == 3:  # non-finite or out-of-range values
            body["pose_joints"] = ["head"]
            poses = np.zeros((frames, 1, 3), np.float32)
            poses[rng.randrange(frames), 0, rng.randrange(3)] = rng.choice(
                [np.nan, np.inf, -np.inf, 7.0])
            header["buffers"][1] = {"name": "poses", "dtype": "<f4", "shape": [frames, 1, 3]}
            buffers[1] = poses.tobytes()
        elif which == 4:  # unknown or repeated names
            key = rng.choice(["expression_names", "pose_joints"])
            current = body[key]
            body[key] = (current + current[:1]) if current and rng.random() < 0.5 else \
                current[:-1] + [rng.choice(NOT_NAMES)] if current else [rng.choice(NOT_NAMES)]
        elif which == 5:  # a buffer missing, or one too many
            if rng.random() < 0.5:
                del header["buffers"][1]
                buffers = buffers[:1]
            else:
                header["buffers"].append({"name": "extra", "dtype": "|u1", "shape": [1]})
                buffers.append(b"\0")
        else:  # a frame number out of range
            body["frame_start"] = rng.choice([2**40, -2**40, 1.5, "1", None])
    else:  # rig carries no buffers
        header["buffers"] = [{"name": "skin_weights", "dtype": "<f4", "shape": [1, 1]}]
        buffers = [b"\0" * 4]
    return [dump(header), *buffers]


def unknown_head(rng: random.Random) -> Frames:
    """A well-formed animate, bake or rig for a head this backend never made."""
    _, header, buffers = valid_animation(rng)
    return [dump(header), *buffers]


def cases(rng: random.Random, real_jpeg: bytes) -> Iterator[tuple[str, Frames]]:
    makers: dict[str, Callable[[random.Random], Frames]] = {
        "random_frames": random_frames, "truncated_header": truncated_header,
        "invalid_utf8": invalid_utf8, "wrong_type": wrong_type, "bad_buffers": bad_buffers,
        "bomb_png": bomb_png, "not_an_image": lambda r: not_an_image(r, real_jpeg),
        "unknown_or_unserved": unknown_or_unserved, "bad_animation": bad_animation,
        "unknown_head": unknown_head,
    }
    names = sorted(makers)
    while True:
        name = rng.choice(names)
        yield name, makers[name](rng)


# --- the run ------------------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def exchange(sock: zmq.Socket, frames: Frames) -> object | None:
    sock.send_multipart(frames)
    if not sock.poll(REPLY_TIMEOUT_S * 1000):
        return None
    return decode(sock.recv_multipart())


def wait_until_warm(backend) -> None:
    """The worker imports torch and the pipeline after the ready line; memory is measured after."""
    deadline = time.monotonic() + BACKEND_WARM_TIMEOUT_S
    while not any(e in backend.log() for e in ('"pipeline_loaded"', '"pipeline_unavailable"')):
        assert time.monotonic() < deadline, "the backend never finished warming up"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, portraits_dir) -> dict:
    """Run the whole fuzz once; the tests below read its findings."""
    from conftest import start_backend_process

    backend = start_backend_process(tmp_path_factory.mktemp("fuzz"),
                                    "--max-message-mib", str(MAX_MESSAGE_MIB))
    wait_until_warm(backend)
    rng = random.Random(SEED)
    stream = cases(rng, (portraits_dir / "fr_obama.jpg").read_bytes())
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(backend.address)
    findings = {"sent": 0, "per_kind": {}, "unanswered": [], "not_errors": [], "codes": {},
                "dropped_then_hello": 0}
    try:
        for i in range(WARM_UP_CASES + N_CASES):
            if i == WARM_UP_CASES:
                findings["rss_before_mb"] = rss_mb(backend.process.pid)
            name, frames = next(stream)
            reply = exchange(sock, frames)
            findings["sent"] += i >= WARM_UP_CASES
            findings["per_kind"][name] = findings["per_kind"].get(name, 0) + 1
            if reply is None:
                findings["unanswered"].append((name, frames[0][:200]))
                break  # the socket's state is unknown now; the assertion will say why
            if not isinstance(reply, Error) or not isinstance(reply.code, ErrorCode):
                findings["not_errors"].append((name, frames[0][:200], type(reply).__name__))
            else:
                findings["codes"][reply.code.value] = findings["codes"].get(reply.code.value, 0) + 1
            if i % 2000 == 1999:  # now and then a frame ZeroMQ drops with the connection
                findings["dropped_then_hello"] += dropped_frame_then_hello(backend.address)
        findings["rss_after_mb"] = rss_mb(backend.process.pid)
        findings["alive"] = backend.process.poll() is None
        with HeadliftClient(backend.address) as client:
            findings["hello_after"] = client.hello(timeout_s=REPLY_TIMEOUT_S).versions
    finally:
        sock.close()
        findings["exit_status"] = backend.stop()
    print("fuzz findings:", {k: v for k, v in findings.items() if k not in ("unanswered",)})
    return findings


def dropped_frame_then_hello(address: str) -> int:
    """Send one frame over the limit (ZeroMQ closes that connection), then hello on a new one."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    sock.send_multipart([b"\0" * (MAX_MESSAGE_MIB * (1 << 20) + 1)])
    sock.close()
    with HeadliftClient(address) as client:
        return int(client.hello(timeout_s=REPLY_TIMEOUT_S).versions == [1])


def test_every_malformed_message_gets_an_error_reply_with_a_code(fuzzed):
    assert fuzzed["sent"] >= N_CASES
    assert fuzzed["unanswered"] == []
    assert fuzzed["not_errors"] == []
    assert set(fuzzed["codes"]) <= {c.value for c in ErrorCode}


def test_the_fuzzed_backend_never_crashes_and_still_answers_hello(fuzzed):
    assert fuzzed["alive"] and fuzzed["hello_after"] == [1]
    assert fuzzed["dropped_then_hello"] == (WARM_UP_CASES + N_CASES) // 2000
    assert fuzzed["exit_status"] == 0  # SIGTERM: a clean stop, not a crash


def test_the_fuzzed_backend_memory_grows_less_than_50_mb(fuzzed):
    assert fuzzed["rss_after_mb"] - fuzzed["rss_before_mb"] < RSS_GROWTH_LIMIT_MB


def test_every_kind_of_malformation_was_tried(fuzzed):
    assert len(fuzzed["per_kind"]) == 10 and min(fuzzed["per_kind"].values()) > 500
    assert {"bad_message", "bad_image", "image_too_large", "unknown_type",
            "unsupported_version", "unknown_head"} <= set(fuzzed["codes"])
