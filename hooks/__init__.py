"""``ocisign.hooks``: the pre-commit hooks (and make rules) behind ``ocisign hook HOOK-ID [FILE…]``.

Each hook is a module that calls the library directly with the run's context (plugin manager,
config dir, project config) and records one :class:`~ocisign.hooks.report.Outcome` per layout
reference or policy file; nothing re-enters the CLI.

==========================  ===========================  ============================================
hook id                     module                       library call
==========================  ===========================  ============================================
``ocisign-check-layout``    :mod:`.check_layout`         :func:`ocisign.oci.layout_tools.check_layout`
``ocisign-verify``          :mod:`.verify`               :func:`ocisign.verify.verification.verify_artifact`
``ocisign-lint-policy``     :mod:`.lint_policy`          :func:`ocisign.config.trustpolicy.parse_policy`
``ocisign-sign``            :mod:`.sign`                 :func:`ocisign.sign.signing.sign_artifact`
``ocisign-push``            :mod:`.push`                 :func:`ocisign.registry.copy.copy` (``-r``)
==========================  ===========================  ============================================

:mod:`.files` maps file names to layout roots and picks the defaults from the project config;
:mod:`.report` holds the outcome records and prints them; :mod:`.run` dispatches a hook id.
This module stays import-light: the CLI reads :data:`HOOK_IDS` to build its parser.
"""

from __future__ import annotations

__all__ = ["HOOK_IDS", "HOOK_MODULES"]

#: hook id -> one-line description (``ocisign hook --help``, ``.pre-commit-hooks.yaml``)
HOOK_IDS: dict[str, str] = {
    "ocisign-check-layout": "check the integrity of OCI layouts (directories and tars)",
    "ocisign-verify": "verify the signatures of OCI layouts against the trust policy",
    "ocisign-lint-policy": "validate trust policy files",
    "ocisign-sign": "sign OCI layouts that have no signature yet",
    "ocisign-push": "copy signed OCI layouts with their signatures to their push targets",
}

#: hook id -> the module that implements it (each has ``handle(run, item)``)
HOOK_MODULES: dict[str, str] = {
    "ocisign-check-layout": "ocisign.hooks.check_layout",
    "ocisign-verify": "ocisign.hooks.verify",
    "ocisign-lint-policy": "ocisign.hooks.lint_policy",
    "ocisign-sign": "ocisign.hooks.sign",
    "ocisign-push": "ocisign.hooks.push",
}
