"""``ocisign demo``: build a hello-world image and run the whole workflow in a throw-away config dir.

See :mod:`ocisign.cli.demo` for the steps.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 1 and 65535")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``demo [--keep DIR] [--registry HOST:PORT | --registry-port N | --no-registry] [-o text|json]``."""
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the layout, config dir and registry storage in DIR (new or empty); "
                        "default: a temporary directory removed at the end")
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--registry", metavar="HOST:PORT", default=None,
                   help="use this running registry instead of starting docker-registry")
    g.add_argument("--registry-port", type=_port, metavar="N", default=None,
                   help="port for the docker-registry the demo starts on 127.0.0.1 (default: a free port)")
    g.add_argument("--no-registry", action="store_true", help="skip the registry steps")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text",
                        help="json: print one JSON summary (with each command's output) instead of a transcript")


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run the demo."""
    from ocisign.cli.demo import run_demo

    return run_demo(keep=args.keep, registry=args.registry, registry_port=args.registry_port,
                    no_registry=args.no_registry, json_output=args.output == "json")
