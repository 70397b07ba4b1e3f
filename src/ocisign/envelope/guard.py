"""The guard every envelope parser runs behind: a size/type preamble and one exception type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocisign.envelope.errors import EnvelopeError
from ocisign.errors import OcisignError
from ocisign.oci.model import MAX_ENVELOPE_SIZE


def open_guarded(format_name: str, parse: Callable[[bytes], Any], blob: bytes) -> Any:
    """Run an envelope parser so hostile input only ever raises EnvelopeError (check ``integrity``).

    ``parse`` receives ``bytes`` no larger than MAX_ENVELOPE_SIZE.
    """
    if type(blob) is not bytes:
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise EnvelopeError(f"{format_name} envelope must be bytes")
        blob = bytes(blob)
    if len(blob) > MAX_ENVELOPE_SIZE:
        raise EnvelopeError(f"{format_name} envelope of {len(blob)} bytes exceeds the {MAX_ENVELOPE_SIZE} limit")
    try:
        return parse(blob)
    except EnvelopeError:
        raise
    except OcisignError as exc:
        raise EnvelopeError(f"invalid {format_name} envelope: {exc}") from None
    except Exception as exc:  # hostile input must never escape as another exception type
        raise EnvelopeError(f"invalid {format_name} envelope: {type(exc).__name__}: {exc}") from None
