"""``cp``'s command lines parsed without argparse (:func:`ocisign.cli.commands.cp.fast_parse`)
give exactly what the parser gives, and anything else is left to the parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocisign.cli import app
from ocisign.cli.commands import cp
from ocisign.testing.import_probe import imported_modules

FAST = [
    ["--from-oci-layout", "img:v1", "localhost:5000/r:v1"],
    ["img:v1", "--from-oci-layout", "localhost:5000/r:v1"],  # options between SRC and DST
    ["-r", "localhost:5000/a:v1", "localhost:5000/b:v1"],
    ["--recursive", "-d", "-v", "--trace-plugins", "x.io/a@sha256:" + "0" * 64, "--to-oci-layout", "out"],
    ["--plain-http", "--insecure-registry", "--insecure", "--password-stdin", "a.io/r:v1", "b.io/r:v1"],
    ["--from-plain-http", "--to-plain-http", "--from-insecure", "--to-insecure", "a.io/r:v1", "b.io/r:v1,v2,v3"],
    ["-o", "json", "a.io/r:v1", "b.io/r"],
    ["--output", "text", "a.io/r:v1", "", "-r", "-r"],
]

SLOW = [
    [],
    ["a.io/r:v1"],
    ["a", "b", "c"],
    ["--from-oci", "img:v1", "a.io/r:v1"],  # an abbreviation: argparse's business
    ["-rd", "a.io/r:v1", "b.io/r:v1"],
    ["--concurrency", "2", "a.io/r:v1", "b.io/r:v1"],
    ["-o", "yaml", "a.io/r:v1", "b.io/r:v1"],
    ["-o"],
    ["--output=json", "a.io/r:v1", "b.io/r:v1"],
    ["--", "a.io/r:v1", "b.io/r:v1"],
    ["-", "a.io/r:v1"],
    ["-u", "me", "-P", "pw", "a.io/r:v1", "b.io/r:v1"],
    ["--refs-from", "pairs.txt"],
    ["--from-username", "me", "a.io/r:v1", "b.io/r:v1"],
    ["-p", "mod", "a.io/r:v1", "b.io/r:v1"],
]


@pytest.mark.parametrize("word", ["cp", "copy"])
@pytest.mark.parametrize("argv", FAST)
def test_fast_parse_equals_the_parser(word: str, argv: list[str]) -> None:
    fast = app._fast_args("cp", [word, *argv])
    assert fast is not None
    parsed = app.build_parser("cp", all_commands=False, examples=False).parse_args([word, *argv])
    assert vars(fast) == vars(parsed)


@pytest.mark.parametrize("argv", SLOW)
def test_anything_else_is_left_to_the_parser(argv: list[str]) -> None:
    assert cp.fast_parse(argv) is None


def test_only_a_line_that_starts_with_the_command_is_fast() -> None:
    argv = ["--from-oci-layout", "img:v1", "localhost:5000/r:v1"]
    assert app._fast_args("cp", ["-d", "cp", *argv]) is None  # common options before the command
    assert app._fast_args(None, argv) is None
    assert app._fast_args("list", ["list", "--oci-layout", "img:v1"]) is None  # list has no fast_parse


def test_fast_parsed_values_are_not_shared_between_runs() -> None:
    one = cp.fast_parse(["a.io/r:v1", "b.io/r:v1"])
    assert one is not None
    one.plugin_modules.append("mod")
    two = cp.fast_parse(["a.io/r:v1", "b.io/r:v1"])
    assert two is not None and two.plugin_modules == []




def run_probe(argv: list[str], tmp_path: Path) -> tuple[int, set[str], str]:
    env = {"PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path / "cfg"), "OCISIGN_PROJECT_CONFIG": "none",
           "OCISIGN_CACHE_DIR": str(tmp_path / "cache"), "DOCKER_CONFIG": str(tmp_path / "docker")}
    return imported_modules(argv, env=env, cwd=str(tmp_path))


def test_a_fast_parsed_cp_imports_no_argparse_and_errors_as_before(tmp_path: Path) -> None:
    argv = ["cp", "--from-oci-layout", f"{tmp_path / 'missing'}:v1", "localhost:1/r:v1"]
    run_probe(argv, tmp_path)  # the first run stores the entry-point index (importlib.metadata, typing)
    rc, mods, err = run_probe(argv, tmp_path)
    assert rc == 1, err  # the missing layout: one error line, as ever
    assert len(err.strip().splitlines()) == 1 and "missing" in err, err
    assert not mods & {"argparse", "gettext", "typing", "http.client"}, sorted(mods)
    # the same line through the parser (an abbreviated flag is not fast-parsed)
    rc2, mods2, err2 = run_probe(["cp", "--from-oci-lay", *argv[2:]], tmp_path)
    assert (rc2, err2) == (rc, err)
    assert "argparse" in mods2


def test_one_pair_is_copied_as_given_even_with_a_space_in_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A single SRC DST pair goes straight to the copy (it used to be joined with a space and split again)."""
    from ocisign.testing.sample_image import write_image_layout

    monkeypatch.setenv("OCISIGN_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("OCISIGN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OCISIGN_PROJECT_CONFIG", "none")
    write_image_layout(tmp_path / "my img")
    src, dst = f"{tmp_path / 'my img'}:v1", f"{tmp_path / 'out dir'}:v2"
    assert app.main(["cp", "--from-oci-layout", "--to-oci-layout", src, dst]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"Copied [oci-layout] {src} => [oci-layout] {dst}"
    index = json.loads((tmp_path / "out dir" / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["v2"]
