"""How a failed verification is told, shared by ``ocisign verify``
(:mod:`ocisign.cli.commands.verify`) and the ``ocisign-verify`` / ``ocisign-push`` pre-commit hooks
(:mod:`ocisign.hooks.verify`), so both print the same per-signature blocks and notation's wording."""

from __future__ import annotations

from typing import Any

__all__ = ["failure_message", "signature_block"]


def signature_block(sig: dict[str, Any], index: int, total: int) -> list[str]:
    """The lines for one signature tried (a ``signatures`` entry of the verification report's JSON):
    its digest and envelope type, the signer, the check that failed and why (or ``passed``), the
    failures only logged, and the checks that passed."""
    digest = sig.get("digest") or "detached signature"
    media = sig.get("mediaType") or "unknown envelope type"
    lines = [f"Signature {index} of {total}: {digest} ({media})"]
    if sig.get("signer"):
        lines.append(f"  signed by:    {sig['signer']}")
    failed = sig.get("failedCheck")
    checks = {c["check"]: c for c in sig.get("checks", [])}
    if failed:
        action = checks.get(failed, {}).get("action", "enforce")
        lines.append(f"  failed check: {failed} ({'enforced' if action == 'enforce' else action})")
        lines.append(f"  reason:       {sig.get('reason', '')}")
    else:
        lines.append("  result:       passed")
    for c in sig.get("checks", []):
        if c.get("result") in ("fail", "unsupported") and c.get("action") == "log":
            lines.append(f"  logged:       {c['check']}: {c.get('message', '')}")
    passed = [c["check"] for c in sig.get("checks", []) if c.get("result") == "pass"]
    if passed:
        lines.append(f"  passed:       {', '.join(passed)}")
    return lines


def failure_message(failed_check: str | None, message: str) -> str:
    """The reason a verification failed, in notation's words (its prefix for a missing signature
    and for a scope no statement covers)."""
    if failed_check in ("no-signature", "scope"):
        return f"signature verification failed: {message}"
    return message
