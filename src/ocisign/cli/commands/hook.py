"""``ocisign hook HOOK-ID [FILE…]``: the command behind every pre-commit hook (and make rules).

::

    ocisign hook ocisign-verify images/app/index.json images/app/oci-layout --scope local/app
    ocisign hook ocisign-push images/app          # --to REGISTRY/REPO, or push = … in the project config

This module only parses the flags; the hooks themselves are :mod:`ocisign.hooks` (one module per
hook id, see its docstring), called with this run's context: config dir, project config and
``-p`` plugins. Output: one line per failure, one per image signed or pushed, everything with
``-v``; exit 1 when anything failed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


class _IntermixedParser(argparse.ArgumentParser):
    """Accepts options between and after positionals: pre-commit runs ``ENTRY ARGS… FILES…``.

    Plain argparse would bind ``FILE…`` (``nargs="*"``) to nothing right after ``HOOK-ID`` and
    then reject the file names that follow ``--scope S``.
    """

    _inner = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse intermixed options and positionals."""
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``hook HOOK-ID [FILE…] [--scope S] [--tag T] [--to REF] [--force] [-o text|json]``."""
    from ocisign.hooks import HOOK_IDS

    parser.__class__ = _IntermixedParser
    parser.add_argument("hook_id", metavar="HOOK-ID", choices=sorted(HOOK_IDS),
                        help="one of: " + "; ".join(f"{k} ({v})" for k, v in HOOK_IDS.items()))
    parser.add_argument("files", nargs="*", metavar="FILE",
                        help="files pre-commit passes (layout files, layout dirs, .tar files, policy files); "
                        "default: the layouts (or trust policy) named in the project config")
    parser.add_argument("--scope", metavar="SCOPE", default=None,
                        help="trust-policy scope for every layout (default: from the project config)")
    parser.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                        help="tag to handle (repeatable; default: from the project config, else every tag)")
    parser.add_argument("--to", dest="push_to", metavar="REGISTRY/REPO", default=None,
                        help="ocisign-push: destination for every layout (default: from the project config)")
    parser.add_argument("--force", action="store_true", help="ocisign-sign: sign even if already signed")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text",
                        help="json: one record per layout and reference")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run the hook (see :func:`ocisign.hooks.run.run_hook`)."""
    from ocisign.hooks.report import HookOptions
    from ocisign.hooks.run import run_hook

    options = HookOptions(hook_id=args.hook_id, files=tuple(args.files), scope=args.scope, tags=tuple(args.tags),
                          push_to=args.push_to, force=args.force, output=args.output)
    return run_hook(ctx, options)
