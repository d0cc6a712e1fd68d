"""`get_current_time`: the current date and time in a given IANA time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import ToolException, tool
from pydantic import BaseModel, Field


class GetCurrentTimeArgs(BaseModel):
    """Arguments of `get_current_time`."""

    timezone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone name such as 'UTC', 'Europe/Paris' or 'America/New_York'.",
    )


@tool("get_current_time", args_schema=GetCurrentTimeArgs)
def get_current_time(timezone: str = "UTC") -> str:
    """Return the current date, time and weekday in a time zone (ISO 8601)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolException(
            f"unknown time zone {timezone!r}; use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from None
    now = datetime.now(zone)
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')}, {timezone})"
