"""Signing an envelope: a SignRequest checked against the signer (:func:`plan_seal`) and the signer call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ocisign.envelope.algorithms import Algorithm, algorithm_for, key_spec_of
from ocisign.envelope.headers import (
    ALWAYS_CRITICAL,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
    SIGNING_SCHEMES,
    STANDARD_HEADERS,
)
from ocisign.envelope.times import format_time, require_aware, truncate_seconds
from ocisign.errors import OcisignError, SigningError
from ocisign.lazy_dataclass import dataclass


@dataclass(frozen=True)
class SealPlan:
    """A validated :class:`~ocisign.types.SignRequest` plus the signer's algorithm and chain."""

    alg: Algorithm
    chain_der: tuple[bytes, ...]
    scheme: str
    #: UTC, whole seconds
    signing_time: dt.datetime
    expiry: dt.datetime | None
    extended: Mapping[str, Any]
    #: extended attribute names to mark critical, in request order
    critical_extended: tuple[str, ...]
    signing_agent: str


def plan_seal(request: Any, signer: Any) -> SealPlan:
    """Validate a SignRequest against a Signer; SigningError on any problem.

    Checks the signing scheme, times (aware; expiry strictly after signing time), extended
    attribute names, the chain (non-empty) and that the signer's key spec equals the leaf's.
    """
    if request.signing_scheme not in SIGNING_SCHEMES:
        raise SigningError(f"unsupported signing scheme {request.signing_scheme!r}; "
                           f"use {SCHEME_X509} or {SCHEME_SIGNING_AUTHORITY}")
    signing_time = truncate_seconds(require_aware(request.signing_time, what="signing time"))
    expiry = None
    if request.expiry is not None:
        expiry = truncate_seconds(require_aware(request.expiry, what="expiry"))
        if expiry <= signing_time:
            raise SigningError(f"expiry {format_time(expiry)} must be after the signing time "
                               f"{format_time(signing_time)}")
    try:
        alg = algorithm_for(signer.key_spec)
    except OcisignError:  # a plugin signer's PluginError keeps its exit code
        raise
    except Exception as exc:
        raise SigningError(f"signer failed: {exc}") from exc
    # a plugin signer (``chain_after_signing``) returns its chain with the signature: read it in sealed_chain
    chain_der = () if getattr(signer, "chain_after_signing", False) else _signer_chain_der(signer, alg)
    extended = dict(request.extended_attributes)
    for name in extended:
        if not isinstance(name, str) or not name:
            raise SigningError(f"extended attribute name must be a non-empty string, got {name!r}")
        if name in STANDARD_HEADERS or name.lower() in {h.lower() for h in STANDARD_HEADERS}:
            raise SigningError(f"extended attribute {name!r} collides with a standard header")
    wanted = set(request.critical_attributes)
    for name in wanted - set(extended):
        raise SigningError(f"critical attribute {name!r} is not an extended attribute")
    critical = [n for n in extended if n in wanted or n in ALWAYS_CRITICAL]
    return SealPlan(
        alg=alg,
        chain_der=chain_der,
        scheme=request.signing_scheme,
        signing_time=signing_time,
        expiry=expiry,
        extended=extended,
        critical_extended=tuple(critical),
        signing_agent=request.signing_agent or "",
    )


def _signer_chain_der(signer: Any, alg: Algorithm) -> tuple[bytes, ...]:
    """The signer's chain as DER; non-empty and its leaf key of ``alg``'s key spec.

    A signer that carries the DER of its chain (``certificate_chain_der()``, the file signer reads
    it with the certificates) is not asked to encode the certificates again for every envelope.
    """
    try:
        chain = tuple(signer.certificate_chain())
        carried = getattr(signer, "certificate_chain_der", None)
        ders = tuple(carried()) if callable(carried) else None
    except OcisignError:
        raise
    except Exception as exc:
        raise SigningError(f"signer failed: {exc}") from exc
    if not chain:
        raise SigningError("the signing key has an empty certificate chain")
    leaf_spec = key_spec_of(chain[0].public_key(), what="signing certificate")
    if leaf_spec != alg.key_spec:
        raise SigningError(f"signing key spec {alg.key_spec} does not match the {leaf_spec} key "
                           "of the leaf certificate")
    if ders is not None and len(ders) == len(chain) and all(isinstance(d, bytes) for d in ders):
        return ders
    from cryptography.hazmat.primitives.serialization import Encoding

    return tuple(c.public_bytes(Encoding.DER) for c in chain)


def sealed_chain(plan: SealPlan, signer: Any) -> tuple[bytes, ...]:
    """The chain to put in the envelope, after ``signer.sign`` ran (plugin signers know it only then)."""
    return plan.chain_der or _signer_chain_der(signer, plan.alg)


def call_signer(signer: Any, data: bytes) -> bytes:
    """``signer.sign(data)``; non-ocisign exceptions become SigningError."""
    try:
        sig = signer.sign(data)
    except OcisignError:
        raise
    except Exception as exc:
        raise SigningError(f"signing failed: {exc}") from exc
    if not isinstance(sig, (bytes, bytearray)) or not sig:
        raise SigningError("signer returned an empty signature")
    return bytes(sig)
