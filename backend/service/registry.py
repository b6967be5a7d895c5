"""Finished heads kept in memory by head_id, so later requests (animation) can refer to them."""
from __future__ import annotations

import threading
from collections import OrderedDict

from backend.errors import UnknownHeadError
from backend.reconstruct.result import Reconstruction


class HeadRegistry:
    """A small LRU map head_id -> Reconstruction. Thread-safe: the worker adds, any thread reads.

    Heads hold meshes and textures (tens of MB), so only ``capacity`` are kept; the least
    recently used one goes first.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._heads: OrderedDict[str, Reconstruction] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, head_id: str, head: Reconstruction) -> None:
        """Store ``head`` under ``head_id`` (uuid4 hex), evicting the least recently used."""
        with self._lock:
            self._heads[head_id] = head
            while len(self._heads) > self.capacity:
                self._heads.popitem(last=False)

    def get(self, head_id: str) -> Reconstruction:
        """The head, marked as recently used. Raises UnknownHeadError if evicted or never made."""
        with self._lock:
            head = self._heads.get(head_id)
            if head is None:
                raise UnknownHeadError(f"this backend holds no head with id {head_id!r}: it was "
                                       f"restarted since that head was made, or the head was "
                                       f"evicted (it keeps the last {self.capacity}); reconstruct "
                                       f"the head again")
            self._heads.move_to_end(head_id)
            return head

    def __len__(self) -> int:
        with self._lock:
            return len(self._heads)

    def __contains__(self, head_id: object) -> bool:
        with self._lock:
            return head_id in self._heads
