"""``ocisign.lazy_dataclass.dataclass``: the same class as ``dataclasses.dataclass``, processed on first use."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import threading

import pytest

from ocisign.lazy_dataclass import dataclass, materialize


def processed(cls: object) -> bool:
    """``dataclasses.is_dataclass`` without its type narrowing (the point here is that it changes)."""
    return dataclasses.is_dataclass(cls)


def test_a_record_is_processed_on_its_first_instance_and_then_behaves_as_a_dataclass() -> None:
    @dataclass(frozen=True, kw_only=True)
    class Rec:
        """A record."""

        name: str
        size: int = 0
        extra: tuple[str, ...] = dataclasses.field(default_factory=tuple)

    assert not processed(Rec)  # nothing processed at declaration
    a = Rec(name="a", size=1)
    assert processed(Rec)
    assert a == Rec(name="a", size=1) and a != Rec(name="a")
    assert hash(a) == hash(Rec(name="a", size=1))
    assert repr(a).endswith("Rec(name='a', size=1, extra=())")
    assert [f.name for f in dataclasses.fields(Rec)] == ["name", "size", "extra"]
    assert dataclasses.replace(a, size=2).size == 2
    assert dataclasses.asdict(a) == {"name": "a", "size": 1, "extra": ()}
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.size = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        Rec("a")  # type: ignore[misc]  # kw_only
    assert Rec.__doc__ == "A record."


def test_positional_records_wrong_arguments_and_materialize() -> None:
    @dataclass(frozen=True)
    class Pos:
        a: int
        b: str = "x"

    with pytest.raises(TypeError):
        Pos()  # type: ignore[call-arg]  # the first instance fails as a dataclass would, and processes the class
    assert Pos(1) == Pos(1, "x")
    assert Pos(1).b == "x"

    @dataclass
    class Later:
        v: int

    assert materialize(Later) is Later and dataclasses.is_dataclass(Later)
    assert Later(3).v == 3


def test_subclasses_see_the_processed_base() -> None:
    @dataclass(frozen=True)
    class Base:
        a: int

    @dataclasses.dataclass(frozen=True)  # an eager subclass, as a plugin might declare
    class Eager(Base):
        b: int = 2

    @dataclass(frozen=True)
    class Lazy(Base):
        c: int = 3

    assert Eager(1) == Eager(1, 2) and Eager(1).a == 1
    assert Lazy(1).c == 3 and [f.name for f in dataclasses.fields(Lazy)] == ["a", "c"]
    assert Base(5).a == 5


def test_first_instances_from_many_threads() -> None:
    @dataclass(frozen=True)
    class Rec:
        a: int

    out: list[Rec] = []
    threads = [threading.Thread(target=lambda i=i: out.append(Rec(i))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.a for r in out) == list(range(8))


def test_importing_the_records_processes_no_dataclass() -> None:
    code = textwrap.dedent("""
        import dataclasses, json
        seen = []
        orig = dataclasses._process_class
        dataclasses._process_class = lambda cls, *a, **k: (seen.append(cls.__qualname__), orig(cls, *a, **k))[1]
        import ocisign.types, ocisign.oci.model, ocisign.oci.refs, ocisign.manager
        print(json.dumps(seen))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"


# --- the light processing: dataclass methods without the dataclasses module ----------------------
def test_a_first_instance_imports_no_dataclasses_and_fields_then_do() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.oci.model import Descriptor
        from ocisign.types import LayoutHandler
        d = Descriptor(media_type="m", digest="sha256:" + "a" * 64, size=1)
        same = Descriptor(media_type="m", digest="sha256:" + "a" * 64, size=1)
        h = LayoutHandler(name="x", detect=bool, open=print)
        light = ["dataclasses" in sys.modules, "inspect" in sys.modules, "typing" in sys.modules,
                 d == same, hash(d) == hash(same), len({d, same}), repr(h).startswith("LayoutHandler(name='x'")]
        import dataclasses
        full = [dataclasses.is_dataclass(d), [f.name for f in dataclasses.fields(h)],
                dataclasses.replace(d, size=2).size, d == same, hash(d) == hash(same),
                dataclasses.is_dataclass(Descriptor), Descriptor.__dataclass_params__.frozen]
        print(json.dumps([light, full]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    light, full = json.loads(proc.stdout)
    assert light == [False, False, False, True, True, 1, True]
    assert full == [True, ["name", "detect", "open", "create", "description"], 2, True, True, True, True]


def _hash(obj: object) -> object:
    try:
        return hash(obj)
    except TypeError:
        return "TypeError"


def _twins(decorator_options: dict[str, object], body: str) -> tuple[type, type]:
    """The same class body declared with ocisign.lazy_dataclass and with dataclasses (+ its field)."""
    from ocisign import lazy_dataclass

    out = []
    for module, field in ((lazy_dataclass, "lazy_field"), (dataclasses, "dataclasses.field")):
        scope: dict[str, object] = {"lazy_field": lazy_dataclass.field, "dataclasses": dataclasses}
        exec(textwrap.dedent(f"class Rec:\n    '''doc'''\n{textwrap.indent(body.format(field=field), '    ')}"), scope)
        out.append(module.dataclass(**decorator_options)(scope["Rec"]))  # type: ignore[call-overload]
    return out[0], out[1]


@pytest.mark.parametrize(("options", "body", "calls"), [
    ({"frozen": True, "kw_only": True}, "a: int\nb: str = 'x'\nc: list = {field}(default_factory=list)",
     [{"a": 1}, {"a": 1, "b": "y", "c": [1]}, {}, {"b": "y"}, {"a": 1, "d": 2}]),
    ({"frozen": True}, "a: int\nb: str = 'x'", [{"a": 1}, {"a": 1, "b": "z"}, {}]),
    ({}, "a: int\nb: dict = {field}(default_factory=dict, compare=False, repr=False)",
     [{"a": 3}, {"a": 3, "b": {1: 2}}]),
    ({"frozen": True}, "a: int\nb: int = {field}(default=5, hash=False)", [{"a": 1}, {"a": 1, "b": 6}]),
])
def test_light_records_behave_as_the_dataclass(options: dict[str, object], body: str,
                                               calls: list[dict[str, object]]) -> None:
    light, real = _twins(options, body)
    for kwargs in calls:
        made = []
        for cls in (light, real):
            try:
                made.append(cls(**kwargs))
            except TypeError as exc:
                made.append(str(exc))
        a, b = made
        if isinstance(a, str):
            assert a == b  # the same signature, hence the same error message
            continue
        assert repr(a) == repr(b)
        assert vars(a) == vars(b)
        twin_a, twin_b = light(**kwargs), real(**kwargs)
        assert (a == twin_a) == (b == twin_b) and (a != 1) == (b != 1)
        if options.get("frozen"):
            assert _hash(a) == _hash(twin_a) and _hash(b) == _hash(twin_b)
            assert (_hash(a) == "TypeError") == (_hash(b) == "TypeError")
            with pytest.raises(dataclasses.FrozenInstanceError):
                a.a = 9
            with pytest.raises(dataclasses.FrozenInstanceError):
                del a.a
        else:
            assert type(a).__hash__ is None and type(b).__hash__ is None
    assert light.__match_args__ == real.__match_args__  # type: ignore[attr-defined]
    assert [(f.name, f.default, f.default_factory, f.compare, f.hash, f.repr) for f in dataclasses.fields(light)] == \
        [(f.name, f.default, f.default_factory, f.compare, f.hash, f.repr) for f in dataclasses.fields(real)]
    assert light.__dataclass_params__.frozen == real.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert light.__doc__ == "doc"


def test_post_init_and_records_the_light_step_does_not_cover() -> None:
    calls: list[int] = []

    @dataclass(frozen=True)
    class WithPost:
        a: int

        def __post_init__(self) -> None:
            calls.append(self.a)

    assert WithPost(4).a == 4 and calls == [4]

    @dataclass(frozen=True, order=True)  # not covered: processed by dataclasses on the first instance
    class Ordered:
        a: int

    assert Ordered(1) < Ordered(2) and processed(Ordered)

    @dataclass
    class Mutable:
        items: list[int] = dataclasses.field(default_factory=list)  # dataclasses' own field: covered fully

    m = Mutable()
    m.items.append(1)
    assert m.items == [1] and Mutable().items == [] and processed(Mutable)
    with pytest.raises(ValueError, match="mutable default"):
        @dataclass
        class Bad:
            items: list[int] = []  # noqa: RUF012 - the mistake dataclasses refuses

        Bad()


def test_light_instances_from_many_threads_while_another_asks_for_the_fields() -> None:
    @dataclass(frozen=True)
    class Rec:
        a: int

    Rec(0)  # light
    out: list[bool] = []

    def work(i: int) -> None:
        for _ in range(200):
            out.append(Rec(i) == Rec(i) and hash(Rec(i)) == hash(Rec(i)))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    assert [f.name for f in dataclasses.fields(Rec)] == ["a"]
    for t in threads:
        t.join()
    assert all(out) and len(out) == 800


def test_a_subclass_of_a_light_record_is_a_dataclass_with_the_bases_fields() -> None:
    @dataclass(frozen=True)
    class Base:
        a: int

    assert Base(1) == Base(1)  # light

    @dataclasses.dataclass(frozen=True)
    class Eager(Base):
        b: int = 2

    @dataclass(frozen=True, kw_only=True)
    class Lazy(Base):
        c: int = 3

    assert processed(Base) and [f.name for f in dataclasses.fields(Eager)] == ["a", "b"]
    assert Eager(1) == Eager(1, 2) and Eager(1) != Base(1) and repr(Eager(1)).endswith("Eager(a=1, b=2)")
    assert Lazy(a=1).c == 3 and [f.name for f in dataclasses.fields(Lazy)] == ["a", "c"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Eager(1).a = 5  # type: ignore[misc]


def test_field_names_of_a_light_record_need_no_dataclasses_processing() -> None:
    """``field_names`` (what ``envelope.content.new_content`` fills directly) gives the names
    ``dataclasses.fields`` gives, processing a coverable record lightly, any other fully."""
    from ocisign.lazy_dataclass import field, field_names

    @dataclass(frozen=True, kw_only=True)
    class Light:
        b: int
        a: str = ""
        c: tuple[int, ...] = field(default_factory=tuple)

    assert field_names(Light) == ("b", "a", "c")
    assert "__ocisign_dataclass_light__" in Light.__dict__  # processed lightly, not by dataclasses
    assert "__dataclass_params__" not in Light.__dict__
    made = object.__new__(Light)
    made.__dict__.update(b=1, a="x", c=())
    assert made == Light(b=1, a="x") and repr(made) == repr(Light(b=1, a="x"))
    assert field_names(Light) == tuple(f.name for f in dataclasses.fields(Light))  # now fully processed: same

    @dataclass(frozen=True, order=True)  # order=True: not covered by the light step
    class Full:
        x: int
        y: int = 0

    assert field_names(Full) == ("x", "y") and processed(Full)


def test_frozen_records_are_filled_through_their_dict_only_where_that_is_the_same() -> None:
    """The light frozen ``__init__`` writes the instance ``__dict__`` (what ``object.__setattr__``
    does for a plain name), in field order; a class with its own attribute lookup or a field that is
    a data descriptor on a base keeps ``object.__setattr__``, so the descriptor still runs."""
    from ocisign import lazy_dataclass

    @dataclass(frozen=True, kw_only=True)
    class Plain:
        b: int
        a: str = "x"
        c: tuple[int, ...] = lazy_dataclass.field(default_factory=tuple)

    p = Plain(b=1)
    assert list(vars(p).items()) == [("b", 1), ("a", "x"), ("c", ())]
    assert _fills_dict(Plain)
    assert Plain.__new__ is lazy_dataclass._object_new  # processed: no pending check per instance
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.a = "y"  # type: ignore[misc]

    seen: list[tuple[str, object]] = []

    class Base:
        @property
        def a(self) -> object:
            return self.__dict__["_a"]

        @a.setter
        def a(self, value: object) -> None:
            seen.append(("a", value))
            self.__dict__["_a"] = value

    @dataclass(frozen=True)
    class ThroughProperty(Base):
        a: object

    assert ThroughProperty(5).a == 5 and seen == [("a", 5)]  # the base's data descriptor ran
    assert not _fills_dict(ThroughProperty) and "__ocisign_dataclass_light__" in ThroughProperty.__dict__

    @dataclass(frozen=True)
    class OwnLookup:
        a: int

        def __getattribute__(self, name: str) -> object:
            return object.__getattribute__(self, name)

    assert OwnLookup(3).a == 3 and not _fills_dict(OwnLookup)


def _fills_dict(cls: type) -> bool:
    return "__dataclass_self_dict__" in cls.__init__.__code__.co_varnames  # type: ignore[misc]
