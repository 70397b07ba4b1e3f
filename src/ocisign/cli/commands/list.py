"""``ocisign list|ls``: the signature manifests of an artifact, printed as notation's tree.

::

    ./hello-world@sha256:…
    └── application/vnd.cncf.notary.signature
        ├── sha256:<signature manifest 1>
        └── sha256:<signature manifest n>

Read-only: nothing is created or modified, in layouts or in the config directory.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import argparse

    from ocisign.cli.context import Artifact, CliContext
    from ocisign.oci.model import Descriptor


def add_reference_arguments(parser: argparse.ArgumentParser, *, verb: str) -> None:
    """Flags shared by list and inspect: reference, --oci-layout, --layout-type, --max-signatures."""
    from ocisign.cli.batch import add_batch_arguments

    add_batch_arguments(parser, help_text="REGISTRY/REPO[:TAG|@DIGEST], or with --oci-layout PATH:TAG / PATH@DIGEST")
    parser.add_argument("--oci-layout", action="store_true", help=f"{verb} an artifact in a local OCI layout")
    parser.add_argument("--layout-type", metavar="TYPE", default=None,
                        help="layout type (oci, oci-archive, …); detected when omitted")
    parser.add_argument("--max-signatures", type=int, default=100, metavar="N",
                        help="maximum number of signatures to examine (default 100)")
    from ocisign.cli.compat_flags import add_referrers_flags
    from ocisign.cli.options import add_remote_options

    add_remote_options(parser)
    add_referrers_flags(parser, sign=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``list [--oci-layout] REF [--max-signatures N] [--layout-type T] [-o text|json]``."""
    add_reference_arguments(parser, verb="list signatures of")
    parser.add_argument("-o", "--output", choices=["text", "tree", "json"], default="text",
                        help="output format (text and tree are the same)")


def resolve_with_warning(ctx: CliContext, artifact: Artifact, verb: str) -> Descriptor:
    """Resolve the reference; a tag prints notation's "use a digest" warning to stderr."""
    desc = artifact.target.resolve(artifact.reference)
    if not artifact.reference.startswith(("sha256:", "sha512:")):
        ctx.warn(
            f"Always {verb} the artifact using digest(@sha256:...) rather than a tag(:{artifact.reference}) "
            "because resolved digest may not point to the same signed artifact, as tags are mutable."
        )
    elif desc.digest != artifact.reference:  # pragma: no cover - targets return what they were asked for
        from ocisign.errors import ContentError

        raise ContentError(f"user input digest {artifact.reference} does not match the resolved digest {desc.digest}")
    return desc


def run_one(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print the signature tree (or JSON) of ``args.reference``."""
    from ocisign.cli.compat_flags import check_referrers_flags
    from ocisign.goformat import TreeNode
    from ocisign.oci.model import MT_NOTARY_SIGNATURE
    from ocisign.oci.signatures import check_max_signatures, find_signatures

    check_max_signatures(args.max_signatures)
    check_referrers_flags(args, sign=False, warn=ctx.warn)
    artifact = ctx.open_artifact(args.reference, oci_layout=args.oci_layout, layout_type=args.layout_type)
    subject = resolve_with_warning(ctx, artifact, "list")
    ref = artifact.display(subject.digest)
    sigs = find_signatures(artifact.target, subject, max_signatures=args.max_signatures)
    if args.output == "json":
        ctx.emit_json({
            "reference": ref,
            "mediaType": subject.media_type,
            "signatures": [
                {"digest": d.digest, "mediaType": d.media_type, "size": d.size,
                 "artifactType": d.artifact_type or MT_NOTARY_SIGNATURE, "annotations": dict(d.annotations or {})}
                for d in sigs
            ],
            "truncated": sigs.truncated,
        })
    elif sigs:
        root = TreeNode(ref)
        node = root.add(MT_NOTARY_SIGNATURE)
        for d in sigs:
            node.add(d.digest)
        ctx.out(root.render().rstrip("\n"))
    else:
        ctx.out(f"{ref} has no associated signature")
    if sigs.truncated and args.output != "json":
        ctx.out(f"Warning: {sigs.exceeded_message()}")
    return 0


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run :func:`run_one` for each reference (one, or a batch: :mod:`ocisign.cli.batch`)."""
    from ocisign.cli.batch import run_batch

    return run_batch("list", args, ctx, run_one)
