"""``ocisign hook HOOK-ID [FILE…]``: the command behind every pre-commit hook (and make rules).

pre-commit passes the names of changed files; this command maps them to OCI layout roots
(``img/index.json``, ``img/oci-layout`` and ``img/blobs/sha256/…`` → ``img``; ``x.tar`` → ``x.tar``;
a directory given directly is taken as a layout), handles each root once, checks every root,
prints one line per failure and exits 1 when anything failed (pre-commit's convention). With no
file names the layouts come from the project config (``[tool.ocisign.layouts]``).

Hook ids (see ``.pre-commit-hooks.yaml``):

``ocisign-check-layout``
    integrity of each layout (``ocisign layout check``): every blob present with its digest and size.
``ocisign-verify``
    verify the signatures of every tag against the trust policy (``ocisign verify``), with the
    scope from ``--scope`` or the project config.
``ocisign-lint-policy``
    validate trust policy files (``trustpolicy.json``, ``trustpolicy.oci.json``,
    ``trustpolicy.blob.json``) with notation's rules.
``ocisign-sign``
    sign every tag that has no signature yet (``ocisign sign``; ``--force`` signs again).
``ocisign-push``
    copy every signed layout with its signatures to its push target (``ocisign cp -r``).

Other commands run in-process through :func:`ocisign.cli.app.main`, with this run's config dir,
project config and ``-p`` plugins; their output is shown with ``-v`` or when they fail.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ocisign.cli.context import CliContext
    from ocisign.types import Target

HOOK_IDS: dict[str, str] = {
    "ocisign-check-layout": "check the integrity of OCI layouts (directories and tars)",
    "ocisign-verify": "verify the signatures of OCI layouts against the trust policy",
    "ocisign-lint-policy": "validate trust policy files",
    "ocisign-sign": "sign OCI layouts that have no signature yet",
    "ocisign-push": "copy signed OCI layouts with their signatures to their push targets",
}
POLICY_FILE_NAMES = ("trustpolicy.json", "trustpolicy.oci.json", "trustpolicy.blob.json")
_DIGEST_PREFIXES = ("sha256:", "sha512:")


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


@dataclasses.dataclass
class Outcome:
    """Result of handling one layout reference (or one policy file)."""

    item: str
    action: str
    ok: bool
    message: str = ""
    exit_code: int = 0
    skipped: bool = False


# --- mapping file names to layout roots ---------------------------------------------------------
def layout_root_of(name: str) -> str | None:
    """The layout root a file name belongs to, or None when it is not part of an OCI layout.

    ``index.json`` counts only when its directory also holds ``oci-layout`` or ``blobs/``, so an
    unrelated ``index.json`` in a web project is not mistaken for a layout.
    """
    p = Path(name)
    if p.suffix == ".tar":
        return os.path.normpath(name)
    parts = p.parts
    if len(parts) >= 3 and parts[-3] == "blobs":
        return os.path.normpath(os.path.join(*parts[:-3])) if len(parts) > 3 else "."
    if p.name == "oci-layout":
        return os.path.normpath(str(p.parent))
    if p.name == "index.json":
        parent = p.parent
        if (parent / "oci-layout").exists() or (parent / "blobs").is_dir():
            return os.path.normpath(str(parent))
        return None
    if p.is_dir():
        return os.path.normpath(name)
    return None


def group_layout_roots(files: Sequence[str]) -> tuple[list[str], list[str]]:
    """(layout roots in first-seen order, each once; file names that belong to no layout)."""
    roots: dict[str, None] = {}
    stray: list[str] = []
    for name in files:
        root = layout_root_of(name)
        if root is None:
            stray.append(name)
        else:
            roots.setdefault(root, None)
    return list(roots), stray


# --- running other commands in-process ----------------------------------------------------------
def _common_args(ctx: CliContext) -> list[str]:
    args = ["--config-dir", str(ctx.config_dir.root)]
    args += ["--project-config", str(ctx.project.path) if ctx.project.path else "none"]
    for spec in getattr(ctx.args, "plugin_modules", None) or []:
        args += ["-p", spec]
    if ctx.debug:
        args.append("--debug")
    return args


def invoke(ctx: CliContext, argv: Sequence[str]) -> tuple[int, str, str]:
    """Run ``ocisign ARGV`` in-process with this run's settings; returns (exit code, stdout, stderr)."""
    from ocisign.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*_common_args(ctx), *argv])
    return rc, out.getvalue(), err.getvalue()


def _error_text(err: str, out: str) -> str:
    """The useful part of a failed command's output, on one line."""
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ": error: " in ln or ln.lower().startswith("error")]
    chosen = errors or [ln for ln in lines if not ln.startswith("Warning: Always")] or [
        ln.strip() for ln in out.splitlines() if ln.strip()
    ]
    text = "; ".join(ln.split(": error: ", 1)[1] if ": error: " in ln else ln.removeprefix("Error: ") for ln in chosen)
    return text or "failed without a message"


# --- references inside a layout -----------------------------------------------------------------
def layout_references(target: Target, configured: Sequence[str]) -> list[str]:
    """Tags to handle: ``configured``, else every tag in index.json, else untagged image digests."""
    if configured:
        return list(dict.fromkeys(configured))
    tags_fn = getattr(target, "tags", None)
    if callable(tags_fn):
        tags = [str(t) for t, _ in tags_fn()]
        if tags:
            return list(dict.fromkeys(tags))
    from ocisign.oci.model import ALL_MANIFEST_TYPES, is_signature_manifest, parse_manifest

    entries_fn = getattr(target, "index_entries", None)
    out: list[str] = []
    for desc in entries_fn() if callable(entries_fn) else []:
        if desc.media_type not in ALL_MANIFEST_TYPES:
            continue
        m = parse_manifest(target.fetch(desc), media_type=desc.media_type, where=f"{target.location}@{desc.digest}")
        if not is_signature_manifest(m):
            out.append(desc.digest)
    return list(dict.fromkeys(out))


def layout_ref(root: str, reference: str) -> str:
    """``ROOT:TAG`` or ``ROOT@DIGEST``."""
    sep = "@" if reference.startswith(_DIGEST_PREFIXES) else ":"
    return f"{root}{sep}{reference}"


def signature_count(target: Target, reference: str) -> int:
    """Number of Notary signatures stored for ``reference`` in ``target``."""
    from ocisign.oci.model import MT_NOTARY_SIGNATURE

    subject = target.resolve(reference)
    return len(target.referrers(subject.plain(), artifact_type=MT_NOTARY_SIGNATURE))


# --- the hooks ----------------------------------------------------------------------------------
class HookRun:
    """State of one ``ocisign hook`` run: collects outcomes and prints them."""

    def __init__(self, ctx: CliContext, args: argparse.Namespace) -> None:
        self.ctx = ctx
        self.args = args
        self.outcomes: list[Outcome] = []
        self.text = args.output == "text"
        #: True when the layouts came from file names (pre-commit), not from the project config
        self.from_files = bool(args.files)

    def record(self, outcome: Outcome, details: str = "") -> None:
        """Keep an outcome; print it (successes only with -v)."""
        self.outcomes.append(outcome)
        if not self.text:
            return
        if not outcome.ok:
            self.ctx.out(f"{outcome.item}: {outcome.action} FAILED: {outcome.message}")
        elif self.ctx.verbose or outcome.skipped:
            self.ctx.out(f"{outcome.item}: {outcome.message or outcome.action + ' ok'}")
        if details and (self.ctx.verbose or not outcome.ok):
            for line in details.rstrip().splitlines():
                self.ctx.out(f"    {line}")

    def command(self, item: str, action: str, argv: Sequence[str], success: str = "") -> bool:
        """Run an ocisign command for ``item``; record its outcome; True when it succeeded."""
        rc, out, err = invoke(self.ctx, argv)
        if rc == 0:
            self.record(Outcome(item, action, True, success), out if self.ctx.verbose else "")
            return True
        message = _error_text(err, out)
        noise = ("Warning: Always",)
        details = [ln for ln in (out + err).splitlines()
                   if ln.strip() and not ln.startswith(noise)
                   and ln.split(": error: ", 1)[-1].removeprefix("Error: ").strip() not in message]
        self.record(Outcome(item, action, False, message, rc), "\n".join(details))
        return False

    def fail(self, item: str, action: str, exc: BaseException) -> None:
        """Record an error raised while preparing ``item``."""
        from ocisign.errors import ExitCode, OcisignError

        if isinstance(exc, OcisignError):
            self.record(Outcome(item, action, False, exc.diagnostics(), int(exc.exit_code)))
        else:
            self.record(Outcome(item, action, False, f"internal error: {type(exc).__name__}: {exc}",
                                int(ExitCode.INTERNAL)))

    # -- per-layout iteration --
    def each_reference(self, root: str, action: str, handle: Callable[[Target, str], None]) -> None:
        """Open ``root`` and call ``handle(target, reference)`` for every reference to handle."""
        from ocisign.errors import OcisignError

        configured = self.args.tags or list(self.ctx.project.tags_for(root))
        try:
            target = self.ctx.pm.open_layout(root)
        except OcisignError as exc:
            self.fail(root, action, exc)
            return
        try:
            refs = layout_references(target, configured)
            if not refs:
                self.record(Outcome(root, action, True, "no images in the layout: nothing to do", skipped=True))
            for ref in refs:
                try:
                    handle(target, ref)
                except OcisignError as exc:
                    self.fail(layout_ref(root, ref), action, exc)
        except OcisignError as exc:
            self.fail(root, action, exc)
        finally:
            target.close()

    def scope_for(self, root: str) -> str | None:
        """``--scope``, else the project config's scope for ``root``."""
        return str(self.args.scope) if self.args.scope else self.ctx.project.scope_for(root)

    def check_layout(self, root: str) -> None:
        """``ocisign-check-layout``."""
        self.command(root, "layout check", ["layout", "check", root], "layout is intact")

    def verify(self, root: str) -> None:
        """``ocisign-verify``."""
        scope = self.scope_for(root)
        if scope is None:
            where = self.ctx.project.path or "pyproject.toml [tool.ocisign]"
            self.record(Outcome(root, "verify", False,
                                f"no trust-policy scope for this layout: add a [tool.ocisign.layouts] rule with "
                                f"scope = \"REGISTRY/REPO\" in {where}, or pass --scope", 2))
            return

        def handle(target: Target, ref: str) -> None:
            self.command(layout_ref(root, ref), "verify",
                         ["verify", "--oci-layout", layout_ref(root, ref), "--scope", scope],
                         f"signature verified (scope {scope})")

        self.each_reference(root, "verify", handle)

    def sign(self, root: str) -> None:
        """``ocisign-sign``."""
        project = self.ctx.project

        def handle(target: Target, ref: str) -> None:
            item = layout_ref(root, ref)
            if not self.args.force:
                n = signature_count(target, ref)
                if n:
                    self.record(Outcome(item, "sign", True, f"already signed ({n} signature(s)); skipped",
                                        skipped=True))
                    return
            argv = ["sign", "--oci-layout", item]
            if project.key:
                argv += ["--key", project.key]
            if project.signature_format:
                argv += ["--signature-format", project.signature_format]
            self.command(item, "sign", argv, "signed")

        self.each_reference(root, "sign", handle)

    def push(self, root: str) -> None:
        """``ocisign-push``: verify (when a scope is known) or require a signature, then ``cp -r``."""
        from ocisign.oci.refs import parse_registry_ref

        dest = self.args.push_to or self.ctx.project.push_target_for(root)
        if not dest and self.from_files and any(r.push for r in self.ctx.project.layouts):
            self.record(Outcome(root, "push", True, "no push target configured for this layout; not pushed",
                                skipped=True))
            return
        if not dest:
            self.record(Outcome(root, "push", False,
                                "no push target for this layout: add push = \"REGISTRY/REPO\" to its "
                                "[tool.ocisign.layouts] rule, or pass --to", 2))
            return
        scope = self.scope_for(root)

        def handle(target: Target, ref: str) -> None:
            item = layout_ref(root, ref)
            base = parse_registry_ref(dest)
            if base.tag or base.digest:
                to = str(base)
            else:
                to = f"{base.scope}@{ref}" if ref.startswith(_DIGEST_PREFIXES) else f"{base.scope}:{ref}"
            if scope is not None:
                if not self.command(item, "verify before push",
                                    ["verify", "--oci-layout", item, "--scope", scope], "verified"):
                    return
            elif signature_count(target, ref) == 0:
                self.record(Outcome(item, "push", False, "not signed: refusing to push an unsigned image "
                                    "(sign it first: ocisign hook ocisign-sign)", 1))
                return
            self.command(item, "push", ["cp", "-r", "--from-oci-layout", item, to], f"pushed to {to}")

        self.each_reference(root, "push", handle)

    def lint_policy(self, path: str) -> None:
        """``ocisign-lint-policy``: validate one trust policy file with notation's rules."""
        from ocisign.config.trustpolicy import missing_trust_stores, parse_policy, read_policy_file
        from ocisign.errors import OcisignError

        kind: Literal["oci", "blob"] = "blob" if Path(path).name == "trustpolicy.blob.json" else "oci"
        try:
            doc = parse_policy(read_policy_file(Path(path)), where=path, kind=kind, path=Path(path))
        except OcisignError as exc:
            self.fail(path, "trust policy", exc)
            return
        missing = missing_trust_stores(doc, self.ctx.config_dir)
        note = f" (trust stores not in {self.ctx.config_dir.root}: {', '.join(missing)})" if missing else ""
        self.record(Outcome(path, "trust policy", True, f"valid {kind} trust policy{note}"))


def _default_roots(ctx: CliContext) -> list[str]:
    cwd = Path.cwd()
    out = []
    for p in ctx.project.layout_paths():
        try:
            out.append(str(p.relative_to(cwd)))
        except ValueError:
            out.append(str(p))
    return out


def _default_policy_files(ctx: CliContext) -> list[str]:
    if ctx.project.trust_policy is not None:
        return [str(ctx.project.trust_policy)]
    from ocisign.config.trustpolicy import effective_policy_path

    path = effective_policy_path(ctx.config_dir)
    return [str(path)] if path else []


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run one hook over the files (or the configured layouts); exit 1 after reporting every failure."""
    from ocisign.errors import ExitCode, UsageError

    hook = HookRun(ctx, args)
    files: list[str] = list(args.files)
    if args.hook_id == "ocisign-lint-policy":
        items = files or _default_policy_files(ctx)
        if not items:
            raise UsageError("no trust policy files given and none configured (project trust-policy or config dir)")
        for path in dict.fromkeys(items):
            hook.lint_policy(path)
    else:
        if files:
            roots, stray = group_layout_roots(files)
            missing = [f for f in stray if not os.path.lexists(f)]
            for name in missing:
                hook.record(Outcome(name, args.hook_id, False, "no such file or directory", 2))
            if ctx.verbose:
                for name in stray:
                    if name not in missing:
                        ctx.out(f"{name}: not part of an OCI layout; ignored")
        else:
            roots = _default_roots(ctx)
            if not roots:
                raise UsageError(
                    "no layouts given and none found through the project config "
                    "([tool.ocisign.layouts] globs in pyproject.toml or ocisign.toml)"
                )
        handler = {
            "ocisign-check-layout": hook.check_layout,
            "ocisign-verify": hook.verify,
            "ocisign-sign": hook.sign,
            "ocisign-push": hook.push,
        }[args.hook_id]
        for root in roots:
            handler(root)

    failed = [o for o in hook.outcomes if not o.ok]
    if args.output == "json":
        ctx.emit_json({
            "hook": args.hook_id,
            "ok": not failed,
            "results": [
                {"item": o.item, "action": o.action, "ok": o.ok, "skipped": o.skipped, "message": o.message,
                 "exitCode": o.exit_code}
                for o in hook.outcomes
            ],
        })
    elif failed:
        ctx.out(f"{args.hook_id}: {len(failed)} of {len(hook.outcomes)} check(s) failed")
    if not failed:
        return int(ExitCode.OK)
    worst = max(o.exit_code for o in failed)
    return worst if worst in (ExitCode.PLUGIN, ExitCode.INTERNAL) else int(ExitCode.FAILED)
