"""``ocisign cp SRC DST``: copy an artifact (and with ``-r`` its signatures and other referrers)
between OCI layouts and registries, like ``oras cp``.

Examples::

    ocisign cp -r --from-oci-layout ./hello-world:v1 localhost:5001/hello-world:v1
    ocisign cp -r --to-oci-layout localhost:5001/hello-world:v1 ./downloaded:v1
    ocisign cp -r localhost:5001/hello-world:v1 localhost:5001/mirror/hello-world:v1

A destination without a tag or digest takes the source's tag (or is pushed by digest only).
``-u/-P`` apply to the registry side (or to both when both are on the same registry); between two
registries use ``--from-username/--from-password`` and ``--to-username/--to-password``. oras's
per-side transport flags ``--from-/--to-plain-http``, ``--from-/--to-insecure``,
``--from-/--to-ca-file`` and ``--from-/--to-distribution-spec`` are accepted (see
:mod:`ocisign.cli.compat_flags`).
A destination layout that does not exist yet is created (``--layout-type`` picks its kind).
Output (stdout), as oras prints it::

    Copied [oci-layout] ./hello-world:v1 => [registry] localhost:5001/hello-world:v1
    Digest: sha256:…

Without ``-r``, a source artifact that has referrers (signatures…) gets a warning on stderr saying
how many were left behind and that ``-r`` copies them.
``-o json`` prints a summary of what was pushed and what was skipped instead. Progress goes to
stderr when it is a terminal.
"""

from __future__ import annotations

import sys

from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import argparse

    from ocisign.cli.context import CliContext
    from ocisign.oci.refs import RegistryRef
    from ocisign.types import RemoteOptions, Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``cp`` arguments (argparse and the option helpers are imported only here: a command line
    :func:`fast_parse` understands never builds this parser)."""
    from ocisign.cli.options import add_remote_options

    # required, so that options may sit between them (``cp SRC --to-oci-layout DST``); --refs-from
    # lifts the requirement
    parser.add_argument("source", metavar="SRC",
                        help="REGISTRY/REPO:TAG|@DIGEST, or PATH:TAG|@DIGEST with --from-oci-layout")
    parser.add_argument("destination", metavar="DST",
                        help="REGISTRY/REPO[:TAG], or PATH[:TAG] with --to-oci-layout")
    from ocisign.cli.batch import DEFAULT_JOBS, parse_jobs

    g = parser.add_argument_group("batch options")
    g.add_argument("--refs-from", metavar="FILE", default=None, action=_refs_from_action(),
                   help="copy every 'SRC DST' pair listed in FILE, one a line ('-': standard input); "
                        "SRC DST may then be omitted")
    g.add_argument("--jobs", type=parse_jobs, default=DEFAULT_JOBS, metavar="N",
                   help=f"copies run at once in a batch (default {DEFAULT_JOBS})")
    parser.add_argument("--from-oci-layout", action="store_true", help="the source is an OCI layout (directory or tar)")
    parser.add_argument("--to-oci-layout", action="store_true", help="the destination is an OCI layout")
    parser.add_argument("-r", "--recursive", action="store_true",
                        help="also copy the artifact's referrers (signatures), recursively")
    parser.add_argument("--layout-type", metavar="TYPE",
                        help="layout handler for the layout side(s) (oci, oci-archive…)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    add_remote_options(parser, concurrency=True)
    from ocisign.cli.compat_flags import distribution_spec

    g = parser.add_argument_group("per-side registry options (oras's flags; they win over the shared ones)")
    for side in ("from", "to"):
        which = "source" if side == "from" else "destination"
        g.add_argument(f"--{side}-username", metavar="USER", help=f"user name for the {which} registry")
        g.add_argument(f"--{side}-password", metavar="PASSWORD", help="its password (insecure on the command line)")
        g.add_argument(f"--{side}-plain-http", action="store_true", help=f"plain HTTP to the {which} registry")
        g.add_argument(f"--{side}-insecure", action="store_true",
                       help=f"TLS without certificate verification to the {which} registry")
        g.add_argument(f"--{side}-ca-file", metavar="FILE", help=f"also trust these CA certificates for the {which}")
        g.add_argument(f"--{side}-distribution-spec", type=distribution_spec, metavar="SPEC",
                       help=f"referrers of the {which}: v1.1-referrers-tag (the referrers tag schema only) "
                            "or v1.1-referrers-api (the referrers API)")


def _split_layout_dst(text: str) -> tuple[str, str | None]:
    """``PATH[:TAG|@DIGEST]`` → (path, reference or None)."""
    from ocisign.oci.refs import parse_layout_ref

    if "@" not in text and ":" not in text.replace("\\", "/").rsplit("/", 1)[-1]:
        return text, None
    ref = parse_layout_ref(text)
    return ref.path, ref.reference


def _split_extra_tags(text: str) -> tuple[str, list[str]]:
    """oras's ``DST[:TAG][,TAG…]``: the destination with its first tag, and the extra tags."""
    from ocisign.oci.refs import TAG_RE

    first, *extra = text.split(",")
    for tag in extra:
        if not TAG_RE.match(tag):
            raise UsageError(f"destination {text!r}: invalid tag {tag!r}")
    return first, extra


def _registry_ref(text: str, flag: str) -> RegistryRef:
    from ocisign.oci.refs import looks_like_registry_ref, parse_registry_ref

    if not looks_like_registry_ref(text):
        raise UsageError(f"{text!r} is not a registry reference (REGISTRY/REPO:TAG); for a local layout add {flag}")
    return parse_registry_ref(text)


def _replace(options: RemoteOptions, **changes: object) -> RemoteOptions:
    """``dataclasses.replace``, imported only when a per-side option is given (dataclasses and the
    ``inspect`` module it pulls in take ~10 ms; most copies give none)."""
    import dataclasses

    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def _side_options(args: argparse.Namespace, base: RemoteOptions, side: str) -> RemoteOptions:
    """``base`` with ``--from-*``/``--to-*`` transport options and credentials applied."""
    plain = bool(getattr(args, f"{side}_plain_http", False))
    insecure = bool(getattr(args, f"{side}_insecure", False))
    ca_file = getattr(args, f"{side}_ca_file", None)
    if plain and (insecure or ca_file):
        raise UsageError(f"--{side}-plain-http cannot be combined with --{side}-insecure or --{side}-ca-file")
    if plain:
        base = _replace(base, plain_http=True, insecure=False, ca_file=None)
    elif insecure or ca_file:
        base = _replace(base, plain_http=False, insecure=insecure or base.insecure, ca_file=ca_file or base.ca_file)
    user, password = getattr(args, f"{side}_username"), getattr(args, f"{side}_password")
    if user is None and password is None:
        return base
    if not user or password is None:
        raise UsageError(f"--{side}-username and --{side}-password go together")
    print(f"Warning: using --{side}-password on the command line is insecure; prefer ocisign login", file=sys.stderr)
    return _replace(base, username=user, password=password)


def _refs_from_action() -> type[argparse.Action]:
    """The ``--refs-from`` action class (made when the parser is built: argparse is not imported before)."""
    import argparse

    class RefsFrom(argparse.Action):
        """``--refs-from FILE``: stores FILE and makes SRC and DST optional."""

        def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                     option_string: str | None = None) -> None:
            setattr(namespace, self.dest, values)
            for action in parser._actions:
                if action.dest in ("source", "destination"):
                    action.required = False

    return RefsFrom


# --- the common command lines without argparse ----------------------------------------------------
#: boolean flags :func:`fast_parse` takes, and the attribute each sets
_FAST_FLAGS = {
    "--from-oci-layout": "from_oci_layout", "--to-oci-layout": "to_oci_layout",
    "-r": "recursive", "--recursive": "recursive",
    "--insecure-registry": "insecure_registry", "--plain-http": "plain_http", "--insecure": "insecure",
    "--password-stdin": "password_stdin",
    "--from-plain-http": "from_plain_http", "--to-plain-http": "to_plain_http",
    "--from-insecure": "from_insecure", "--to-insecure": "to_insecure",
    "-d": "debug", "--debug": "debug", "-v": "verbose", "--verbose": "verbose", "--trace-plugins": "trace_plugins",
}


def _fast_defaults() -> dict[str, object]:
    """What the parser gives ``cp SRC DST`` (``tests/unit/test_cp_fast_parse.py`` compares them)."""
    return {
        "debug": False, "verbose": False, "plugin_modules": [], "trace_plugins": False, "config_dir": None,
        "project_config": None, "refs_from": None, "jobs": 4, "from_oci_layout": False, "to_oci_layout": False,
        "recursive": False, "layout_type": None, "output": "text", "username": None, "password": None,
        "password_stdin": False, "insecure_registry": False, "plain_http": False, "insecure": False, "ca_file": None,
        "timeout": 30.0, "concurrency": 4,
        **{f"{side}_{name}": False if name in ("plain_http", "insecure") else None
           for side in ("from", "to")
           for name in ("username", "password", "plain_http", "insecure", "ca_file", "distribution_spec")},
    }


def fast_parse(argv: list[str]) -> argparse.Namespace | None:
    """The parsed arguments of ``cp`` (``argv`` after the command word) without building the
    parser, for the usual command lines: SRC and DST plus boolean flags written in full and
    ``-o text|json``. None for anything else (values, abbreviations, ``--``, help, errors), which
    the parser then handles, so every message and exit code stays argparse's.

    A re-push is mostly start-up: importing argparse (with gettext and locale) and building cp's
    parser of some 45 options cost about as much as the copy work itself.
    """
    values = _fast_defaults()
    positional: list[str] = []
    tokens = iter(argv)
    for tok in tokens:
        if not tok.startswith("-"):
            positional.append(tok)
        elif tok in _FAST_FLAGS:
            values[_FAST_FLAGS[tok]] = True
        elif tok in ("-o", "--output"):
            value = next(tokens, None)
            if value not in ("text", "json"):
                return None
            values["output"] = value
        else:
            return None
    if len(positional) != 2:
        return None
    values["source"], values["destination"] = positional
    import types

    return types.SimpleNamespace(**values)  # type: ignore[return-value]  # read like a Namespace


def _pairs(args: argparse.Namespace) -> list[str]:
    """``SRC DST`` items: the command line's pair, then the lines of ``--refs-from``."""
    from ocisign.cli.batch import read_refs_file

    items: list[str] = []
    if args.source is not None or args.destination is not None:
        if args.source is None or args.destination is None:
            raise UsageError("the following arguments are required: SRC DST")
        items.append(f"{args.source} {args.destination}")
    if args.refs_from is not None:
        if args.refs_from == "-" and getattr(args, "password_stdin", False):
            raise UsageError("--refs-from - and --password-stdin cannot both read standard input")
        for line in read_refs_file(args.refs_from):
            if len(line.split()) != 2:
                raise UsageError(f"--refs-from {args.refs_from}: {line!r}: expected 'SRC DST'")
            items.append(" ".join(line.split()))
    if not items:
        raise UsageError("the following arguments are required: SRC DST (or --refs-from FILE)")
    return items


def _apply_pair(args: argparse.Namespace, item: str) -> None:
    args.source, args.destination = item.split(" ", 1)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Copy SRC to DST, or every pair of ``--refs-from`` (a batch: :mod:`ocisign.cli.batch`)."""
    if args.refs_from is None and args.source is not None and args.destination is not None:
        return run_one(args, ctx)  # one pair, as given (no batch module; a space in a path stays in it)
    from ocisign.cli.batch import run_batch

    return run_batch("cp", args, ctx, run_one, items=_pairs(args), apply=_apply_pair)


def run_one(args: argparse.Namespace, ctx: CliContext) -> int:
    """Copy SRC to DST.

    A little over 80 lines: it maps oras's per-side flags onto the two targets, runs the copy and
    reports it (progress, the referrers left behind without ``-r``, the summary) in one sequence.
    """
    from ocisign.registry.copy import Progress, copy

    layout_type = args.layout_type
    destination, extra_tags = _split_extra_tags(args.destination)
    src_rref = None if args.from_oci_layout else _registry_ref(args.source, "--from-oci-layout")
    if src_rref is not None and src_rref.tag is None and src_rref.digest is None:  # as oras: no implicit latest
        raise UsageError(f"source {args.source!r}: no tag or digest specified (REGISTRY/REPO:TAG or @DIGEST)")
    dst_rref = None if args.to_oci_layout else _registry_ref(destination, "--to-oci-layout")
    base = ctx.remote_options()
    if src_rref and dst_rref and src_rref.registry != dst_rref.registry and base.username is not None:
        raise UsageError(
            "-u/--username is ambiguous between two registries; use --from-username/--to-username"
        )
    src: Target
    if src_rref is None:
        src_art = ctx.open_artifact(args.source, oci_layout=True, layout_type=layout_type)
        src, src_reference, src_kind = src_art.target, src_art.reference, "oci-layout"
    else:
        src = ctx.open_registry(src_rref.registry, src_rref.repository, _side_options(args, base, "from"))
        if args.from_distribution_spec is not None:  # compat_flags only when a spec is given
            from ocisign.cli.compat_flags import apply_distribution_spec

            apply_distribution_spec(src, args.from_distribution_spec, destination=False)
        src_reference, src_kind = src_rref.reference, "registry"
    src_tag = None if src_reference.startswith(("sha256:", "sha512:")) else src_reference

    dst: Target
    dst_ref: str | None
    try:
        if dst_rref is None:
            path, dst_ref = _split_layout_dst(destination)
            dst = ctx.pm.open_layout(path, layout_type=layout_type, create=True)
            dst_kind, dst_location = "oci-layout", path
        else:
            dst = ctx.open_registry(dst_rref.registry, dst_rref.repository, _side_options(args, base, "to"))
            if args.to_distribution_spec is not None:
                from ocisign.cli.compat_flags import apply_distribution_spec

                apply_distribution_spec(dst, args.to_distribution_spec, destination=True)
            dst_ref = dst_rref.digest or dst_rref.tag
            dst_kind, dst_location = "registry", dst_rref.scope
    except BaseException:
        if src_rref is not None:
            src.close()
        raise
    try:
        dst_digest = dst_ref if dst_ref and dst_ref.startswith(("sha256:", "sha512:")) else None
        tag = None if dst_digest else (dst_ref or src_tag)
        result = copy(
            src,
            src_reference,
            dst,
            tag=tag,
            recursive=args.recursive,
            concurrency=args.concurrency,
            progress=Progress(),
            warn=ctx.warn,
            expect_digest=dst_digest,
        )
        if extra_tags:  # oras tags them after the copy, printing "Tagged TAG" for each
            root_bytes = dst.fetch(result.root)
            with dst.writer() as w:
                for extra in extra_tags:
                    w.push_manifest(result.root, root_bytes, tag=extra)
    finally:
        dst.close()
        if src_rref is not None:
            src.close()
    if result.referrers_left:
        n = result.referrers_left
        ctx.warn(f"{n} referrer{'s' if n != 1 else ''} (signatures or other artifacts) of {result.root.digest} "
                 f"{'were' if n != 1 else 'was'} not copied; add -r to copy {'them' if n != 1 else 'it'}")
    shown_src = f"[{src_kind}] {args.source}"
    dst_text = f"{dst_location}:{tag}" if tag else f"{dst_location}@{result.root.digest}"
    shown_dst = f"[{dst_kind}] {dst_text}"
    ctx.pm.push_finished(args.source, dst_text, [d for d, _ in result.pushed])
    if args.output == "json":
        ctx.emit_json({"source": shown_src, "destination": shown_dst, **result.to_json()})
    else:
        ctx.out(f"Copied {shown_src} => {shown_dst}")
        for extra in extra_tags:
            ctx.out(f"Tagged {extra}")
        ctx.out(f"Digest: {result.root.digest}")
    return 0
