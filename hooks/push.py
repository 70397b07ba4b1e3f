"""``ocisign-push``: copy every signed reference of a layout, with its signatures, to its push target.

The target is ``--to``, else the project config's ``push`` for the layout. Before a copy the
reference is verified against the trust policy when a scope is known (``--scope`` or the
project config), else it must at least have a signature: an unsigned image is never pushed. The
copy is ``ocisign cp -r`` (:func:`ocisign.registry.copy.copy` with ``recursive=True``); a
target without a tag or digest takes the layout's tag. Each push is printed without ``-v``::

    images/app:v1: pushed sha256:… to registry.example/app:v1 with 1 referrer(s)

When the layouts come from file names (pre-commit) and the project config names push targets
for some layouts only, a layout without one is skipped (it is not meant to be pushed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun

    from ocisign.types import Target

ACTION = "push"


def copy_reference(run: HookRun, target: Target, root: str, ref: str, dest: str) -> None:
    """Copy ``ref`` of the layout ``target`` and its referrers to the registry ``dest``; record it."""
    from ocisign.hooks.files import is_digest, layout_ref
    from ocisign.hooks.report import Outcome

    from ocisign.oci.refs import parse_registry_ref
    from ocisign.registry.copy import Progress, copy

    ctx = run.ctx
    item = layout_ref(root, ref)
    base = parse_registry_ref(dest)
    to = base if base.tag or base.digest else parse_registry_ref(f"{base.scope}{'@' if is_digest(ref) else ':'}{ref}")
    expect_digest = to.digest
    tag = None if expect_digest else (to.tag or (None if is_digest(ref) else ref))
    options = ctx.remote_options()
    warnings: list[str] = []
    dst = ctx.open_registry(to.registry, to.repository, options)
    try:
        result = copy(target, ref, dst, tag=tag, recursive=True, concurrency=options.concurrency,
                      progress=Progress(enabled=False), warn=warnings.append, expect_digest=expect_digest)
    finally:
        dst.close()
    where = f"{to.scope}:{tag}" if tag else f"{to.scope}@{result.root.digest}"
    ctx.pm.push_finished(item, where, [d for d, _ in result.pushed])
    run.record(Outcome(item, ACTION, True,
                       f"pushed {result.root.digest} to {where} with {len(result.referrers)} referrer(s)",
                       digest=result.root.digest, destination=where, changed=True,
                       details=[f"Warning: {w}" for w in warnings]))


def handle(run: HookRun, root: str) -> None:
    """Verify (or require a signature) and push every reference of the layout ``root``."""
    from ocisign.hooks.files import each_reference, layout_ref, signature_count
    from ocisign.hooks.report import Outcome
    from ocisign.hooks.verify import checked_scope, scope_for, verify_reference

    project = run.ctx.project
    dest = run.options.push_to or project.push_target_for(root)
    if not dest and run.from_files and any(r.push for r in project.layouts):
        run.record(Outcome(root, ACTION, True, "no push target configured for this layout; not pushed", skipped=True))
        return
    if not dest:
        run.record(Outcome(root, ACTION, False, "no push target for this layout: add push = \"REGISTRY/REPO\" to its "
                           "[tool.ocisign.layouts] rule, or pass --to", 2))
        return
    scope = scope_for(run, root)

    def one(target: Target, ref: str) -> None:
        item = layout_ref(root, ref)
        if scope is not None:
            verified = False
            with run.guard(item, "verify before push"):
                verified = verify_reference(run, target, root, ref, checked_scope(run, scope),
                                            action="verify before push").ok
            if not verified:
                return
        elif signature_count(target, ref) == 0:
            run.record(Outcome(item, ACTION, False, "not signed: refusing to push an unsigned image "
                               "(sign it first: ocisign hook ocisign-sign)", 1))
            return
        copy_reference(run, target, root, ref, str(dest))

    each_reference(run, root, ACTION, one)
