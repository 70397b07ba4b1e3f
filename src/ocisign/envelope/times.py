"""Times in envelopes: RFC 3339 text (JWS) and epoch seconds (COSE), truncated to whole seconds."""

from __future__ import annotations

import datetime as dt
import sys

from ocisign.envelope.encoding import json_type
from ocisign.envelope.errors import EnvelopeError
from ocisign.errors import SigningError
from ocisign.lazy_re import lazy_re

#: ASCII digits only, as Go's time.Parse reads them (``\d`` would also match e.g. Arabic-Indic
#: digits, which ``int()`` then accepts: notation refuses such a time, so must we)
_RFC3339_RE = lazy_re(
    r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})\Z"
)


def require_aware(t: dt.datetime, *, what: str) -> dt.datetime:
    """Return ``t`` if it carries a UTC offset; SigningError for naive datetimes."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise SigningError(f"{what} must be a timezone-aware datetime")
    return t


def truncate_seconds(t: dt.datetime) -> dt.datetime:
    """``t`` converted to UTC with fractional seconds dropped (notation's ``Truncate(time.Second)``)."""
    return require_aware(t, what="time").astimezone(dt.timezone.utc).replace(microsecond=0)


def format_time(t: dt.datetime) -> str:
    """RFC 3339 in UTC, whole seconds: ``YYYY-MM-DDTHH:MM:SSZ``."""
    if t.tzinfo is _UTC and t.year >= 1000:  # the common case, without strftime
        return f"{t.year}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"
    return truncate_seconds(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, *, where: str = "time") -> dt.datetime:
    """Parse an RFC 3339 date-time (``Z`` or ``±hh:mm`` offset, optional fraction); EnvelopeError otherwise.

    The result is timezone-aware and keeps the given offset; sub-microsecond digits are dropped.
    """
    if not isinstance(text, str):
        raise EnvelopeError(f"{where}: expected an RFC 3339 time string, got {json_type(text)}")
    if (len(text) == 20 and text[19] == "Z" and text[4] == text[7] == "-" and text[10] == "T"
            and text[13] == text[16] == ":" and text.isascii()):  # what notation writes: YYYY-MM-DDTHH:MM:SSZ
        try:
            return _from_iso_z(text)
        except ValueError:
            raise EnvelopeError(f"{where}: {text!r} is not a valid RFC 3339 date-time") from None
    m = _RFC3339_RE.match(text)
    if not m:
        raise EnvelopeError(f"{where}: {text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        if zone == "Z":
            tz = _UTC
        else:
            oh, om = int(zone[1:3]), int(zone[4:6])
            if oh > 23 or om > 59:
                raise ValueError("offset out of range")
            delta = dt.timedelta(hours=oh, minutes=om)
            tz = dt.timezone(-delta if zone[0] == "-" else delta)
        micro = int(frac[:6].ljust(6, "0")) if frac else 0
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except (ValueError, OverflowError):
        raise EnvelopeError(f"{where}: {text!r} is not a valid RFC 3339 date-time") from None


_UTC = dt.timezone.utc

if sys.version_info >= (3, 11):
    #: ``YYYY-MM-DDTHH:MM:SSZ`` (separators checked, ASCII) to an aware UTC datetime: CPython's
    #: parser takes exactly two or four ASCII digits ('0'-'9') at each place, so no sign, space or
    #: other character gets through
    _from_iso_z = dt.datetime.fromisoformat
else:  # pragma: no cover - Python 3.10 reads no "Z"

    def _from_iso_z(text: str) -> dt.datetime:
        digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
        if not digits.isdigit():
            raise ValueError(text)
        return dt.datetime.fromisoformat(text[:19] + "+00:00")


def to_unix(t: dt.datetime) -> int:
    """Whole seconds since the epoch (truncated), for COSE tag-1 times."""
    t = require_aware(t, what="time")
    return int((t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(seconds=1))


def from_unix(seconds: int, *, where: str = "time") -> dt.datetime:
    """UTC datetime of an epoch second count; EnvelopeError when out of range."""
    try:
        return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise EnvelopeError(f"{where}: epoch time {seconds} is out of range") from None
