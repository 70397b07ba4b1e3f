"""Text output the way notation (a Go program) prints it: trees, tab-aligned tables, JSON, times.

Pure functions, no heavy imports: ``list``, ``inspect``, ``cert`` and ``key`` share them so
their output matches notation's byte for byte (tree glyphs, tabwriter padding, Go time layouts,
``json.MarshalIndent`` escaping).
"""

from __future__ import annotations

import json

from ocisign.lazy_re import lazy_re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable, Sequence
    from typing import Any

_ITEM = "├── "
_ITEM_LAST = "└── "
_SUB = "│   "
_SUB_LAST = "    "


class TreeNode:
    """A node of a printed tree (notation's ``internal/tree``): ``value`` and ``children``.

    A plain class (``list`` prints one; a dataclass would import :mod:`dataclasses`).
    """

    __slots__ = ("children", "value")

    def __init__(self, value: str, children: list[TreeNode] | None = None) -> None:
        self.value = value
        self.children: list[TreeNode] = [] if children is None else children

    def __repr__(self) -> str:
        return f"TreeNode(value={self.value!r}, children={self.children!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TreeNode):
            return NotImplemented
        return (self.value, self.children) == (other.value, other.children)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def add(self, value: str) -> TreeNode:
        """Append a child holding ``value`` and return it."""
        node = TreeNode(value)
        self.children.append(node)
        return node

    def add_pair(self, key: str, value: str) -> TreeNode:
        """Append a ``key: value`` child and return it."""
        return self.add(f"{key}: {value}")

    def lines(self) -> list[str]:
        """The rendered lines, root first."""
        out: list[str] = []
        self._render("", "", "", out)
        return out

    def _render(self, prefix: str, marker: str, next_prefix: str, out: list[str]) -> None:
        out.append(prefix + marker + self.value)
        last = len(self.children) - 1
        for i, child in enumerate(self.children):
            item, sub = (_ITEM_LAST, _SUB_LAST) if i == last else (_ITEM, _SUB)
            child._render(next_prefix, item, next_prefix + sub, out)

    def render(self) -> str:
        """The whole tree as text with a trailing newline."""
        return "".join(line + "\n" for line in self.lines())


def tab_table(rows: Sequence[Sequence[str]], *, padding: int = 3) -> str:
    """Rows formatted like Go's ``tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)`` with every cell tab-terminated.

    Each cell is left-aligned and padded to the column width plus ``padding`` (so lines keep
    the trailing padding notation prints). Widths count characters, as tabwriter counts runes.
    """
    if not rows:
        return ""
    ncols = max(len(r) for r in rows)
    widths = [max((len(r[c]) for r in rows if c < len(r)), default=0) + padding for c in range(ncols)]
    return "".join("".join(cell.ljust(widths[c]) for c, cell in enumerate(r)) + "\n" for r in rows)


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPE_RE = lazy_re("[<>&\u2028\u2029]")


def go_json(obj: Any, *, indent: int | None = 4, sort_keys: bool = False, allow_nan: bool = True) -> str:
    """JSON as Go's ``json.MarshalIndent(obj, "", "    ")`` writes it (HTML characters escaped).

    The package's one Go-style JSON encoder (``indent=None`` is Go's compact ``json.Marshal``;
    :func:`go_marshal` adds the envelope rules). Key order is the order of ``obj``'s dicts, or
    sorted with ``sort_keys`` (pass maps through :func:`sorted_map` where Go would marshal a
    ``map``, which sorts keys). Non-ASCII text is written raw (UTF-8), as Go does.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False, separators=(",", ": ") if indent else (",", ":"),
                      sort_keys=sort_keys, allow_nan=allow_nan)
    return _GO_ESCAPE_RE.sub(lambda m: _GO_ESCAPES[m.group(0)], text)


def go_marshal(obj: Any, *, sort_keys: bool) -> bytes:
    """Compact UTF-8 JSON as Go's ``json.Marshal`` writes it, for signed envelope bytes.

    ``sort_keys`` mimics Go maps (sorted keys); without it the given key order is kept (Go structs).
    Lone surrogates and NaN/Infinity raise ValueError.
    """
    return go_json(obj, indent=None, sort_keys=sort_keys, allow_nan=False).encode("utf-8")


def sorted_map(m: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``m`` with keys sorted (how Go marshals ``map[string]T``); None becomes ``{}``."""
    return {k: m[k] for k in sorted(m)} if m else {}


def _offset(t: dt.datetime, *, colon: bool, z: bool) -> str:
    import datetime as dt  # not at import: list prints no time

    off = t.utcoffset() or dt.timedelta(0)
    if z and off == dt.timedelta(0):
        return "Z"
    sign = "-" if off < dt.timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    sep = ":" if colon else ""
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


def _aware(t: dt.datetime) -> dt.datetime:
    import datetime as dt

    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def go_rfc3339(t: dt.datetime) -> str:
    """Go ``time.RFC3339``: whole seconds, ``Z`` for a zero offset, else ``±hh:mm``."""
    t = _aware(t)
    return f"{t:%Y-%m-%dT%H:%M:%S}{_offset(t, colon=True, z=True)}"


def go_rfc3339_nano(t: dt.datetime) -> str:
    """Go ``time.RFC3339Nano``: fractional seconds without trailing zeros."""
    t = _aware(t)
    frac = f".{t.microsecond:06d}".rstrip("0").rstrip(".") if t.microsecond else ""
    return f"{t:%Y-%m-%dT%H:%M:%S}{frac}{_offset(t, colon=True, z=True)}"


def go_ansic(t: dt.datetime) -> str:
    """Go ``time.ANSIC`` (``Mon Jan _2 15:04:05 2006``) in the time's own zone."""
    t = _aware(t)
    return f"{t:%a %b} {t.day:>2} {t:%H:%M:%S %Y}"


def go_time_string(t: dt.datetime) -> str:
    """Go ``time.Time.String()`` for a UTC or fixed-offset time: ``2006-01-02 15:04:05 +0000 UTC``."""
    t = _aware(t)
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    off = _offset(t, colon=False, z=False)
    zone = "UTC" if off == "+0000" else off
    return f"{t:%Y-%m-%d %H:%M:%S}{frac} {off} {zone}"


def join_lines(lines: Iterable[str]) -> str:
    """Lines joined with a newline after each."""
    return "".join(line + "\n" for line in lines)


def go_quote(value: object) -> str:
    """A string quoted like Go's ``%q`` for messages: double quotes, backslash escapes."""
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)
