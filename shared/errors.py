"""Error codes of the wire protocol and the one exception that carries them.

The codes are part of protocol v1: both sides compare them as strings, so values never change;
new codes may be added (a client that does not know one treats it like ``internal``).
"""
from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why a request failed. ``str`` values so they go into JSON unchanged."""

    BAD_MESSAGE = "bad_message"  # frames or header malformed, a field of the wrong type or range
    UNSUPPORTED_VERSION = "unsupported_version"  # "protocol" is not a version this side speaks
    UNKNOWN_TYPE = "unknown_type"  # well-formed header, but a message type nobody knows
    MESSAGE_TOO_LARGE = "message_too_large"  # header, one buffer or the whole message over a limit
    BAD_IMAGE = "bad_image"  # the image bytes are not a decodable picture
    IMAGE_TOO_LARGE = "image_too_large"  # decodable, but more pixels than the backend accepts
    BAD_VIDEO = "bad_video"  # a driving video that cannot be read, has no frames or is too long
    NO_FACE = "no_face"  # the pipeline found no human face
    CANCELLED = "cancelled"  # the client cancelled the job
    BUSY = "busy"  # the job queue is full; try again later
    UNKNOWN_HEAD = "unknown_head"  # a head_id the backend does not hold (expired or never made)
    NO_RIG = "no_rig"  # the head exists but has no animation rig (animate / bake / rig need one)
    INTERNAL = "internal"  # a bug or unexpected failure in the backend
    BACKEND_UNREACHABLE = "backend_unreachable"  # client side only: no answer within the timeout

    @classmethod
    def parse(cls, value: str) -> "ErrorCode":
        """The code for a wire string; unknown strings (a newer peer) become INTERNAL."""
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL


class ProtocolError(Exception):
    """A message could not be encoded/decoded, or the peer answered with an error.

    ``code`` says what went wrong in machine terms, ``message`` in human terms. ``request_id`` is
    the id of the request concerned when it is known (so the server can address its error reply).
    """

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{ErrorCode(code).value}: {message}")
        self.code = ErrorCode(code)
        self.message = message
        self.request_id = request_id
