"""The time range of a read: both ends with a time zone, end after start, at most 7 days."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import HTTPException, Query

MAX_SPAN = timedelta(days=7)


def time_range(
    start: Annotated[datetime, Query(description="ISO 8601 with time zone")],
    end: Annotated[datetime, Query(description="ISO 8601 with time zone")],
) -> tuple[datetime, datetime]:
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "start and end must carry a time zone (ISO 8601, e.g. ...Z)")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    if end - start > MAX_SPAN:
        raise HTTPException(422, f"the range may span at most {MAX_SPAN.days} days")
    return start, end
