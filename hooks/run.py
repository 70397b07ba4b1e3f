"""Run one pre-commit hook: pick the items (file names or project defaults), hand each to the hook module.

Layout hooks get layout roots (:mod:`ocisign.hooks.files`); a file name that belongs to no
layout is ignored (named with ``-v``) unless it does not exist, which is a failure. The lint
hook gets policy files. Every item is handled whatever happened to the others; the exit code is
0, or 1 when anything failed (3/4 when a plugin or internal error was among the failures), as
``.pre-commit-hooks.yaml`` documents.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Protocol

from ocisign.errors import UsageError

if TYPE_CHECKING:
    from ocisign.hooks.report import HookOptions, HookRun

    from ocisign.cli.context import CliContext


class HookModule(Protocol):
    """Shape of a hook module (``ocisign.hooks.verify`` …)."""

    ACTION: str

    def handle(self, run: HookRun, item: str) -> None: ...


def _layout_items(run: HookRun) -> list[str]:
    """The layout roots to handle; stray file names are reported (missing) or named with -v."""
    from ocisign.hooks.files import default_roots, group_layout_roots
    from ocisign.hooks.report import Outcome

    ctx, options = run.ctx, run.options
    if not options.files:
        roots = default_roots(ctx)
        if not roots:
            raise UsageError("no layouts given and none found through the project config "
                             "([tool.ocisign.layouts] globs in pyproject.toml or ocisign.toml)")
        return roots
    roots, stray = group_layout_roots(options.files)
    for name in stray:
        if not os.path.lexists(name):
            run.record(Outcome(name, options.hook_id, False, "no such file or directory", 2))
        elif ctx.verbose and run.text:
            ctx.out(f"{name}: not part of an OCI layout; ignored")
    return roots


def _policy_items(run: HookRun) -> list[str]:
    """The policy files to lint: the file names given, else the project's or config dir's policy."""
    from ocisign.hooks.files import default_policy_files

    items = list(run.options.files) or default_policy_files(run.ctx)
    if not items:
        raise UsageError("no trust policy files given and none configured (project trust-policy or config dir)")
    return list(dict.fromkeys(items))


def run_hook(ctx: CliContext, options: HookOptions) -> int:
    """Run the hook ``options.hook_id`` over its items; print the outcomes; return the exit code."""
    from ocisign.hooks import HOOK_MODULES
    from ocisign.hooks.report import HookRun

    if options.hook_id not in HOOK_MODULES:
        raise UsageError(f"unknown hook {options.hook_id!r} (one of: {', '.join(sorted(HOOK_MODULES))})")
    module: HookModule = importlib.import_module(HOOK_MODULES[options.hook_id])
    run = HookRun(ctx, options)
    items = _policy_items(run) if options.hook_id == "ocisign-lint-policy" else _layout_items(run)
    for item in items:
        module.handle(run, item)
    return run.finish()
