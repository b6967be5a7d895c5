"""Headlift wire protocol: message types, encode/decode, error codes, a small client.

Pure Python + numpy (``client`` also needs pyzmq, which Blender bundles). Copied into the Blender
add-on as ``headlift.shared``, so modules here use relative imports only. ``client`` is not imported
here so that the protocol itself never needs pyzmq.
"""
from .errors import ErrorCode, ProtocolError
from .messages import (
    PROTOCOL_VERSION, Ack, Animate, Bake, BakeChunk, BakeDone, CameraInfo, Cancel, Drive,
    DriveResult, Error, Frame, Hello, Message, Ping, Pong, Progress, Reconstruct, Result, Rig, RigData, Shutdown, new_id,
)
from .protocol import DEFAULT_LIMITS, ProtocolLimits, decode, encode

__all__ = [
    "PROTOCOL_VERSION", "DEFAULT_LIMITS", "ErrorCode", "ProtocolError", "ProtocolLimits",
    "encode", "decode", "new_id", "Message", "Hello", "Ping", "Pong", "Reconstruct", "Progress",
    "Result", "CameraInfo", "Error", "Cancel", "Ack", "Shutdown", "Animate", "Frame", "Bake",
    "BakeChunk", "BakeDone", "Rig", "RigData", "Drive", "DriveResult",
]
