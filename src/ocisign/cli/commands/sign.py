"""``ocisign sign``: sign an artifact in an OCI layout (``--oci-layout``) or a registry.

``sign [--oci-layout] REF [-k/--key NAME | --plugin P --id ID] [--signature-format jws|cose]
[-e/--expiry 24h] [-m/--user-metadata k=v]… [--layout-type T] [--plugin-config k=v]…
[--timestamp-url URL --timestamp-root-cert FILE]``

The key is ``--key``, else the project config's ``key``, else the default key of
``signingkeys.json``; the format is ``--signature-format``, else the project config's, else
``config.json``'s ``signatureFormat``, else ``jws`` (:mod:`ocisign.cli.signing_choice`, shared with
the pre-commit hook). ``--timestamp-url`` and ``--timestamp-root-cert``
(together) countersign the signature with an RFC 3161 timestamp whose TSA chain must end at that
root (:mod:`ocisign.sign.timestamping`). Prints ``Successfully signed <ref>@<digest>``.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext
    from ocisign.sign.timestamping import TimestampOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``sign``."""
    from ocisign.cli.batch import add_batch_arguments

    add_batch_arguments(parser, help_text="REGISTRY/REPO[:TAG|@DIGEST], or with --oci-layout PATH:TAG / PATH@DIGEST")
    parser.add_argument("--oci-layout", action="store_true", help="sign an artifact in a local OCI layout")
    parser.add_argument("--layout-type", metavar="TYPE", default=None,
                        help="layout type (oci, oci-archive, …); detected when omitted")
    parser.add_argument("-k", "--key", metavar="NAME", default=None, help="signing key name (default: the default key)")
    parser.add_argument("--plugin", metavar="NAME", default=None,
                        help="sign with a key served by this signer plugin (with --id; instead of --key)")
    parser.add_argument("--id", metavar="ID", default=None, help="key id for --plugin")
    parser.add_argument("--signature-format", metavar="FORMAT", default=None,
                        help="signature envelope format: jws (default) or cose")
    parser.add_argument("-e", "--expiry", metavar="DURATION", default=None,
                        help="signature expiry after the signing time, e.g. 24h, 30m, 1h30m, 10s")
    parser.add_argument("-m", "--user-metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="metadata added to the signed payload's annotations (repeatable)")
    parser.add_argument("--plugin-config", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration passed to the signer plugin of the key (repeatable)")
    parser.add_argument("--timestamp-url", metavar="URL", default=None,
                        help="RFC 3161 Timestamping Authority (TSA) server URL (with --timestamp-root-cert)")
    parser.add_argument("--timestamp-root-cert", metavar="FILE", default=None,
                        help="file with the single self-signed root certificate (PEM or DER) of the TSA's chain "
                             "(with --timestamp-url)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text",
                        help="output format: text, or json (reference, signature manifest digest, envelope type, "
                             "key, timestamp URL)")
    from ocisign.cli.options import add_remote_options

    add_remote_options(parser)
    from ocisign.cli.compat_flags import add_referrers_flags

    add_referrers_flags(parser, sign=True)


def _timestamp_options(args: argparse.Namespace) -> TimestampOptions | None:
    """``--timestamp-url``/``--timestamp-root-cert``; the RFC 3161 client is imported only when asked for."""
    if args.timestamp_url is None and args.timestamp_root_cert is None:
        return None
    from ocisign.sign.timestamping import timestamp_options

    return timestamp_options(args.timestamp_url, args.timestamp_root_cert)


def run_one(args: argparse.Namespace, ctx: CliContext) -> int:
    """Sign ``args.reference`` and print ``Successfully signed <ref>@<digest>`` (or ``-o json``)."""
    from ocisign.cli.compat_flags import apply_force_referrers_tag, check_referrers_flags
    from ocisign.cli.options import parse_user_metadata
    from ocisign.cli.signing_choice import choose_format, make_named_signer
    from ocisign.sign.signing import parse_duration, sign_artifact

    metadata = parse_user_metadata(args.user_metadata)
    expiry = parse_duration(args.expiry) if args.expiry else None
    # the same for every reference of a batch: the key is read and the TSA root parsed once per run
    timestamp = ctx.shared("sign.timestamp", lambda: _timestamp_options(args))
    fmt = ctx.shared("sign.format", lambda: ctx.pm.envelope_format(choose_format(ctx, args.signature_format)))
    signer, key_name = ctx.shared("sign.signer", lambda: make_named_signer(
        ctx, key=args.key, plugin=args.plugin, key_id=args.id, plugin_config=args.plugin_config))
    force_referrers_tag = check_referrers_flags(args, sign=True, warn=ctx.warn)
    artifact = ctx.open_artifact(args.reference, oci_layout=args.oci_layout, layout_type=args.layout_type)
    apply_force_referrers_tag(artifact.target, force_referrers_tag)
    result = sign_artifact(
        ctx.pm, artifact.target, artifact.reference, signer=signer, envelope_format=fmt,
        expiry=expiry, user_metadata=metadata, warn=ctx.warn, timestamp=timestamp,
    )
    if getattr(args, "output", "text") == "json":
        ctx.emit_json({
            "reference": artifact.display(result.subject.digest),
            "signatureManifest": result.signature.digest,
            "envelopeType": fmt.media_type,
            "key": key_name,
            "timestamp": timestamp.url if timestamp else None,
        })
    else:
        ctx.out(f"Successfully signed {artifact.display(result.subject.digest)}")
    return 0


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run :func:`run_one` for each reference (one, or a batch: :mod:`ocisign.cli.batch`)."""
    from ocisign.cli.batch import run_batch

    return run_batch("sign", args, ctx, run_one)
