"""Field readers used by ``protocol.decode``: each one checks type and range and names the field.

Every failure raises ``ProtocolError(BAD_MESSAGE, "<where>.<key>: <what is wrong>")`` so a peer
learns exactly which field it got wrong. JSON numbers arrive as ``int`` or ``float``; ``bool`` is a
subclass of ``int`` in Python and is refused wherever a number is meant.
"""
from __future__ import annotations

import math
import re
from typing import Any

from .errors import ErrorCode, ProtocolError

_MISSING: Any = object()

# Request ids and head ids: uuid4 hex in practice; any short token of safe characters is accepted.
ID_PATTERN = re.compile(r"[0-9A-Za-z_-]{1,64}")


def bad(where: str, what: str) -> ProtocolError:
    """A ``bad_message`` error about one field."""
    return ProtocolError(ErrorCode.BAD_MESSAGE, f"{where}: {what}")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds C0/C1 control characters other than tab and newline."""
    return any((ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160 for c in text)


class Fields:
    """Reads the keys of one JSON object; ``done()`` refuses keys nobody read (typos, wrong version).

    >>> f = Fields({"stage": "mesh"}, "progress.body"); f.str("stage", max_len=64); f.done()
    'mesh'
    """

    def __init__(self, obj: object, where: str) -> None:
        if not isinstance(obj, dict):
            raise bad(where, f"must be a JSON object, got {_type_name(obj)}")
        self.obj: dict = obj
        self.where = where
        self._read: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        if key in self.obj:
            return self.obj[key]
        if default is _MISSING:
            raise bad(self.where, f"missing required field {key!r}")
        return default

    def raw(self, key: str, *, default: Any = _MISSING) -> Any:
        """The value unchecked, for a checker elsewhere (it must name ``where`` itself)."""
        return self._get(key, default)

    def done(self) -> None:
        unknown = sorted(set(self.obj) - self._read)
        if unknown:
            raise bad(self.where, f"unknown field(s) {', '.join(map(repr, unknown[:5]))}")

    def str(self, key: str, *, max_len: int, min_len: int = 0, default: Any = _MISSING,
            single_line: bool = True) -> str:
        value = self._get(key, default)
        return check_str(value, f"{self.where}.{key}", max_len=max_len, min_len=min_len,
                         single_line=single_line)

    def id(self, key: str, *, default: Any = _MISSING, allow_empty: bool = False) -> str:
        value = self._get(key, default)
        return check_id(value, f"{self.where}.{key}", allow_empty=allow_empty)

    def int(self, key: str, *, lo: int, hi: int, default: Any = _MISSING) -> int:
        return check_int(self._get(key, default), f"{self.where}.{key}", lo=lo, hi=hi)

    def float(self, key: str, *, lo: float = -math.inf, hi: float = math.inf,
              default: Any = _MISSING) -> float:
        return check_float(self._get(key, default), f"{self.where}.{key}", lo=lo, hi=hi)

    def bool(self, key: str, *, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise bad(f"{self.where}.{key}", f"must be true or false, got {_type_name(value)}")
        return value

    def list(self, key: str, *, max_len: int, min_len: int = 0, default: Any = _MISSING) -> list:
        value = self._get(key, default)
        where = f"{self.where}.{key}"
        if not isinstance(value, list):
            raise bad(where, f"must be a list, got {_type_name(value)}")
        if not min_len <= len(value) <= max_len:
            raise bad(where, f"must hold {min_len}..{max_len} items, got {len(value)}")
        return value

    def object(self, key: str, *, default: Any = _MISSING) -> dict:
        value = self._get(key, default)
        if not isinstance(value, dict):
            raise bad(f"{self.where}.{key}", f"must be a JSON object, got {_type_name(value)}")
        return value


def check_str(value: object, where: str, *, max_len: int, min_len: int = 0,
              single_line: bool = True) -> str:
    """A string of ``min_len..max_len`` characters without control characters."""
    if not isinstance(value, str):
        raise bad(where, f"must be a string, got {_type_name(value)}")
    if not min_len <= len(value) <= max_len:
        raise bad(where, f"must be {min_len}..{max_len} characters long, got {len(value)}")
    if has_control_chars(value) or (single_line and "\n" in value):
        raise bad(where, "must not contain control characters")
    return value


def check_id(value: object, where: str, *, allow_empty: bool = False) -> str:
    """A request or head id: 1..64 characters of ``[0-9A-Za-z_-]`` (uuid4 hex in practice)."""
    if allow_empty and value == "":
        return ""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise bad(where, "must be an id of 1..64 characters [0-9A-Za-z_-] (uuid4 hex)")
    return value


def check_int(value: object, where: str, *, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(where, f"must be an integer, got {_type_name(value)}")
    if not lo <= value <= hi:
        raise bad(where, f"must be in {lo}..{hi}, got {value}")
    return value


def check_float(value: object, where: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    """A finite number in ``[lo, hi]``; JSON integers are accepted and returned as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(where, f"must be a number, got {_type_name(value)}")
    value = float(value)
    if not math.isfinite(value) or not lo <= value <= hi:
        raise bad(where, f"must be a finite number in [{lo}, {hi}], got {value}")
    return value


def check_float_list(value: object, where: str, *, length: int) -> list[float]:
    if not isinstance(value, list) or len(value) != length:
        raise bad(where, f"must be a list of {length} numbers")
    return [check_float(v, f"{where}[{i}]") for i, v in enumerate(value)]


def check_names(value: object, where: str, *, known: tuple[str, ...], what: str) -> list[str]:
    """A list of distinct names, each one of ``known``. Unknown names are listed in the error, so
    an artist sees at once which slider or CSV column the backend does not know."""
    if not isinstance(value, list) or len(value) > len(known):
        raise bad(where, f"must be a list of at most {len(known)} {what} names")
    names = [check_str(v, f"{where}[{i}]", min_len=1, max_len=64) for i, v in enumerate(value)]
    check_known(names, where, known=known, what=what)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise bad(where, f"repeats {what} name(s) {', '.join(map(repr, dupes[:10]))}")
    return names


def check_known(names: list[str], where: str, *, known: tuple[str, ...], what: str) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(repr(n[:64]) for n in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise bad(where, f"unknown {what} name(s) {listed}{more}; known: {', '.join(known)}")
