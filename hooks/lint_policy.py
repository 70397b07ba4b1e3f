"""``ocisign-lint-policy``: validate trust policy files with notation's rules.

``trustpolicy.blob.json`` is checked as a blob policy, every other name as an OCI policy
(:func:`ocisign.config.trustpolicy.parse_policy`). A valid file whose trust stores are not in
the config dir passes with a note (shown with ``-v``): the stores may live on the machine that
verifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun

ACTION = "trust policy"


def handle(run: HookRun, path: str) -> None:
    """Validate the policy file ``path`` and record one outcome for it."""
    from ocisign.hooks.report import Outcome

    from ocisign.config.trustpolicy import missing_trust_stores, parse_policy, read_policy_file

    kind: Literal["oci", "blob"] = "blob" if Path(path).name == "trustpolicy.blob.json" else "oci"
    with run.guard(path, ACTION):
        doc = parse_policy(read_policy_file(Path(path)), where=path, kind=kind, path=Path(path),
                           strict=True)  # a lint: unknown members (typos) fail here
        config_dir = run.ctx.config_dir
        missing = missing_trust_stores(doc, config_dir)
        note = f" (trust stores not in {config_dir.root}: {', '.join(missing)})" if missing else ""
        run.record(Outcome(path, ACTION, True, f"valid {kind} trust policy{note}"))
