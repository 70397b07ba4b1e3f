"""Flag spellings ocisign accepts so that notation and oras command lines work unchanged.

* Go-style boolean flags (spf13/pflag): ``--flag``, ``--flag=true``, ``--flag=false`` and the
  other spellings Go's ``strconv.ParseBool`` takes (``1 t T TRUE True``, ``0 f F FALSE False``).
  As in Go, ``--flag false`` is *not* a value: ``false`` would be the next argument.
* ``sign --force-referrers-tag[=BOOL]`` (notation 1.2+): keep the ``sha256-<hex>`` referrers
  tag index up to date even when the registry has the referrers API. Without the flag ocisign
  does what notation 2 does (the referrers API when the registry has it, else the tag schema);
  on registries without the API (docker-registry 2.x) both store the signature the same way.
  It cannot be combined with ``--oci-layout`` (notation refuses that too).
* hidden ``--allow-referrers-api[=BOOL]`` on sign, list, inspect and verify (notation 1.x,
  deprecated): accepted with notation's deprecation warning. For ``sign``,
  ``--allow-referrers-api`` means ``--force-referrers-tag=false``; elsewhere it changes nothing
  (listing always uses the referrers API with the tag schema as fallback).
* ``cp --from-distribution-spec/--to-distribution-spec v1.1-referrers-tag|v1.1-referrers-api``
  (oras): ``v1.1-referrers-tag`` reads referrers from / keeps them in the tag index only;
  ``v1.1-referrers-api`` trusts the registry's referrers API (no tag index is written).
"""

from __future__ import annotations

import sys

from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:  # argparse: imported where a parser is built (cp's run applies flags without it)
    import argparse
    from collections.abc import Callable

    from ocisign.registry.target import RegistryTarget
    from ocisign.types import Target

#: what Go's strconv.ParseBool accepts
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")

DISTRIBUTION_SPECS = ("v1.1-referrers-api", "v1.1-referrers-tag")

_DEPRECATED = "flag '--allow-referrers-api' is deprecated and will be removed in future versions"


def add_go_bool_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *, dest: str,
                     help: str) -> None:
    """``name`` as a Go boolean flag; the parsed value is None when the flag was not given."""
    import argparse

    parser.add_argument(name, dest=dest, action="store_const", const=True, default=None, help=help)
    parser.add_argument(*(f"{name}={v}" for v in GO_TRUE), dest=dest, action="store_const", const=True,
                        default=None, help=argparse.SUPPRESS)
    parser.add_argument(*(f"{name}={v}" for v in GO_FALSE), dest=dest, action="store_const", const=False,
                        default=None, help=argparse.SUPPRESS)


def add_referrers_flags(parser: argparse.ArgumentParser, *, sign: bool) -> None:
    """``--force-referrers-tag`` (sign only) and the hidden, deprecated ``--allow-referrers-api``."""
    import argparse

    if sign:
        add_go_bool_flag(
            parser, "--force-referrers-tag", dest="force_referrers_tag",
            help="registries: also keep the referrers tag index when the registry has the referrers API "
                 "(--force-referrers-tag=false, the default, uses the API when there is one)",
        )
    add_go_bool_flag(parser, "--allow-referrers-api", dest="allow_referrers_api", help=argparse.SUPPRESS)


def check_referrers_flags(args: argparse.Namespace, *, sign: bool, warn: Callable[[str], object]) -> bool | None:
    """Validate the referrers flags, print notation's deprecation warning; the force-tag choice (None: default)."""
    allow: bool | None = getattr(args, "allow_referrers_api", None)
    force: bool | None = getattr(args, "force_referrers_tag", None)
    if sign:
        given = [name for name, on in (("--oci-layout", bool(getattr(args, "oci_layout", False))),
                                       ("--force-referrers-tag", force is not None),
                                       ("--allow-referrers-api", allow is not None)) if on]
        if len(given) > 1:
            raise UsageError(f"{' and '.join(given)} cannot be used together")
    if allow is not None:
        if sign and allow:
            warn(f"{_DEPRECATED}, use '--force-referrers-tag=false' instead.")
            force = False
        else:
            warn(f"{_DEPRECATED}.")
    return force


def _registry_target(target: Target) -> RegistryTarget | None:
    module = sys.modules.get("ocisign.registry.target")
    if module is None:  # no registry target exists in this process: a layout (and no ssl/http.client import)
        return None
    return target if isinstance(target, module.RegistryTarget) else None


def apply_force_referrers_tag(target: Target, force: bool | None) -> None:
    """Make a registry target keep the tag index even when the registry has the referrers API."""
    reg = _registry_target(target)
    if reg is not None and force:
        reg.force_referrers_tag = True


def distribution_spec(text: str) -> str:
    """argparse type for ``--from/--to-distribution-spec`` (oras's values and message)."""
    if text not in DISTRIBUTION_SPECS:
        import argparse

        raise argparse.ArgumentTypeError(
            f"unknown distribution specification flag: {text} (available options: {', '.join(DISTRIBUTION_SPECS)})"
        )
    return text


def apply_distribution_spec(target: Target, spec: str | None, *, destination: bool) -> None:
    """Apply an oras ``--*-distribution-spec`` choice to a registry target (layouts ignore it)."""
    reg = _registry_target(target)
    if reg is None or spec is None:
        return
    if spec == "v1.1-referrers-tag":
        reg.referrers_api = False
        if destination:
            reg.force_referrers_tag = True
    else:
        reg.referrers_api = True
