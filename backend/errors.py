"""Typed backend exceptions and the one table that maps them to protocol error codes.

Raise these from any backend stage; the server turns them into ``error`` replies via
``error_code_for``. Anything not listed here becomes ``internal``.
"""
from __future__ import annotations

from shared.errors import ErrorCode


class BackendError(Exception):
    """Base of every expected backend failure. ``str(exc)`` is a message fit for the artist."""


class BadRequestError(BackendError):
    """The request is well-formed on the wire but asks for something invalid (e.g. an unknown option)."""


class BadImageError(BackendError):
    """The bytes are not an image we can decode (wrong format, truncated, corrupt)."""


class ImageTooLargeError(BackendError):
    """The image decodes, but has more pixels than the configured limit."""


class BadVideoError(BackendError):
    """A driving video cannot be used: unreadable, no video stream, too long or too large."""


class NoFaceError(BackendError):
    """No human face was found in the portrait."""


class CancelledError(BackendError):
    """The job was cancelled by the client (``should_cancel()`` turned true at a stage boundary)."""


class BusyError(BackendError):
    """The job queue is full."""


class UnknownHeadError(BackendError):
    """A request named a head_id that the server does not hold (evicted or never made)."""


class NoRigError(BackendError):
    """The head exists but carries no animation rig, so it cannot be animated, baked or exported."""


# The ONE table. Lookup walks the exception's MRO, so a subclass of NoFaceError is still no_face.
ERROR_CODES: dict[type[BaseException], ErrorCode] = {
    BadRequestError: ErrorCode.BAD_MESSAGE,
    BadImageError: ErrorCode.BAD_IMAGE,
    ImageTooLargeError: ErrorCode.IMAGE_TOO_LARGE,
    BadVideoError: ErrorCode.BAD_VIDEO,
    NoFaceError: ErrorCode.NO_FACE,
    CancelledError: ErrorCode.CANCELLED,
    BusyError: ErrorCode.BUSY,
    UnknownHeadError: ErrorCode.UNKNOWN_HEAD,
    NoRigError: ErrorCode.NO_RIG,
}


def error_code_for(exc: BaseException) -> ErrorCode:
    """The protocol code for an exception: its nearest listed ancestor, else ``internal``."""
    for cls in type(exc).__mro__:
        if cls in ERROR_CODES:
            return ERROR_CODES[cls]
    return ErrorCode.INTERNAL
