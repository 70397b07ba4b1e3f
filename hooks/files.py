"""From the file names pre-commit passes to layout roots and the references inside them.

pre-commit passes every changed file: ``img/index.json``, ``img/oci-layout`` and
``img/blobs/sha256/…`` all map to the layout root ``img``; ``x.tar`` is its own root; a
directory given directly (make rules) is taken as a layout. Each root is handled once, in
first-seen order. With no file names the roots (or the trust policy) come from the project
config. Inside a root, the references are ``--tag``, else the project config's tags for it,
else every tag of ``index.json``, else the untagged images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun

    from ocisign.cli.context import CliContext
    from ocisign.types import Target

__all__ = [
    "POLICY_FILE_NAMES",
    "default_policy_files",
    "default_roots",
    "each_reference",
    "group_layout_roots",
    "is_digest",
    "layout_ref",
    "layout_references",
    "layout_root_of",
    "signature_count",
]

POLICY_FILE_NAMES = ("trustpolicy.json", "trustpolicy.oci.json", "trustpolicy.blob.json")
_DIGEST_PREFIXES = ("sha256:", "sha512:")


def is_digest(reference: str) -> bool:
    """True for ``sha256:…`` / ``sha512:…`` (not a tag)."""
    return reference.startswith(_DIGEST_PREFIXES)


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


def default_roots(ctx: CliContext) -> list[str]:
    """The layouts the project config names (``[tool.ocisign.layouts]`` globs), relative to the cwd."""
    cwd = Path.cwd()
    out = []
    for p in ctx.project.layout_paths():
        try:
            out.append(str(p.relative_to(cwd)))
        except ValueError:
            out.append(str(p))
    return out


def default_policy_files(ctx: CliContext) -> list[str]:
    """The project's ``trust-policy`` file, else the config dir's effective trust policy (if any)."""
    if ctx.project.trust_policy is not None:
        return [str(ctx.project.trust_policy)]
    from ocisign.config.trustpolicy import effective_policy_path

    path = effective_policy_path(ctx.config_dir)
    return [str(path)] if path else []


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
    return f"{root}{'@' if is_digest(reference) else ':'}{reference}"


def signature_count(target: Target, reference: str) -> int:
    """Number of Notary signatures stored for ``reference`` in ``target``."""
    from ocisign.oci.model import MT_NOTARY_SIGNATURE

    subject = target.resolve(reference)
    return len(target.referrers(subject.plain(), artifact_type=MT_NOTARY_SIGNATURE))


def each_reference(run: HookRun, root: str, action: str, handle: Callable[[Target, str], None]) -> None:
    """Open the layout ``root`` and call ``handle(target, reference)`` for every reference to handle.

    An error opening or listing the layout fails ``root``; an error inside ``handle`` fails
    that reference only, and the next one is handled.
    """
    from ocisign.hooks.report import Outcome

    configured = run.options.tags or run.ctx.project.tags_for(root)
    with run.guard(root, action):
        target = run.ctx.pm.open_layout(root)
        try:
            refs = layout_references(target, configured)
            if not refs:
                run.record(Outcome(root, action, True, "no images in the layout: nothing to do", skipped=True))
            for ref in refs:
                with run.guard(layout_ref(root, ref), action):
                    handle(target, ref)
        finally:
            target.close()
