"""Dataclasses built on first use, so importing a module that declares records costs no
``dataclasses`` processing (which compiles ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``…
with ``exec``: about half a millisecond per class), and making the common records costs no
``import dataclasses`` (which imports :mod:`inspect`, :mod:`ast`, :mod:`dis`, :mod:`tokenize`…).

``@dataclass(frozen=True, kw_only=True)`` from here takes the same options as
:func:`dataclasses.dataclass` and gives the same class, in three steps:

1. declared: nothing is processed (the class keeps a small ``__new__``);
2. first instance: a *light* processing, without the :mod:`dataclasses` module, gives the class
   the ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, frozen ``__setattr__``/``__delattr__``
   and ``__match_args__`` that :func:`dataclasses.dataclass` would generate (same signatures,
   defaults, ``default_factory`` calls, ``__post_init__`` call, comparisons and hashes). Classes
   it does not cover (dataclass bases, ``ClassVar``/``InitVar``/``KW_ONLY`` annotations, options
   such as ``order``/``slots``/``unsafe_hash``, a field made with :func:`dataclasses.field`, an own
   ``__init__``/``__eq__``/…) are fully processed instead;
3. full: the first time anything asks for the dataclass machinery — ``__dataclass_fields__``
   (so :func:`dataclasses.fields`, :func:`~dataclasses.is_dataclass`, :func:`~dataclasses.replace`,
   :func:`~dataclasses.asdict`), a subclass declaration, or :func:`materialize` — the light methods
   keep working and the class gets the ``__dataclass_fields__`` and ``__dataclass_params__`` that
   :func:`dataclasses.dataclass` computes for it: from then on it is the dataclass it was
   declared to be (a class the light step does not cover is processed by dataclasses itself).

So to a plugin author a record behaves as a dataclass from its first instance on
(``is_dataclass``/``fields``/``replace`` of an instance always work); only :func:`dataclasses.fields`
and :func:`dataclasses.is_dataclass` of a *class* that has no instance yet need :func:`materialize`
first. Use :func:`field` from here (not :func:`dataclasses.field`, which imports dataclasses) for
``default_factory`` and the other field options. Type checkers see :func:`dataclasses.dataclass`
and :func:`dataclasses.field` themselves.
"""

from __future__ import annotations

import _thread

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["dataclass", "field", "field_names", "materialize"]

_PENDING = "__ocisign_dataclass_pending__"  # the options; present until the full processing
_LIGHT = "__ocisign_dataclass_light__"  # names of the methods the light processing added
_SPECS = "__ocisign_dataclass_field_specs__"  # name -> keyword arguments given to field()
_FIELDS = "__dataclass_fields__"
_lock = _thread.RLock()
_MISSING = object()
#: options of dataclasses.dataclass the light processing handles (with these values)
_LIGHT_OPTIONS = {"init": (True,), "repr": (True,), "eq": (True,), "frozen": (True, False), "kw_only": (True, False),
                  "order": (False,), "unsafe_hash": (False,), "match_args": (True,), "slots": (False,),
                  "weakref_slot": (False,)}
_LIGHT_FIELD_OPTIONS = frozenset({"default", "default_factory", "init", "repr", "compare", "hash"})
_OWN_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__match_args__")


class _FieldSpec:
    """What :func:`field` returns: the keyword arguments for :func:`dataclasses.field`."""

    __slots__ = ("kwargs",)

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs


class _FieldsOnDemand:
    """``__dataclass_fields__`` of a lightly processed class: reading it processes the class fully."""

    def __get__(self, obj: object, owner: type) -> Any:
        materialize(owner)
        return owner.__dict__[_FIELDS]


def materialize(cls: type) -> type:
    """Process ``cls`` (and its pending bases) as the dataclass it was declared to be; returns it."""
    with _lock:
        for klass in reversed(cls.__mro__):  # bases first: a dataclass collects its bases' fields
            options = klass.__dict__.get(_PENDING)
            if options is None:
                continue
            import dataclasses

            if _LIGHT not in klass.__dict__:
                _process_light(klass, full_if_not=False)
            if _LIGHT in klass.__dict__:
                _complete_light(klass, options)
            else:
                _restore_field_specs(klass)
                del klass.__init_subclass__  # ours: dataclasses must not see it, subclasses no longer need it
                dataclasses.dataclass(klass, **options)
            delattr(klass, _PENDING)  # last: other threads wait in __new__ until the class is complete
    return cls


def field_names(cls: type) -> tuple[str, ...]:
    """The field names of record ``cls`` in declaration order, as :func:`dataclasses.fields` gives
    them, without the :mod:`dataclasses` processing when the light processing covers the class
    (it is then processed lightly: instances made with ``object.__new__`` have its methods)."""
    if _PENDING in cls.__dict__ and _LIGHT not in cls.__dict__:
        _process_light(cls)  # a class the light processing does not cover is processed fully
    if _PENDING in cls.__dict__ and _LIGHT in cls.__dict__:
        # the light fields are the class's own annotations (no dataclass base, no ClassVar/InitVar)
        return tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is what we avoid
    import dataclasses

    return tuple(f.name for f in dataclasses.fields(cls))


def _complete_light(klass: type, options: dict[str, Any]) -> None:
    """Give a lightly processed class what :func:`dataclasses.dataclass` adds besides its methods.

    The methods stay (they are the ones dataclasses generates, and a method removed and re-added
    would be missing meanwhile for other threads): a twin class with the same annotations,
    defaults and fields is processed by dataclasses, and its ``__dataclass_fields__``,
    ``__dataclass_params__`` (and generated docstring) are set on ``klass``.
    """
    import dataclasses

    specs: dict[str, dict[str, Any]] = klass.__dict__.get(_SPECS, {})
    annotations = dict(klass.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is what we avoid
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": klass.__module__,
                                 "__qualname__": klass.__qualname__, "__doc__": klass.__doc__}
    for name in annotations:
        if name in specs:
            namespace[name] = dataclasses.field(**specs[name])
        elif name in klass.__dict__:
            namespace[name] = klass.__dict__[name]
    twin: type = dataclasses.dataclass(type(klass.__name__, (), namespace), **options)
    for name, value in twin.__dict__.items():
        if (name.startswith("__dataclass_") and name != _FIELDS) or name == "__replace__":
            setattr(klass, name, value)
    if klass.__doc__ is None:
        klass.__doc__ = twin.__doc__
    del klass.__init_subclass__  # ours: subclasses no longer need it
    setattr(klass, _FIELDS, twin.__dict__[_FIELDS])  # replaces the on-demand descriptor: a dataclass now
    delattr(klass, _LIGHT)
    if _SPECS in klass.__dict__:
        delattr(klass, _SPECS)


def _restore_field_specs(klass: type) -> None:
    specs = klass.__dict__.get(_SPECS)
    if specs is None:
        return
    import dataclasses

    for name, kwargs in specs.items():
        setattr(klass, name, dataclasses.field(**kwargs))
    delattr(klass, _SPECS)


def _defer(cls: type, options: dict[str, Any]) -> type:
    specs = {name: value.kwargs for name, value in cls.__dict__.items() if isinstance(value, _FieldSpec)}
    if specs:
        setattr(cls, _SPECS, specs)
    if options.get("slots") or "__new__" in cls.__dict__ or "__init_subclass__" in cls.__dict__:
        import dataclasses  # slots make a new class; an own __new__/__init_subclass__ is not ours to wrap

        _restore_field_specs(cls)
        return dataclasses.dataclass(cls, **options)
    owner: Any = cls

    def new(klass: Any, /, *args: Any, **kwargs: Any) -> Any:
        # stays after processing (one call per instance): a __new__ deleted from a class leaves
        # CPython's slot pointing at the lookup, and object.__new__ would then refuse the arguments
        if getattr(klass, _PENDING, None) is not None and _LIGHT not in klass.__dict__:
            _process_light(klass)
        following = super(owner, klass).__new__
        return following(klass) if following is object.__new__ else following(klass, *args, **kwargs)

    def init_subclass(sub: Any, /, **kwargs: Any) -> None:
        materialize(owner)  # a subclass (dataclass or not) sees the processed base
        super(owner, sub).__init_subclass__(**kwargs)

    setattr(cls, _PENDING, options)
    cls.__new__ = staticmethod(new)  # type: ignore[method-assign]
    cls.__init_subclass__ = classmethod(init_subclass)  # type: ignore[method-assign,assignment]
    return cls


# --- the light processing -------------------------------------------------------------------------
class _LightField:
    __slots__ = ("compare", "default", "factory", "hash", "init", "name", "repr")

    def __init__(self, name: str, default: object, spec: dict[str, Any]) -> None:
        self.name = name
        self.default = spec.get("default", default)
        self.factory = spec.get("default_factory", _MISSING)
        self.init = spec.get("init", True)
        self.repr = spec.get("repr", True)
        self.compare = spec.get("compare", True)
        self.hash = spec.get("hash")


def _light_fields(cls: type, options: dict[str, Any]) -> list[_LightField] | None:
    """The fields of ``cls`` when the light processing covers it, else None."""
    if any(value not in _LIGHT_OPTIONS.get(key, ()) for key, value in options.items()):
        return None
    if any(name in cls.__dict__ for name in _OWN_METHODS):
        return None
    for base in cls.__mro__[1:-1]:  # dataclass bases: the full processing collects their fields
        if _FIELDS in base.__dict__ or _PENDING in base.__dict__:
            return None
    specs: dict[str, dict[str, Any]] = cls.__dict__.get(_SPECS, {})
    fields = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 - no inspect
        text = str(annotation)
        if "ClassVar" in text or "InitVar" in text or "KW_ONLY" in text:
            return None
        default = cls.__dict__.get(name, _MISSING)
        spec = specs.get(name, {})
        if name in specs:
            if not set(spec) <= _LIGHT_FIELD_OPTIONS:
                return None
            default = _MISSING
        elif type(default).__module__ == "dataclasses" or (
            default is not _MISSING and type(default).__hash__ is None  # a mutable default: dataclasses' ValueError
        ):
            return None
        fields.append(_LightField(name, default, spec))
    if not options.get("kw_only"):  # "non-default argument follows default argument": dataclasses' TypeError
        seen_default = False
        for f in fields:
            if not f.init:
                continue
            has_default = f.default is not _MISSING or f.factory is not _MISSING
            if seen_default and not has_default:
                return None
            seen_default = seen_default or has_default
    return fields


def _process_light(cls: type, *, full_if_not: bool = True) -> None:
    """The light processing (see the module docstring); a class it does not cover is processed
    fully (``full_if_not``) or left as it is."""
    with _lock:
        options = cls.__dict__.get(_PENDING)
        if options is None or _LIGHT in cls.__dict__:
            return  # processed meanwhile
        fields = _light_fields(cls, options)
        if fields is None:
            if full_if_not:
                materialize(cls)
            return
        frozen = bool(options.get("frozen"))
        methods: dict[str, Any] = {"__init__": _make_init(cls, fields, frozen, bool(options.get("kw_only")))}
        names = tuple(f.name for f in fields)
        repr_names = tuple(f.name for f in fields if f.repr)
        compared = tuple(f.name for f in fields if f.compare)
        methods["__repr__"] = _make_repr(repr_names)
        methods["__eq__"] = _make_eq(compared)
        if frozen:
            hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
            methods["__hash__"] = _make_hash(hashed)
            methods["__setattr__"], methods["__delattr__"] = _make_frozen(cls, names)
        else:
            methods["__hash__"] = None  # eq without frozen: unhashable, as dataclasses makes it
        methods["__match_args__"] = () if options.get("kw_only") else tuple(f.name for f in fields if f.init)
        for name, method in methods.items():
            if callable(method):
                method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
        for f in fields:  # class attributes as dataclasses leaves them
            if f.name in cls.__dict__.get(_SPECS, {}):
                if f.default is not _MISSING:
                    setattr(cls, f.name, f.default)
                elif f.name in cls.__dict__:
                    delattr(cls, f.name)
        setattr(cls, _FIELDS, _FieldsOnDemand())
        setattr(cls, _LIGHT, tuple(methods))
        klass: Any = cls
        if super(klass, klass).__new__ is object.__new__:
            # processed: the pending check of the deferring __new__ is no longer needed (it is
            # replaced, never deleted: see _defer)
            cls.__new__ = staticmethod(_object_new)  # type: ignore[method-assign]


def _object_new(klass: type, /, *args: Any, **kwargs: Any) -> Any:
    """``__new__`` of a processed record whose bases have none of their own: ``object.__new__``
    (the arguments are ``__init__``'s)."""
    return object.__new__(klass)


def _make_init(cls: type, fields: list[_LightField], frozen: bool, kw_only: bool) -> Callable[..., None]:
    """``__init__`` with dataclasses' signature and assignments (compiled once per class)."""
    scope: dict[str, Any] = {"__dataclass_builtins_object__": object, "__dataclass_HAS_DEFAULT_FACTORY__": _MISSING}
    params, body = [], []
    # a frozen record is filled through its instance __dict__ (what object.__setattr__ does for a
    # name that is no data descriptor: a quarter of the cost per field) when that is the same thing
    direct = frozen and _dict_is_direct(cls, [f.name for f in fields])
    if direct:
        body.append("__dataclass_self_dict__ = self.__dict__")
    for f in fields:
        if f.init:
            if f.factory is not _MISSING:
                scope[f"__dataclass_dflt_{f.name}__"] = f.factory
                params.append(f"{f.name}=__dataclass_HAS_DEFAULT_FACTORY__")
                value = (f"__dataclass_dflt_{f.name}__() if {f.name} is __dataclass_HAS_DEFAULT_FACTORY__ "
                         f"else {f.name}")
            elif f.default is not _MISSING:
                scope[f"__dataclass_dflt_{f.name}__"] = f.default
                params.append(f"{f.name}=__dataclass_dflt_{f.name}__")
                value = f.name
            else:
                params.append(f.name)
                value = f.name
        elif f.factory is not _MISSING:
            scope[f"__dataclass_dflt_{f.name}__"] = f.factory
            value = f"__dataclass_dflt_{f.name}__()"
        else:
            continue  # init=False without a factory: the class attribute (if any) stands
        if direct:
            body.append(f"__dataclass_self_dict__[{f.name!r}] = {value}")
        elif frozen:
            body.append(f"__dataclass_builtins_object__.__setattr__(self, {f.name!r}, {value})")
        else:
            body.append(f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    signature = ", ".join(["self", *(["*"] if kw_only and params else []), *params])
    text = f"def __init__({signature}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    exec(text, scope)  # as dataclasses does: the same signature, defaults and error messages
    init: Callable[..., None] = scope["__init__"]
    return init


def _dict_is_direct(cls: type, names: list[str]) -> bool:
    """True when ``object.__setattr__(self, name, v)`` is ``self.__dict__[name] = v`` for ``names``:
    instances have a ``__dict__`` that ``self.__dict__`` reaches (no own attribute lookup), and no
    name is a data descriptor (a slot, a property) on the class."""
    lookup: object = cls.__getattribute__
    if cls.__dictoffset__ == 0 or lookup is not object.__getattribute__:
        return False
    for name in names:
        for klass in cls.__mro__:
            if name in klass.__dict__:
                attr = klass.__dict__[name]
                if hasattr(type(attr), "__set__") or hasattr(type(attr), "__delete__"):
                    return False
                break
    return True


def _make_repr(names: tuple[str, ...]) -> Callable[[Any], str]:
    import reprlib  # imported by collections already

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({inner})"

    return __repr__


def _make_eq(names: tuple[str, ...]) -> Callable[[Any, object], Any]:
    def __eq__(self: Any, other: object) -> Any:
        if other.__class__ is self.__class__:
            return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)
        return NotImplemented

    return __eq__


def _make_hash(names: tuple[str, ...]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in names))

    return __hash__


def _make_frozen(cls: Any, names: tuple[str, ...]) -> tuple[Callable[..., None], Callable[..., None]]:
    def frozen_error(name: str) -> Exception:
        import dataclasses  # the error of a bug (or a test): its class is dataclasses'

        return dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __setattr__(self: Any, name: str, value: object) -> None:
        if type(self) is cls or name in names:
            raise frozen_error(name)
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise frozen_error(name).__class__(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__


if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
else:

    def dataclass(cls=None, /, **options):
        """:func:`dataclasses.dataclass`, processed on first use (see the module docstring)."""
        if cls is None:
            return lambda klass: _defer(klass, options)
        return _defer(cls, options)

    def field(**kwargs):
        """:func:`dataclasses.field` for :func:`dataclass` records, without importing dataclasses."""
        return _FieldSpec(kwargs)
