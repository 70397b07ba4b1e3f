"""What opening a JWS or a COSE envelope has in common once its format-specific fields are read.

The format plugins (:mod:`ocisign.plugins.jws`, :mod:`ocisign.plugins.cose`) decode their own
bytes and headers; these helpers hold the Notary rules both apply to the result:

* :func:`scheme_times`: which of signing time / authentic signing time the signing scheme
  requires or forbids, and that an expiry is after it;
* :func:`required_critical` / :func:`check_required_critical`: the headers ``crit`` must list;
* :func:`optional_string`: the verification-plugin headers;
* :func:`verified_content`: parse the certificate chain, check ``alg`` against the leaf key,
  verify the signature and build the :class:`~ocisign.types.EnvelopeContent`.

Every problem raises :class:`~ocisign.envelope.errors.EnvelopeError` with the format's own wording
(labels are passed in).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ocisign.envelope.algorithms import Algorithm, key_spec_of, verify_checked_signature
from ocisign.envelope.certificates import known_certificate, parse_der_certificate
from ocisign.envelope.errors import EnvelopeError, UnsupportedKeyError
from ocisign.envelope.headers import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
)
from ocisign.types import EnvelopeContent
from ocisign.x509.memo import CertMemo

__all__ = [
    "check_required_critical",
    "new_content",
    "optional_string",
    "required_critical",
    "required_critical_set",
    "scheme_times",
    "verified_content",
]


def scheme_times(
    protected: Mapping[Any, Any],
    scheme: str,
    read_time: Callable[[str], dt.datetime],
    *,
    expiry_message: Callable[[], str],
    exact_time: Callable[[str], int] | None = None,
) -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
    """``(signing_time, authentic_signing_time, expiry)`` of a protected header.

    ``notary.x509`` requires the signing time and forbids the authentic signing time;
    ``notary.x509.signingAuthority`` the other way round. ``read_time(name)`` decodes one header
    in the format's encoding; an expiry not after the (authentic) signing time raises
    EnvelopeError with ``expiry_message()``. Where the format carries more precision than a
    datetime holds (COSE float epochs, to the nanosecond), ``exact_time(name)`` gives the instant
    the expiry is compared by.
    """
    signing_time = authentic = None
    if scheme == SCHEME_X509:
        if H_AUTHENTIC_SIGNING_TIME in protected:
            raise EnvelopeError(f"{H_AUTHENTIC_SIGNING_TIME} header must not be present for {scheme}")
        if H_SIGNING_TIME not in protected:
            raise EnvelopeError(f"{H_SIGNING_TIME} header is required for {scheme}")
        signing_time = reference = read_time(H_SIGNING_TIME)
        reference_name = H_SIGNING_TIME
    else:
        if H_SIGNING_TIME in protected:
            raise EnvelopeError(f"{H_SIGNING_TIME} header must not be present for {scheme}")
        if H_AUTHENTIC_SIGNING_TIME not in protected:
            raise EnvelopeError(f"{H_AUTHENTIC_SIGNING_TIME} header is required for {scheme}")
        authentic = reference = read_time(H_AUTHENTIC_SIGNING_TIME)
        reference_name = H_AUTHENTIC_SIGNING_TIME
    expiry = None
    if H_EXPIRY in protected:
        expiry = read_time(H_EXPIRY)
        not_after = (exact_time(H_EXPIRY) <= exact_time(reference_name)) if exact_time else expiry <= reference
        if not_after:
            raise EnvelopeError(expiry_message())
    return signing_time, authentic, expiry


def required_critical(scheme: str, expiry: dt.datetime | None) -> set[str]:
    """The headers ``crit`` must list: the signing scheme, the expiry and the authentic signing time when present."""
    must = {H_SIGNING_SCHEME}
    if expiry is not None:
        must.add(H_EXPIRY)
    if scheme == SCHEME_SIGNING_AUTHORITY:
        must.add(H_AUTHENTIC_SIGNING_TIME)
    return must


_REQUIRED: dict[tuple[str, bool], frozenset[str]] = {}


def required_critical_set(scheme: str, expiry: dt.datetime | None) -> frozenset[str]:
    """:func:`required_critical` as a frozen set made once per (scheme, expiry present)."""
    key = (scheme, expiry is not None)
    found = _REQUIRED.get(key)
    if found is None:
        found = _REQUIRED[key] = frozenset(required_critical(scheme, expiry))
    return found


def check_required_critical(crit: Sequence[Any], scheme: str, expiry: dt.datetime | None) -> None:
    """EnvelopeError naming the :func:`required_critical` headers that ``crit`` leaves out."""
    missing = sorted(required_critical(scheme, expiry) - set(crit))
    if missing:
        raise EnvelopeError(f"these required headers are not marked critical: {', '.join(missing)}")


def optional_string(protected: Mapping[Any, Any], name: str, *, kind: str = "string") -> str | None:
    """Header ``name`` if present: a non-empty ``kind`` (check ``verificationPlugin`` otherwise)."""
    if name not in protected:
        return None
    value = protected[name]
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{name} header must be a non-empty {kind}", check="verificationPlugin")
    return value


def _load_leaf_key(cert: Any) -> tuple[Any, str]:
    key = cert.public_key()
    return key, key_spec_of(key)


#: the leaf's public key and its key spec, found once per certificate object (an unsupported key
#: is not remembered: it raises again, with the format's wording, below)
_leaf_key = CertMemo(_load_leaf_key)


#: the field names of EnvelopeContent when it can be filled directly (see :func:`new_content`), empty when not
_DIRECT_FIELDS: list[frozenset[str]] = []


def new_content(**values: Any) -> EnvelopeContent:
    """``EnvelopeContent(**values)`` for a value of every field, without the frozen dataclass's ``__init__``.

    A frozen dataclass sets each of its 17 fields through ``object.__setattr__`` (with the lazy
    ``__new__`` that is about 4 µs of a ~30 µs envelope open in Python); the instance is filled
    with its ``__dict__`` instead, which is what that ``__init__`` does. Only when the class allows
    it (a processed dataclass with an instance ``__dict__``, no ``__post_init__``) and ``values``
    names exactly its fields; otherwise the ordinary constructor runs.
    """
    if not _DIRECT_FIELDS:
        from ocisign.lazy_dataclass import field_names

        cls = EnvelopeContent
        names = field_names(cls)  # processed lightly: no dataclasses processing on a cold verify (~1 ms)
        # a (lightly or fully) processed record whose __init__ only fills the instance __dict__
        direct = "__slots__" not in cls.__dict__ and not hasattr(cls, "__post_init__")
        _DIRECT_FIELDS.append(frozenset(names) if direct else frozenset())
    if values.keys() == _DIRECT_FIELDS[0]:
        content: EnvelopeContent = object.__new__(EnvelopeContent)
        content.__dict__.update(values)
        return content
    return EnvelopeContent(**values)


def verified_content(
    *,
    media_type: str,
    alg: Algorithm,
    alg_label: str,
    chain_der: Sequence[bytes],
    chain_label: str,
    signed: bytes,
    signature: bytes,
    pss_salt_auto: bool,
    payload: bytes,
    fields: Mapping[str, Any],
    header: Mapping[str, Any],
    extended: Mapping[str, Any],
) -> EnvelopeContent:
    """Parse ``chain_der``, check ``alg`` against the leaf key, verify ``signature`` over ``signed``.

    ``alg_label`` names the algorithm in messages (``JWS alg ES256``), ``chain_label`` the chain
    header (``JWS header x5c``). ``fields`` holds the protected-header values (``cty``, ``scheme``,
    ``signing_time``, ``authentic_signing_time``, ``expiry``, ``plugin``, ``plugin_min``,
    ``crit``), ``header`` the unprotected ones (``agent``, ``timestamp``).
    """
    chain = [known_certificate(der) or parse_der_certificate(der, where=f"{chain_label}[{i}]")
             for i, der in enumerate(chain_der)]
    try:
        leaf_key, spec = _leaf_key(chain[0])
    except UnsupportedKeyError:  # raise it again naming the chain header
        leaf_name = chain_label.rsplit(" ", 1)[-1]
        key_spec_of(chain[0].public_key(), what=f"signing certificate ({leaf_name}[0])")
        raise
    if spec != alg.key_spec:
        raise EnvelopeError(f"{alg_label} does not match the {spec} key of the signing certificate")
    verify_checked_signature(leaf_key, alg, signed, signature, pss_salt_auto=pss_salt_auto)
    values = {
        "media_type": media_type,
        "payload": payload,
        "payload_content_type": fields["cty"],
        "signing_scheme": fields["scheme"],
        "signature_algorithm": alg.signature_algorithm,
        "certificate_chain": tuple(chain),
        "signature": signature,
        "signing_time": fields["signing_time"],
        "authentic_signing_time": fields["authentic_signing_time"],
        "expiry": fields["expiry"],
        "signing_agent": header["agent"],
        "timestamp_token": header["timestamp"],
        "verification_plugin": fields["plugin"],
        "verification_plugin_min_version": fields["plugin_min"],
        "extended_attributes": extended,
        "critical": tuple(map(str, fields["crit"])),
    }
    if _FILLED_DIRECTLY:  # these names were found to be exactly the fields (always the same literal)
        content: EnvelopeContent = object.__new__(EnvelopeContent)
        content.__dict__.update(values)
        return content
    content = new_content(**values)
    if _DIRECT_FIELDS and values.keys() == _DIRECT_FIELDS[0]:
        _FILLED_DIRECTLY.append(True)
    return content


#: non-empty once :func:`verified_content`'s names were checked against the fields (see new_content)
_FILLED_DIRECTLY: list[bool] = []
