"""Regular expressions compiled on first use, so importing a module costs no ``re.compile``.

``NAME_RE = lazy_re(r"…")`` at module level behaves like ``re.compile(r"…")`` (``match``,
``fullmatch``, ``search``, ``sub``, ``pattern``… are those of the compiled pattern) but compiles
the first time one of them is used.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any, overload

__all__ = ["lazy_re"]


class _LazyPattern:
    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(*self._args)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy_re({self._args[0]!r})"


if TYPE_CHECKING:  # the overloads for type checkers; at run time no typing.overload

    @overload
    def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]: ...

    @overload
    def lazy_re(pattern: bytes, flags: int = 0) -> re.Pattern[bytes]: ...

    def lazy_re(pattern: str | bytes, flags: int = 0) -> Any: ...

else:

    def lazy_re(pattern, flags=0):
        """A pattern compiled on first use (see the module docstring)."""
        return _LazyPattern(pattern, flags)
