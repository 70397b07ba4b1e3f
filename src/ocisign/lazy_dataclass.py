"""Dataclasses built on first use, so importing a module that declares records costs no
``dataclasses`` processing (which compiles ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``…
with ``exec``: about half a millisecond per class).

``@dataclass(frozen=True, kw_only=True)`` from here takes the same options as
:func:`dataclasses.dataclass` and gives the same class, but the class is processed when its first
instance is made (or when a subclass is declared, or :func:`materialize` is called), not when the
module is imported (the class keeps a small ``__new__`` that does this). A command that never
makes a ``VerificationContext`` never pays for it. Until then the class is not yet a dataclass:
:func:`dataclasses.fields` and :func:`dataclasses.is_dataclass` of the *class* need
:func:`materialize` first (on an instance they always work). Type checkers see :func:`dataclasses.dataclass` itself.
"""

from __future__ import annotations

import _thread
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass", "materialize"]

_PENDING = "__ocisign_dataclass_pending__"
_lock = _thread.RLock()


def materialize(cls: type) -> type:
    """Process ``cls`` (and its pending bases) as the dataclass it was declared to be; returns it."""
    with _lock:
        for klass in reversed(cls.__mro__):  # bases first: a dataclass collects its bases' fields
            options = klass.__dict__.get(_PENDING)
            if options is None:
                continue
            import dataclasses

            del klass.__init_subclass__  # ours: dataclasses must not see it, subclasses no longer need it
            dataclasses.dataclass(klass, **options)
            delattr(klass, _PENDING)  # last: other threads wait in __new__ until the class is complete
    return cls


def _defer(cls: type, options: dict[str, Any]) -> type:
    if options.get("slots") or "__new__" in cls.__dict__ or "__init_subclass__" in cls.__dict__:
        import dataclasses  # slots make a new class; an own __new__/__init_subclass__ is not ours to wrap

        return dataclasses.dataclass(cls, **options)
    owner: Any = cls

    def new(klass: Any, /, *args: Any, **kwargs: Any) -> Any:
        # stays after processing (one call per instance): a __new__ deleted from a class leaves
        # CPython's slot pointing at the lookup, and object.__new__ would then refuse the arguments
        if getattr(klass, _PENDING, None) is not None:
            materialize(klass)
        following = super(owner, klass).__new__
        return following(klass) if following is object.__new__ else following(klass, *args, **kwargs)

    def init_subclass(sub: Any, /, **kwargs: Any) -> None:
        materialize(owner)  # a subclass (dataclass or not) sees the processed base
        super(owner, sub).__init_subclass__(**kwargs)

    setattr(cls, _PENDING, options)
    cls.__new__ = staticmethod(new)  # type: ignore[method-assign]
    cls.__init_subclass__ = classmethod(init_subclass)  # type: ignore[method-assign,assignment]
    return cls


if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
else:

    def dataclass(cls=None, /, **options):
        """:func:`dataclasses.dataclass`, processed on first use (see the module docstring)."""
        if cls is None:
            return lambda klass: _defer(klass, options)
        return _defer(cls, options)
