"""Built-in plugin ``jws``: Notary JWS envelopes (``application/jose+json``).

Flattened JWS JSON serialization with ``payload``, ``protected``, ``header`` and ``signature``
(other top-level members are ignored when reading, RFC 7515 §7.2.1), byte-compatible with
notation-core-go:

* ``protected``: compact JSON with sorted keys (``alg``, ``crit``, ``cty``, the
  ``io.cncf.notary.*`` headers, extended attributes), base64url without padding;
* ``payload``: the payload JSON re-encoded with sorted keys (golang-jwt re-marshals claims);
* ``header``: ``x5c`` (standard base64 *with* padding, leaf first), optional
  ``io.cncf.notary.timestampSignature`` and ``io.cncf.notary.signingAgent``;
* ``signature``: base64url of RSASSA-PSS (salt = hash length) or raw ``r||s`` ECDSA over the
  ASCII bytes of ``protected + "." + payload``.

:func:`open_envelope` is strict and fails closed: every problem raises
:class:`~ocisign.envelope.errors.EnvelopeError`, never another exception type.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ocisign.envelope.algorithms import BY_JWS_ALG
from ocisign.envelope.content import (
    check_required_critical,
    optional_string,
    required_critical_set,
    scheme_times,
    verified_content,
)
from ocisign.envelope.encoding import b64std_decode_strict, b64url_decode_strict, b64url_encode, parse_json_strict
from ocisign.envelope.errors import EnvelopeError
from ocisign.envelope.guard import open_guarded
from ocisign.envelope.headers import (
    H_AUTHENTIC_SIGNING_TIME,
    H_EXPIRY,
    H_SIGNING_AGENT,
    H_SIGNING_SCHEME,
    H_SIGNING_TIME,
    H_TIMESTAMP_SIGNATURE,
    H_VERIFICATION_PLUGIN,
    H_VERIFICATION_PLUGIN_MIN_VERSION,
    PAYLOAD_CONTENT_TYPE,
    SCHEME_SIGNING_AUTHORITY,
    SCHEME_X509,
    STANDARD_HEADERS,
)
from ocisign.envelope.times import format_time, parse_time
from ocisign.errors import SigningError
from ocisign.goformat import go_marshal
from ocisign.lazy_plugins import hookimpl
from ocisign.oci.model import MT_JWS
from ocisign.types import EnvelopeContent, EnvelopeFormat

if TYPE_CHECKING:
    from ocisign.types import Signer, SignRequest

_TOP_LEVEL = ("payload", "protected", "header", "signature")
_TOP_LEVEL_SET = frozenset(_TOP_LEVEL)
_LOWER_STANDARD = {h.lower(): h for h in STANDARD_HEADERS}
#: the unprotected header members notation reads (matched case-insensitively, as Go's decoder does)
_UNPROTECTED_NAMES = frozenset({"x5c", H_SIGNING_AGENT, H_TIMESTAMP_SIGNATURE})


# --- seal ----------------------------------------------------------------------------------------
def seal(request: SignRequest, signer: Signer) -> bytes:
    """Sign ``request.payload`` with ``signer`` and return the JWS envelope bytes.

    The result is re-opened (parsed and verified) before it is returned.
    """
    from ocisign.envelope.payload import normalize_jws_payload
    from ocisign.envelope.sealing import call_signer, plan_seal, sealed_chain  # signing only: not on verify's path

    plan = plan_seal(request, signer)
    payload = normalize_jws_payload(request.payload)
    protected: dict[str, Any] = dict(plan.extended)
    protected.update({"alg": plan.alg.jws_alg, "cty": PAYLOAD_CONTENT_TYPE, H_SIGNING_SCHEME: plan.scheme})
    crit = [H_SIGNING_SCHEME, *plan.critical_extended]
    if plan.scheme == SCHEME_X509:
        protected[H_SIGNING_TIME] = format_time(plan.signing_time)
    else:
        protected[H_AUTHENTIC_SIGNING_TIME] = format_time(plan.signing_time)
        crit.append(H_AUTHENTIC_SIGNING_TIME)
    if plan.expiry is not None:
        protected[H_EXPIRY] = format_time(plan.expiry)
        crit.append(H_EXPIRY)
    protected["crit"] = crit
    try:
        protected_json = go_marshal(protected, sort_keys=True)
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise SigningError(f"cannot encode the JWS protected header: {exc}") from None
    protected_b64 = b64url_encode(protected_json)
    payload_b64 = b64url_encode(payload)
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    signature = call_signer(signer, signing_input)
    blob = _serialize(protected_b64, payload_b64, b64url_encode(signature), sealed_chain(plan, signer),
                      plan.signing_agent, None)
    try:
        open_envelope(blob)
    except EnvelopeError as exc:
        raise SigningError(f"the signer produced an envelope that does not verify: {exc}") from None
    return blob


def _serialize(protected_b64: str, payload_b64: str, signature_b64: str, chain_der: tuple[bytes, ...],
               signing_agent: str, timestamp_token: bytes | None) -> bytes:
    """The envelope JSON in notation's member order (Go struct order)."""
    header: dict[str, Any] = {}
    if timestamp_token:
        header[H_TIMESTAMP_SIGNATURE] = base64.b64encode(timestamp_token).decode("ascii")
    header["x5c"] = [base64.b64encode(c).decode("ascii") for c in chain_der]
    if signing_agent:
        header[H_SIGNING_AGENT] = signing_agent
    envelope = {"payload": payload_b64, "protected": protected_b64, "header": header,
                "signature": signature_b64}
    try:
        return go_marshal(envelope, sort_keys=False)
    except (ValueError, UnicodeEncodeError) as exc:
        raise SigningError(f"cannot encode the JWS envelope: {exc}") from None


def attach_timestamp(blob: bytes, token: bytes) -> bytes:
    """Return ``blob`` (a valid JWS envelope) with ``io.cncf.notary.timestampSignature`` set to ``token``.

    The token is the DER RFC 3161 TimeStampToken over the primitive signature bytes
    (``EnvelopeContent.signature``). Only the unsigned header changes.
    """
    from ocisign.x509.encoding import certificate_der

    if not token:
        raise SigningError("empty timestamp token")
    content = open_envelope(blob)
    obj = parse_json_strict(blob, where="JWS envelope")
    return _serialize(obj["protected"], obj["payload"], obj["signature"],
                      tuple(certificate_der(c) for c in content.certificate_chain),
                      content.signing_agent or "", token)


# --- open ----------------------------------------------------------------------------------------
def open_envelope(blob: bytes) -> EnvelopeContent:
    """Parse and verify a JWS envelope; any problem raises EnvelopeError (check ``integrity``)."""
    content: EnvelopeContent = open_guarded("JWS", _open, blob)
    return content


def _open(blob: bytes) -> EnvelopeContent:
    top = parse_json_strict(blob, where="JWS envelope")
    if not isinstance(top, dict):
        raise EnvelopeError("JWS envelope must be a JSON object")
    _check_top_level(top)
    protected_b64, payload_b64, signature_b64 = top["protected"], top["payload"], top["signature"]
    protected_raw = b64url_decode_strict(protected_b64, where="JWS protected header")
    payload = b64url_decode_strict(payload_b64, where="JWS payload")
    signature = b64url_decode_strict(signature_b64, where="JWS signature")
    if not payload:
        raise EnvelopeError("JWS payload is empty")
    if not signature:
        raise EnvelopeError("JWS signature is empty")

    header = _parse_unprotected(top["header"])
    protected = parse_json_strict(protected_raw, where="JWS protected header")
    if not isinstance(protected, dict):
        raise EnvelopeError("JWS protected header must be a JSON object")
    fields = _parse_protected(protected)

    alg = BY_JWS_ALG[fields["alg"]]
    extended = {} if protected.keys() <= STANDARD_HEADERS else \
        {k: v for k, v in protected.items() if k not in STANDARD_HEADERS}
    return verified_content(
        media_type=MT_JWS, alg=alg, alg_label=f"JWS alg {alg.jws_alg}", chain_der=header["x5c"],
        chain_label="JWS header x5c", signed=f"{protected_b64}.{payload_b64}".encode("ascii"),
        signature=signature, pss_salt_auto=True, payload=payload, fields=fields, header=header,
        extended=extended,
    )


def _check_top_level(top: dict[str, Any]) -> None:
    """The four flattened-syntax members must be present; other members are ignored (RFC 7515 §7.2.1).

    Refused although not understood: ``signatures`` (RFC 7515 §7.2.2: MUST NOT be present in the
    flattened syntax; a general-syntax reader would see other signatures) and a member that differs
    from one of the four only in case (Go's decoder, as notation uses it, would read it in place of
    ours: a parser differential).
    """
    if top.keys() == _TOP_LEVEL_SET:  # exactly the four members, as notation writes them
        return
    missing = [k for k in _TOP_LEVEL if k not in top]
    if missing:
        raise EnvelopeError(f"JWS envelope is missing {', '.join(missing)} "
                            "(flattened JSON serialization: payload, protected, header, signature)")
    for key in top:
        if key in _TOP_LEVEL:
            continue
        if key == "signatures":
            raise EnvelopeError('JWS envelope has "signatures": the flattened JSON serialization must not '
                                "(RFC 7515 section 7.2.2); only single-signature envelopes are supported")
        twin = next((k for k in _TOP_LEVEL if k.casefold() == key.casefold()), None)
        if twin is not None:  # casefold: Go's EqualFold also folds U+017F (long s) to "s"
            raise EnvelopeError(f"JWS envelope member {key!r} differs from {twin!r} only in case")


def _header_member(header: dict[str, Any], name: str, names: dict[str, list[str]]) -> Any:
    """Member ``name`` of the unprotected header, matched case-insensitively like Go's decoder.

    ``names`` maps each lowercased member name to the members spelled that way (in header order).
    """
    matches = names.get(name.lower(), ())
    if len(matches) > 1:
        raise EnvelopeError(f"JWS header has conflicting members {', '.join(sorted(matches))}")
    return header[matches[0]] if matches else None


#: x5c entries already decoded in this process, by their exact (canonical) base64 text: a stream of
#: signatures by one signer repeats its chain, and the same DER object is then found again by the
#: certificate cache without hashing it anew
_X5C_DER: dict[str, bytes] = {}
_X5C_DER_LIMIT = 1024


def _x5c_der(text: object, i: int) -> bytes:
    der = _X5C_DER.get(text) if type(text) is str else None
    if der is None:
        der = b64std_decode_strict(text, where=f"JWS header x5c[{i}]")
        if type(text) is str:
            if len(_X5C_DER) >= _X5C_DER_LIMIT:
                _X5C_DER.clear()
            _X5C_DER[text] = der
    return der


def _parse_unprotected(header: object) -> dict[str, Any]:
    if not isinstance(header, dict):
        raise EnvelopeError("JWS header must be a JSON object")
    if header.keys() <= _UNPROTECTED_NAMES:  # only the exact names: no member can match another's in any case
        x5c, agent, ts = header.get("x5c"), header.get(H_SIGNING_AGENT), header.get(H_TIMESTAMP_SIGNATURE)
    else:
        names: dict[str, list[str]] = {}
        for key in header:
            names.setdefault(key.lower(), []).append(key)
        x5c = _header_member(header, "x5c", names)
        agent = _header_member(header, H_SIGNING_AGENT, names)
        ts = _header_member(header, H_TIMESTAMP_SIGNATURE, names)
    if not isinstance(x5c, list) or not x5c:
        raise EnvelopeError("JWS header x5c must be a non-empty array of certificates")
    ders = [_x5c_der(c, i) for i, c in enumerate(x5c)]
    for i, der in enumerate(ders):
        if not der:
            raise EnvelopeError(f"JWS header x5c[{i}] is empty")
    if agent is not None and not isinstance(agent, str):
        raise EnvelopeError(f"JWS header {H_SIGNING_AGENT} must be a string")
    token = None
    if ts is not None:
        token = b64std_decode_strict(ts, where=f"JWS header {H_TIMESTAMP_SIGNATURE}")
        if not token:
            raise EnvelopeError(f"JWS header {H_TIMESTAMP_SIGNATURE} is empty")
    return {"x5c": ders, "agent": agent, "timestamp": token}


def _parse_protected(protected: dict[str, Any]) -> dict[str, Any]:
    if not protected.keys() <= STANDARD_HEADERS:  # only standard names: none can be a miscased one
        for key in protected:
            std = _LOWER_STANDARD.get(key.lower())
            if std is not None and std != key:
                raise EnvelopeError(f"JWS protected header has {key!r}; the header name is {std!r}")
    alg = protected.get("alg")
    if not isinstance(alg, str) or alg not in BY_JWS_ALG:
        raise EnvelopeError(f"JWS protected header alg {alg!r} is not supported "
                            f"(one of {', '.join(BY_JWS_ALG)})")
    cty = protected.get("cty")
    if cty != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"JWS payload content type {cty!r} is not supported "
                            f"(want {PAYLOAD_CONTENT_TYPE!r})")
    scheme = protected.get(H_SIGNING_SCHEME)
    if scheme not in (SCHEME_X509, SCHEME_SIGNING_AUTHORITY):
        raise EnvelopeError(f"JWS protected header {H_SIGNING_SCHEME} {scheme!r} is not supported")
    signing_time, authentic, expiry = scheme_times(
        protected, scheme, lambda name: parse_time(protected[name], where=name),
        expiry_message=lambda: f"expiry {protected[H_EXPIRY]} must be after the signing time",
    )

    crit = protected.get("crit")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise EnvelopeError('JWS protected header "crit" must be a non-empty array of strings')
    if len(set(crit)) != len(crit):
        raise EnvelopeError('JWS protected header "crit" lists a header more than once')
    must = required_critical_set(scheme, expiry)
    for name in crit:
        if name in must:
            continue
        if name in STANDARD_HEADERS or name not in protected:
            raise EnvelopeError(f'"{name}" header is marked critical but is not an extended header that is present')
    if not must.issubset(crit):
        check_required_critical(crit, scheme, expiry)

    plugin = optional_string(protected, H_VERIFICATION_PLUGIN)
    plugin_min = optional_string(protected, H_VERIFICATION_PLUGIN_MIN_VERSION)
    return {"alg": alg, "cty": cty, "scheme": scheme, "signing_time": signing_time,
            "authentic_signing_time": authentic, "expiry": expiry, "crit": crit,
            "plugin": plugin, "plugin_min": plugin_min}


# --- registration --------------------------------------------------------------------------------
@hookimpl
def ocisign_envelope_formats() -> Iterator[EnvelopeFormat]:
    """The JWS envelope format."""
    yield EnvelopeFormat(
        name="jws",
        media_type=MT_JWS,
        seal=seal,
        open=open_envelope,
        attach_timestamp=attach_timestamp,
        description="JSON Web Signature (flattened JSON), Notary Project JWS envelope",
    )
