"""Acme's release rules, as ocisign hook implementations.

Registered through the ``ocisign`` entry-point group (see pyproject.toml). Importing this module
stays cheap: no heavy imports at module level, as ocisign asks of every plugin.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
from collections.abc import Mapping, Sequence

import ocisign
from ocisign.oci.model import Descriptor, parse_manifest
from ocisign.types import PolicyResult, Target, VerificationContext

NAME = "acme"
SOURCE_ANNOTATION = "org.opencontainers.image.source"
DEFAULT_DENIED = "*/quarantine/*"
DEFAULT_SOURCE_REQUIRED = "*/release/*"


def _patterns(config: Mapping[str, str], key: str, env: str, default: str) -> list[str]:
    """Comma-separated fnmatch patterns from ``--plugin-config acme.KEY=...``, else ``$ENV``, else default."""
    text = config.get(f"{NAME}.{key}")
    if text is None:
        text = os.environ.get(env, default)
    return [p.strip() for p in text.split(",") if p.strip()]


def _matching(scope: str, patterns: Sequence[str]) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(scope, p)), None)


@ocisign.hookimpl
def ocisign_evaluate_policy(context: VerificationContext) -> PolicyResult | None:
    """Deny quarantined scopes, and release images without a source annotation; otherwise abstain."""
    denied = _patterns(context.plugin_config, "denied-scopes", "ACME_DENIED_SCOPES", DEFAULT_DENIED)
    pattern = _matching(context.scope, denied)
    if pattern is not None:
        return PolicyResult(
            source=NAME,
            outcome="fail",
            reason=f"scope {context.scope} is quarantined by Acme policy (matches {pattern!r})",
            details={"rule": "quarantine", "pattern": pattern},
        )
    required = _patterns(context.plugin_config, "source-required-scopes", "ACME_SOURCE_REQUIRED_SCOPES",
                         DEFAULT_SOURCE_REQUIRED)
    pattern = _matching(context.scope, required)
    if pattern is not None:
        subject = context.subject
        manifest = parse_manifest(context.target.fetch(subject), media_type=subject.media_type,
                                  where=f"{context.reference}@{subject.digest}")
        source = (manifest.annotations or {}).get(SOURCE_ANNOTATION)
        if not source:
            return PolicyResult(
                source=NAME,
                outcome="fail",
                reason=f"release images must carry the {SOURCE_ANNOTATION} annotation "
                f"(scope {context.scope} matches {pattern!r})",
                details={"rule": "provenance", "pattern": pattern},
            )
        return PolicyResult(source=NAME, outcome="log", reason=f"source {source}", details={"rule": "provenance"})
    return None


@ocisign.hookimpl
def ocisign_signature_created(target: Target, subject: Descriptor, signature: Descriptor) -> None:
    """Append an audit record to ``$ACME_AUDIT_LOG`` (when set) for every signature created."""
    path = os.environ.get("ACME_AUDIT_LOG")
    if not path:
        return
    record = {
        "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "location": target.location,
        "subject": subject.digest,
        "signature": signature.digest,
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
