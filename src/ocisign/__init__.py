"""ocisign: sign, list, inspect, verify and copy OCI image layouts with Notary Project signatures.

Plugin authors import :data:`hookimpl` from here and records from :mod:`ocisign.types`.

Both names are resolved lazily (module ``__getattr__``) so that ``ocisign --version`` and
``--help`` import neither pluggy nor :mod:`importlib.metadata`: ``__version__`` is read once from
the installed package metadata (written in one place, ``pyproject.toml``), ``hookimpl`` is built
on first use. ``python -m ocisign --version`` imports this package, :mod:`ocisign.__main__` and
:mod:`ocisign.version` only.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: --version never does (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    import pluggy

    __version__: str
    #: decorator for hook implementations: ``@ocisign.hookimpl``
    hookimpl: pluggy.HookimplMarker

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> "Any":  # no __future__ import here: it would import the __future__ module
    if name == "__version__":
        from ocisign.version import own_version

        value: Any = own_version()
    elif name == "hookimpl":
        import pluggy

        value = pluggy.HookimplMarker("ocisign")
    else:
        raise AttributeError(f"module 'ocisign' has no attribute {name!r}")
    globals()[name] = value  # computed once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
