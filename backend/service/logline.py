"""One JSON object per line on stderr: easy to read, easy to grep, easy to parse in tests."""
from __future__ import annotations

import json
import sys
import threading
import time

_lock = threading.Lock()  # the socket thread and the worker both log


def log_event(event: str, **fields: object) -> None:
    """Write ``{"t": unix seconds, "event": event, **fields}`` as one line to stderr."""
    line = json.dumps({"t": round(time.time(), 3), "event": event, **fields}, default=str)
    with _lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
