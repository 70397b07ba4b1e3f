"""``ocisign verify``: verify an artifact's signatures against the trust policy, like ``notation verify``.

::

    ocisign verify --oci-layout ./hello-world:v1 --scope local/hello-world
    ocisign verify localhost:5000/hello-world@sha256:… -m buildId=123 -o json

Success prints ``Successfully verified signature for <ref>@<digest>`` (and the signed user
metadata as a KEY/VALUE table); a ``skip`` policy prints ``Trust policy is configured to skip
signature verification for …``. Failures print, on stderr, one block per signature tried naming
the check that failed and why, then ``Error: …`` (the format of every ocisign error). Logged
failures are ``Warning:`` lines.
``-o json`` prints the same facts as one JSON document on stdout.

Exit codes: 0 verified, 1 verification failed (or the artifact could not be read),
2 bad usage or a missing/invalid trust policy, 3 a policy plugin raised (named with its hook; never
a pass). Read-only: nothing is written anywhere (the one
opt-in exception is the CRL cache, ``OCISIGN_CRL_CACHE=1``, see :mod:`ocisign.verify.crl_cache`).

Revocation: certificates naming OCSP/CRL servers are checked online like notation 1.3 does
(:mod:`ocisign.verify.revocation`; OCSP 2 s, CRL 5 s, plain http only); ``"revocation": "skip"`` in the
policy's override contacts no server at all.
"""

from __future__ import annotations

import argparse
import sys

from ocisign.errors import ExitCode, UsageError, error_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import Any

    from ocisign.cli.context import CliContext
    from ocisign.verify.verification import VerificationReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``verify [--oci-layout] REF [--scope S] [-m k=v]… [--max-signatures N] [--plugin-config k=v]…``."""
    from ocisign.cli.batch import add_batch_arguments

    add_batch_arguments(parser, help_text="REGISTRY/REPO[:TAG|@DIGEST], or with --oci-layout PATH:TAG / PATH@DIGEST")
    parser.add_argument("--oci-layout", action="store_true", help="verify an artifact in a local OCI layout")
    parser.add_argument("--scope", metavar="SCOPE", default=None,
                        help="trust-policy scope (REGISTRY/REPO) for an --oci-layout artifact; required with "
                             "--oci-layout unless the project config names one")
    parser.add_argument("-m", "--user-metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="user metadata that must be in the signature (repeatable)")
    parser.add_argument("--max-signatures", type=int, default=100, metavar="N",
                        help="maximum number of signatures to evaluate (default 100)")
    parser.add_argument("--plugin-config", action="append", default=[], metavar="KEY=VALUE",
                        help="option passed to policy plugins (repeatable)")
    parser.add_argument("--layout-type", metavar="TYPE", default=None,
                        help="layout type (oci, oci-archive, …); detected when omitted")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output format")
    from ocisign.cli.compat_flags import add_referrers_flags
    from ocisign.cli.options import add_remote_options

    add_remote_options(parser)
    add_referrers_flags(parser, sign=False)


# --- rendering ----------------------------------------------------------------------------------
def render_text(ctx: CliContext, report: VerificationReport) -> None:
    """Print notation's success lines, or the per-signature failure blocks and the error line."""
    from ocisign.cli.verify_output import failure_message, signature_block
    from ocisign.goformat import tab_table

    for w in report.warnings:
        ctx.warn(w)
    if report.verified:
        if report.skipped:
            ctx.out(f"Trust policy is configured to skip signature verification for {report.reference}")
            return
        ctx.out(f"Successfully verified signature for {report.reference}")
        if report.user_metadata:
            ctx.out("\nThe artifact was signed with the following user metadata.\n")
            rows = [["KEY", "VALUE"], *([k, v] for k, v in sorted(report.user_metadata.items()))]
            sys.stdout.write(tab_table(rows))
        return
    sigs = report.signatures
    for i, sig in enumerate(sigs, 1):
        for line in signature_block(sig, i, len(sigs)):
            print(line, file=sys.stderr)
    for r in report.plugin_results:  # other vetoes; the one the error line names is not repeated
        if r.outcome == "fail" and r.source != "trust_policy" and r.reason not in report.message:
            print(f"Policy plugin {r.source}: {r.reason}", file=sys.stderr)
    print(error_line(failure_message(report.failed_check, report.message)), file=sys.stderr)


def _policy_error_json(exc: Exception, reference: str, scope: str | None) -> dict[str, Any]:
    from ocisign.verify.verification import VerificationReport

    out = VerificationReport(reference=reference, verified=False, failed_check="policy", message=str(exc),
                             scope=scope).to_json()
    out["problems"] = list(getattr(exc, "problems", []) or [str(exc)])
    return out


def run_one(args: argparse.Namespace, ctx: CliContext) -> int:
    """Verify ``args.reference``; see the module docstring for output and exit codes.

    A little over 80 lines: flag checks, policy choice, the verification call and notation's three
    output shapes (text, ``-o json``, policy errors) read best in one place, in the order notation
    prints them.
    """
    from ocisign.cli.compat_flags import check_referrers_flags
    from ocisign.cli.options import parse_key_values
    from ocisign.config.trustpolicy import (
        ignored_member_warnings,
        load_effective_policy,
        policy_file_warnings,
        scope_format_problem,
    )
    from ocisign.errors import ConfigError, OcisignError
    from ocisign.oci.signatures import check_max_signatures
    from ocisign.verify.verification import trust_store_lookup, verify_artifact

    check_max_signatures(args.max_signatures)
    check_referrers_flags(args, sign=False, warn=ctx.warn)
    user_metadata = parse_key_values(args.user_metadata, flag="--user-metadata")
    plugin_config = parse_key_values(args.plugin_config, flag="--plugin-config")
    scope: str | None = args.scope
    if args.oci_layout:
        if scope is None:
            from ocisign.oci.refs import parse_layout_ref

            scope = ctx.project.scope_for(parse_layout_ref(args.reference).path)
        if scope is None:
            raise UsageError("--scope is required with --oci-layout (the trust-policy scope, e.g. local/hello-world)")
        problem = scope_format_problem(scope)
        if problem:
            raise UsageError(f"--scope: {problem}")
    elif scope is not None:
        raise UsageError("--scope can only be used with --oci-layout (registry references are their own scope)")

    # the policy is validated before the artifact is touched
    json_out = args.output == "json"
    try:  # read once per run, whatever the batch size
        doc = ctx.shared("verify.policy", lambda: load_effective_policy(ctx.config_dir, ctx.project.trust_policy))
    except ConfigError as exc:
        if json_out:
            ctx.emit_json(_policy_error_json(exc, args.reference, scope))
        else:
            from ocisign.cli.commands.policy import print_policy_problems

            print_policy_problems("verify", exc)
        return int(ExitCode.USAGE)

    for w in ignored_member_warnings(doc):
        ctx.warn(w)
    if doc.path is not None:
        for w in policy_file_warnings(doc.path):
            ctx.warn(w)
    try:
        artifact = ctx.open_artifact(args.reference, oci_layout=args.oci_layout, layout_type=args.layout_type)
        if scope is None:
            scope = artifact.scope
        if scope is None:  # pragma: no cover - registry artifacts always have a scope
            raise UsageError("cannot determine the trust-policy scope of this artifact")
        report = verify_artifact(
            ctx.pm, ctx.config_dir, artifact.target, artifact.reference,
            location=artifact.location, scope=scope, user_metadata=user_metadata,
            max_signatures=args.max_signatures, plugin_config=plugin_config, policy=doc,
            trust_store=ctx.shared("verify.trust_store", lambda: trust_store_lookup(ctx.pm, ctx.config_dir)),
        )
    except OcisignError as exc:
        if not json_out:
            raise
        from ocisign.verify.verification import VerificationReport

        ctx.emit_json(VerificationReport(reference=args.reference, verified=False, message=exc.diagnostics(),
                                         scope=scope).to_json())
        return int(exc.exit_code)
    if json_out:
        for w in report.warnings:
            ctx.warn(w)
        ctx.emit_json(report.to_json())
    else:
        render_text(ctx, report)
    return int(ExitCode.OK if report.verified else ExitCode.FAILED)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run :func:`run_one` for each reference (one, or a batch: :mod:`ocisign.cli.batch`)."""
    from ocisign.cli.batch import run_batch

    return run_batch("verify", args, ctx, run_one)
