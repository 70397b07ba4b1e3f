"""Built-in plugin ``jws``: Notary JWS envelopes (``application/jose+json``).

Flattened JWS JSON serialization with exactly ``payload``, ``protected``, ``header`` and
``signature``, byte-compatible with notation-core-go:

* ``protected``: compact JSON with sorted keys (``alg``, ``crit``, ``cty``, the
  ``io.cncf.notary.*`` headers, extended attributes), base64url without padding;
* ``payload``: the payload JSON re-encoded with sorted keys (golang-jwt re-marshals claims);
* ``header``: ``x5c`` (standard base64 *with* padding, leaf first), optional
  ``io.cncf.notary.timestampSignature`` and ``io.cncf.notary.signingAgent``;
* ``signature``: base64url of RSASSA-PSS (salt = hash length) or raw ``r||s`` ECDSA over the
  ASCII bytes of ``protected + "." + payload``.

:func:`open_envelope` is strict and fails closed: every problem raises
:class:`~ocisign.envelope.common.EnvelopeError`, never another exception type.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ocisign
from ocisign.envelope.common import (
    BY_JWS_ALG,
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
    EnvelopeError,
    b64std_decode_strict,
    b64url_decode_strict,
    b64url_encode,
    call_signer,
    format_time,
    go_json,
    key_spec_of,
    normalize_jws_payload,
    open_guarded,
    parse_der_certificate,
    parse_json_strict,
    parse_time,
    plan_seal,
    sealed_chain,
    verify_raw_signature,
)
from ocisign.errors import SigningError
from ocisign.oci.model import MT_JWS
from ocisign.types import EnvelopeContent, EnvelopeFormat

if TYPE_CHECKING:
    from ocisign.types import Signer, SignRequest

_TOP_LEVEL = ("payload", "protected", "header", "signature")
_LOWER_STANDARD = {h.lower(): h for h in STANDARD_HEADERS}


# --- seal ----------------------------------------------------------------------------------------
def seal(request: SignRequest, signer: Signer) -> bytes:
    """Sign ``request.payload`` with ``signer`` and return the JWS envelope bytes.

    The result is re-opened (parsed and verified) before it is returned.
    """
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
        protected_json = go_json(protected, sort_keys=True)
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
        return go_json(envelope, sort_keys=False)
    except (ValueError, UnicodeEncodeError) as exc:
        raise SigningError(f"cannot encode the JWS envelope: {exc}") from None


def attach_timestamp(blob: bytes, token: bytes) -> bytes:
    """Return ``blob`` (a valid JWS envelope) with ``io.cncf.notary.timestampSignature`` set to ``token``.

    The token is the DER RFC 3161 TimeStampToken over the primitive signature bytes
    (``EnvelopeContent.signature``). Only the unsigned header changes.
    """
    from cryptography.hazmat.primitives.serialization import Encoding

    if not token:
        raise SigningError("empty timestamp token")
    content = open_envelope(blob)
    obj = parse_json_strict(blob, where="JWS envelope")
    return _serialize(obj["protected"], obj["payload"], obj["signature"],
                      tuple(c.public_bytes(Encoding.DER) for c in content.certificate_chain),
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
    if set(top) != set(_TOP_LEVEL):
        extra = sorted(set(top) - set(_TOP_LEVEL))
        missing = [k for k in _TOP_LEVEL if k not in top]
        detail = "; ".join(filter(None, [
            f"missing {', '.join(missing)}" if missing else "",
            f"unexpected {', '.join(map(repr, extra))}" if extra else "",
        ]))
        raise EnvelopeError(f"JWS envelope must have exactly payload, protected, header, signature ({detail})")
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

    chain = [parse_der_certificate(der, where=f"JWS header x5c[{i}]") for i, der in enumerate(header["x5c"])]
    alg = BY_JWS_ALG[fields["alg"]]
    leaf_key = chain[0].public_key()
    spec = key_spec_of(leaf_key, what="signing certificate (x5c[0])")
    if spec != alg.key_spec:
        raise EnvelopeError(f"JWS alg {alg.jws_alg} does not match the {spec} key of the signing certificate")
    verify_raw_signature(leaf_key, alg, f"{protected_b64}.{payload_b64}".encode("ascii"), signature,
                         pss_salt_auto=True)

    extended = {k: v for k, v in protected.items() if k not in STANDARD_HEADERS}
    return EnvelopeContent(
        media_type=MT_JWS,
        payload=payload,
        payload_content_type=fields["cty"],
        signing_scheme=fields["scheme"],
        signature_algorithm=alg.signature_algorithm,
        certificate_chain=tuple(chain),
        signature=signature,
        signing_time=fields["signing_time"],
        authentic_signing_time=fields["authentic_signing_time"],
        expiry=fields["expiry"],
        signing_agent=header["agent"],
        timestamp_token=header["timestamp"],
        verification_plugin=fields["plugin"],
        verification_plugin_min_version=fields["plugin_min"],
        extended_attributes=extended,
        critical=tuple(fields["crit"]),
    )


def _header_member(header: dict[str, Any], name: str) -> Any:
    """Member ``name`` of the unprotected header, matched case-insensitively like Go's decoder."""
    matches = [k for k in header if k.lower() == name.lower()]
    if len(matches) > 1:
        raise EnvelopeError(f"JWS header has conflicting members {', '.join(sorted(matches))}")
    return header[matches[0]] if matches else None


def _parse_unprotected(header: object) -> dict[str, Any]:
    if not isinstance(header, dict):
        raise EnvelopeError("JWS header must be a JSON object")
    x5c = _header_member(header, "x5c")
    if not isinstance(x5c, list) or not x5c:
        raise EnvelopeError("JWS header x5c must be a non-empty array of certificates")
    ders = [b64std_decode_strict(c, where=f"JWS header x5c[{i}]") for i, c in enumerate(x5c)]
    for i, der in enumerate(ders):
        if not der:
            raise EnvelopeError(f"JWS header x5c[{i}] is empty")
    agent = _header_member(header, H_SIGNING_AGENT)
    if agent is not None and not isinstance(agent, str):
        raise EnvelopeError(f"JWS header {H_SIGNING_AGENT} must be a string")
    ts = _header_member(header, H_TIMESTAMP_SIGNATURE)
    token = None
    if ts is not None:
        token = b64std_decode_strict(ts, where=f"JWS header {H_TIMESTAMP_SIGNATURE}")
        if not token:
            raise EnvelopeError(f"JWS header {H_TIMESTAMP_SIGNATURE} is empty")
    return {"x5c": ders, "agent": agent, "timestamp": token}


def _parse_protected(protected: dict[str, Any]) -> dict[str, Any]:
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
    signing_time = authentic = None
    if scheme == SCHEME_X509:
        if H_AUTHENTIC_SIGNING_TIME in protected:
            raise EnvelopeError(f"{H_AUTHENTIC_SIGNING_TIME} header must not be present for {scheme}")
        if H_SIGNING_TIME not in protected:
            raise EnvelopeError(f"{H_SIGNING_TIME} header is required for {scheme}")
        signing_time = parse_time(protected[H_SIGNING_TIME], where=H_SIGNING_TIME)
        reference = signing_time
    else:
        if H_SIGNING_TIME in protected:
            raise EnvelopeError(f"{H_SIGNING_TIME} header must not be present for {scheme}")
        if H_AUTHENTIC_SIGNING_TIME not in protected:
            raise EnvelopeError(f"{H_AUTHENTIC_SIGNING_TIME} header is required for {scheme}")
        authentic = parse_time(protected[H_AUTHENTIC_SIGNING_TIME], where=H_AUTHENTIC_SIGNING_TIME)
        reference = authentic
    expiry = None
    if H_EXPIRY in protected:
        expiry = parse_time(protected[H_EXPIRY], where=H_EXPIRY)
        if expiry <= reference:
            raise EnvelopeError(f"expiry {protected[H_EXPIRY]} must be after the signing time")

    crit = protected.get("crit")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise EnvelopeError('JWS protected header "crit" must be a non-empty array of strings')
    if len(set(crit)) != len(crit):
        raise EnvelopeError('JWS protected header "crit" lists a header more than once')
    must = {H_SIGNING_SCHEME}
    if expiry is not None:
        must.add(H_EXPIRY)
    if scheme == SCHEME_SIGNING_AUTHORITY:
        must.add(H_AUTHENTIC_SIGNING_TIME)
    for name in crit:
        if name in must:
            continue
        if name in STANDARD_HEADERS or name not in protected:
            raise EnvelopeError(f'"{name}" header is marked critical but is not an extended header that is present')
    missing = sorted(must - set(crit))
    if missing:
        raise EnvelopeError(f"these required headers are not marked critical: {', '.join(missing)}")

    plugin = _optional_str(protected, H_VERIFICATION_PLUGIN)
    plugin_min = _optional_str(protected, H_VERIFICATION_PLUGIN_MIN_VERSION)
    return {"alg": alg, "cty": cty, "scheme": scheme, "signing_time": signing_time,
            "authentic_signing_time": authentic, "expiry": expiry, "crit": crit,
            "plugin": plugin, "plugin_min": plugin_min}


def _optional_str(protected: dict[str, Any], name: str) -> str | None:
    if name not in protected:
        return None
    value = protected[name]
    if not isinstance(value, str) or not value:
        raise EnvelopeError(f"{name} header must be a non-empty string", check="verificationPlugin")
    return value


# --- registration --------------------------------------------------------------------------------
@ocisign.hookimpl
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
