"""``ocisign-verify``: verify the signatures of every reference of a layout against the trust policy.

The scope is ``--scope``, else the project config's scope for the layout (a layout without one
fails with a message naming the config file). The trust policy is the project's
``trust-policy`` file, else the config dir's, loaded and validated once per run. Each reference
goes through :func:`ocisign.verify.verification.verify_artifact`, exactly as ``ocisign verify
--oci-layout ROOT:TAG --scope S`` does; a failure prints notation's reason on the
``FAILED`` line and the per-signature blocks of ``ocisign verify`` below it.

:func:`verify_reference` is shared with :mod:`ocisign.hooks.push` (verify before push).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocisign.errors import UsageError

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun, Outcome

    from ocisign.config.trustpolicy import TrustPolicyDocument
    from ocisign.types import Target
    from ocisign.verify.verification import VerificationReport

ACTION = "verify"
_POLICY = "verify.policy"


def scope_for(run: HookRun, root: str) -> str | None:
    """``--scope``, else the project config's scope for ``root``."""
    return run.options.scope or run.ctx.project.scope_for(root)


def checked_scope(run: HookRun, scope: str) -> str:
    """``scope`` when it is a valid trust-policy scope, else UsageError naming where it came from."""
    from ocisign.config.trustpolicy import scope_format_problem

    problem = scope_format_problem(scope)
    if problem:
        where = "--scope" if run.options.scope else f"scope in {run.ctx.project.path}"
        raise UsageError(f"{where}: {problem}")
    return scope


def trust_policy(run: HookRun) -> tuple[TrustPolicyDocument, list[str]]:
    """The trust policy and its file warnings, read once per run (a ConfigError is raised every time)."""
    cached = run.cache.get(_POLICY)
    if cached is None:
        from ocisign.config.trustpolicy import load_effective_policy, policy_file_warnings
        from ocisign.errors import ConfigError

        try:
            doc = load_effective_policy(run.ctx.config_dir, run.ctx.project.trust_policy)
        except ConfigError as exc:
            cached = exc
        else:
            cached = (doc, list(policy_file_warnings(doc.path)) if doc.path is not None else [])
        run.cache[_POLICY] = cached
    if isinstance(cached, BaseException):
        raise cached
    doc, warnings = cached
    return doc, list(warnings)


def verify_reference(run: HookRun, target: Target, root: str, ref: str, scope: str, *, action: str) -> Outcome:
    """Verify ``ref`` in the layout ``target``; record and return the outcome."""
    from ocisign.hooks.files import layout_ref
    from ocisign.hooks.report import Outcome

    from ocisign.cli.verify_output import failure_message
    from ocisign.verify.verification import verify_artifact

    item = layout_ref(root, ref)
    doc, warnings = trust_policy(run)
    report = verify_artifact(run.ctx.pm, run.ctx.config_dir, target, ref, location=root, scope=scope, policy=doc)
    warnings += [w for w in report.warnings if not w.startswith("Always ")]  # the tag warning: hooks use tags
    if report.verified:
        done = (f"Trust policy is configured to skip signature verification for {report.reference}"
                if report.skipped else f"Successfully verified signature for {report.reference}")
        message = f"signature verified (scope {scope})" if action == ACTION else "verified"
        return run.record(Outcome(item, action, True, message, digest=report.subject.digest if report.subject else None,
                                  details=[done, *(f"Warning: {w}" for w in warnings)]))
    return run.record(Outcome(item, action, False, failure_message(report.failed_check, report.message), 1,
                              details=[*failure_details(report), *(f"Warning: {w}" for w in warnings)]))


def failure_details(report: VerificationReport) -> list[str]:
    """The per-signature blocks and the policy plugins' denials, as ``ocisign verify`` prints them."""
    from ocisign.cli.verify_output import signature_block

    lines: list[str] = []
    sigs = report.signatures
    for i, sig in enumerate(sigs, 1):
        lines += signature_block(sig, i, len(sigs))
    lines += [f"Policy plugin {r.source}: {r.reason}" for r in report.plugin_results
              if r.outcome == "fail" and r.source != "trust_policy"]
    return lines


def handle(run: HookRun, root: str) -> None:
    """Verify every reference of the layout ``root``."""
    from ocisign.hooks.files import each_reference
    from ocisign.hooks.report import Outcome

    scope = scope_for(run, root)
    if scope is None:
        where = run.ctx.project.path or "pyproject.toml [tool.ocisign]"
        run.record(Outcome(root, ACTION, False,
                           f"no trust-policy scope for this layout: add a [tool.ocisign.layouts] rule with "
                           f"scope = \"REGISTRY/REPO\" in {where}, or pass --scope", 2))
        return

    def one(target: Target, ref: str) -> None:
        verify_reference(run, target, root, ref, checked_scope(run, scope), action=ACTION)

    each_reference(run, root, ACTION, one)
