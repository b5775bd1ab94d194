"""The camera ids known to be registered, so the hot paths need no database read to check one.

Sound because a registration is never undone through the API (there is no delete route) and
`frames.camera_id` references `cameras`: a camera removed by hand in the database still fails
the frame's insert. Only ids the database confirmed are kept (an unknown id is asked every
time, so a caller cannot fill the set), and at most `capacity` of them, least recently used out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

DEFAULT_CAPACITY = 10_000


class KnownCameras:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, camera_id: str) -> None:
        self._ids[camera_id] = None
        self._ids.move_to_end(camera_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    async def exists(self, camera_id: str, registered: Callable[[str], Awaitable[bool]]) -> bool:
        """Whether the camera is registered: from the set, else from `registered` (the database)."""
        if camera_id in self._ids:
            self._ids.move_to_end(camera_id)
            return True
        if await registered(camera_id):
            self.add(camera_id)
            return True
        return False
