"""Headlift wire protocol: message types, encode/decode, error codes, a small client.

Pure Python + numpy (the client also needs pyzmq). Copied into the Blender add-on as
``headlift.shared``, so modules here use relative imports only.
"""
from .errors import ErrorCode, ProtocolError

__all__ = ["ErrorCode", "ProtocolError"]
