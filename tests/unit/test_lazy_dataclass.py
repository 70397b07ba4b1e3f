"""``ocisign.lazy_dataclass.dataclass``: the same class as ``dataclasses.dataclass``, processed on first use."""

from __future__ import annotations

import dataclasses
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
