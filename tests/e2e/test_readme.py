"""The README documents what exists: every hook id, every command and subcommand, every hookspec
with its exact signature (datasette-style), and the test command .ci/run runs."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import yaml  # type: ignore[import-untyped,unused-ignore]

from ocisign.cli.app import COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_hook_id_is_documented() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    ids = [h["id"] for h in hooks]
    assert ids, "no hooks"
    for hook_id in ids:
        assert f"`{hook_id}`" in README, hook_id


def test_every_hook_entry_is_a_real_command() -> None:
    from ocisign.hooks import HOOK_IDS

    for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text()):
        assert hook["entry"] == f"ocisign hook {hook['id']}"
        assert hook["id"] in HOOK_IDS
        assert hook["language"] == "python"
        assert hook.get("require_serial") is True, "each layout root must be handled by one process"


def test_every_command_and_subcommand_is_documented() -> None:
    for name in COMMANDS:
        assert f"`ocisign {name}" in README, f"ocisign {name} is not documented"
        assert re.search(rf"^\$ .*\bocisign( -\S+( [^-]\S*)?)* {re.escape(name)}\b", README, re.M), \
            f"no example for ocisign {name}"
        sub = _subparsers(build_parser(name))[name]
        for subname in _subparsers(sub):
            if subname in {"ls", "set", "rm", "remove"}:  # aliases, documented next to their command
                continue
            assert re.search(rf"\b{re.escape(name)} {re.escape(subname)}\b", README), f"ocisign {name} {subname}"


def test_every_hookspec_is_documented_with_its_exact_signature() -> None:
    tree = ast.parse((REPO / "src" / "ocisign" / "hookspecs.py").read_text())
    specs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("ocisign_")]
    assert len(specs) >= 9
    for fn in specs:
        assert fn.returns is not None
        decorator = ast.unparse(fn.decorator_list[0])
        signature = f"@{decorator}\ndef {fn.name}({ast.unparse(fn.args)}) -> {ast.unparse(fn.returns)}\n"
        assert signature in README, f"README lacks the exact signature:\n{signature}"


def test_readme_commands_match_ci_and_tox() -> None:
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    test_command = ci[-1].strip()
    assert test_command.startswith("tox -e")
    assert f"$ {test_command}" in README
    tox = (REPO / "tox.ini").read_text()
    assert "[testenv:demo]" in tox and "ocisign demo" in tox
    assert "$ tox -e demo" in README


def test_benchmark_markers_are_present() -> None:
    bench = {p.stem.removeprefix("bench_") for p in (REPO / "bench").glob("bench_*.py")}
    for name in bench:
        assert f"<!-- bench:{name} -->" in README, name


def test_differences_from_notation_and_essential_plugins_are_documented() -> None:
    """Issue 11 items 4 and 5: the deliberate differences table follows the configuration directory
    section, and the essential-plugins table lists exactly the plugins the manager refuses to block."""
    from ocisign.manager import ESSENTIAL_PLUGINS

    headings = re.findall(r"^## (.+)$", README, re.M)
    assert headings[headings.index("Configuration directory") + 1] == "Differences from notation"
    section = README.split("## Differences from notation", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Where")]
    assert len(rows) >= 10 and all(line.count(" | ") == 3 for line in rows)  # where, notation, ocisign, why
    for needle in ("**critical** protected headers", "Duplicate member names inside a protected header",
                   "only in case", "Unknown trust policy members", "`login` with no credential helper"):
        assert any(needle in row for row in rows), needle
    essential = README.split("### Essential plugins", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", essential, re.M))
    assert listed == set(ESSENTIAL_PLUGINS)
