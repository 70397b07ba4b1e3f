"""The plugin protocol's vocabulary and its response records, validated as notation-go validates them.

Requests are plain JSON objects built by the ``*_request`` helpers; responses are parsed by the
``parse_*`` functions into frozen records. Every problem raises PluginError with one line that
names the plugin and the command (``plugin "kms" describe-key: …``). ``[]byte`` fields are
standard base64 with padding (Go's JSON encoding of byte slices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ocisign.errors import OcisignError, PluginError
from ocisign.lazy_dataclass import dataclass

__all__ = [
    "CAP_ENVELOPE",
    "CAP_RAW",
    "CAP_REVOCATION",
    "CAP_TRUSTED_IDENTITY",
    "CONTRACT_VERSION",
    "ERROR_CODES",
    "GENERATOR_CAPABILITIES",
    "PLUGIN_NAME_RE",
    "VERIFIER_CAPABILITIES",
    "DescribeKeyResponse",
    "GenerateEnvelopeResponse",
    "GenerateSignatureResponse",
    "PluginMetadata",
    "VerificationResult",
    "VerifySignatureResponse",
    "b64",
    "compare_semver",
    "is_semver",
    "parse_describe_key",
    "parse_generate_envelope",
    "parse_generate_signature",
    "parse_metadata",
    "parse_verify_signature",
]

CONTRACT_VERSION = "1.0"

CMD_METADATA = "get-plugin-metadata"
CMD_DESCRIBE_KEY = "describe-key"
CMD_GENERATE_SIGNATURE = "generate-signature"
CMD_GENERATE_ENVELOPE = "generate-envelope"
CMD_VERIFY_SIGNATURE = "verify-signature"

CAP_RAW = "SIGNATURE_GENERATOR.RAW"
CAP_ENVELOPE = "SIGNATURE_GENERATOR.ENVELOPE"
CAP_TRUSTED_IDENTITY = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY"
CAP_REVOCATION = "SIGNATURE_VERIFIER.REVOCATION_CHECK"
GENERATOR_CAPABILITIES = (CAP_RAW, CAP_ENVELOPE)
VERIFIER_CAPABILITIES = (CAP_TRUSTED_IDENTITY, CAP_REVOCATION)

#: the ``errorCode`` values of an error response
ERROR_CODES = ("VALIDATION_ERROR", "UNSUPPORTED_CONTRACT_VERSION", "ACCESS_DENIED", "TIMEOUT", "THROTTLED", "ERROR")

#: plugin names (directory and ``notation-<name>``): notation-go's ``file.IsValidFileName``
PLUGIN_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]+$")

#: Semantic Versioning 2.0.0 (with an optional leading ``v``, as notation-go's semver accepts)
_SEMVER_RE = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
)


def is_semver(text: str) -> bool:
    """True for a SemVer 2.0.0 version (``1.2.3``, ``1.0.0-rc.1+build``; a leading ``v`` allowed)."""
    return bool(_SEMVER_RE.match(text))


def compare_semver(a: str, b: str) -> int:
    """-1, 0 or 1 as SemVer precedence orders ``a`` and ``b`` (both must be valid; build metadata ignored)."""
    ma, mb = _SEMVER_RE.match(a), _SEMVER_RE.match(b)
    if not ma or not mb:
        raise ValueError(f"not a semantic version: {a if not ma else b!r}")
    core_a = tuple(int(ma.group(i)) for i in (1, 2, 3))
    core_b = tuple(int(mb.group(i)) for i in (1, 2, 3))
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    pa, pb = ma.group(4), mb.group(4)
    if pa == pb:
        return 0
    if pa is None:
        return 1
    if pb is None:
        return -1
    for x, y in zip(pa.split("."), pb.split("."), strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return (len(pa.split(".")) > len(pb.split("."))) - (len(pa.split(".")) < len(pb.split(".")))


def b64(data: bytes) -> str:
    """Standard base64 with padding (a Go ``[]byte`` in JSON)."""
    import base64

    return base64.b64encode(data).decode("ascii")


class _Response:
    """Field access on a response object with one-line errors naming plugin and command."""

    def __init__(self, obj: Mapping[str, Any], plugin: str, command: str) -> None:
        self.obj = obj
        self.where = f"plugin {plugin!r} {command}"

    def fail(self, message: str) -> PluginError:
        return PluginError(f"{self.where}: invalid response: {message}")

    def string(self, key: str, *, required: bool = True) -> str:
        value = self.obj.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.fail(f"{key!r} must be a non-empty string")
        return value

    def strings(self, key: str, *, required: bool = True) -> list[str]:
        value = self.obj.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{key!r} must be an array of strings")
        if required and not value:
            raise self.fail(f"{key!r} must not be empty")
        return list(value)

    def string_map(self, key: str) -> dict[str, str]:
        value = self.obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise self.fail(f"{key!r} must map strings to strings")
        return dict(value)

    def blob(self, key: str) -> bytes:
        from ocisign.envelope.encoding import b64std_decode_strict

        try:
            raw = b64std_decode_strict(self.obj.get(key), where=key)
        except OcisignError as exc:
            raise self.fail(str(exc)) from None
        if not raw:
            raise self.fail(f"{key!r} is empty")
        return raw


# --- get-plugin-metadata ------------------------------------------------------------------------
@dataclass(frozen=True)
class PluginMetadata:
    """``get-plugin-metadata`` response."""

    name: str
    description: str
    version: str
    url: str
    supported_contract_versions: tuple[str, ...]
    capabilities: tuple[str, ...]

    def has(self, capability: str) -> bool:
        """True when the plugin declares ``capability``."""
        return capability in self.capabilities

    def to_json(self) -> dict[str, Any]:
        """The response object (``plugin list -o json``)."""
        return {"name": self.name, "description": self.description, "version": self.version, "url": self.url,
                "supportedContractVersions": list(self.supported_contract_versions),
                "capabilities": list(self.capabilities)}


def parse_metadata(obj: Mapping[str, Any], *, plugin: str) -> PluginMetadata:
    """Validate metadata as notation-go does: every field non-empty, contract ``1.0`` supported,
    ``name`` equal to the plugin's directory name."""
    r = _Response(obj, plugin, CMD_METADATA)
    md = PluginMetadata(
        name=r.string("name"), description=r.string("description"), version=r.string("version"),
        url=r.string("url"), supported_contract_versions=tuple(r.strings("supportedContractVersions")),
        capabilities=tuple(r.strings("capabilities")),
    )
    if CONTRACT_VERSION not in md.supported_contract_versions:
        raise PluginError(f"plugin {plugin!r}: contract version {CONTRACT_VERSION!r} is not in the list of the "
                          f"plugin supported versions {list(md.supported_contract_versions)}")
    if md.name != plugin:
        raise PluginError(f"plugin {plugin!r}: executable name must be 'notation-{md.name}' instead of "
                          f"'notation-{plugin}' (get-plugin-metadata names the plugin {md.name!r})")
    return md


# --- describe-key / generate-signature ----------------------------------------------------------
@dataclass(frozen=True)
class DescribeKeyResponse:
    """``describe-key`` response."""

    key_id: str
    key_spec: str


def parse_describe_key(obj: Mapping[str, Any], *, plugin: str, key_id: str) -> DescribeKeyResponse:
    """keyId must echo the request; keySpec must be one of the six Notary key specs."""
    from ocisign.envelope.algorithms import KEY_SPECS

    r = _Response(obj, plugin, CMD_DESCRIBE_KEY)
    got_id, spec = r.string("keyId"), r.string("keySpec")
    if got_id != key_id:
        raise r.fail(f"keyId {got_id!r} does not match the requested key {key_id!r}")
    if spec not in KEY_SPECS:
        raise r.fail(f"keySpec {spec!r} is not supported (want one of {', '.join(KEY_SPECS)})")
    return DescribeKeyResponse(key_id=got_id, key_spec=spec)


@dataclass(frozen=True)
class GenerateSignatureResponse:
    """``generate-signature`` response (chain as DER, leaf first)."""

    key_id: str
    signature: bytes
    signing_algorithm: str
    certificate_chain: tuple[bytes, ...]


def parse_generate_signature(obj: Mapping[str, Any], *, plugin: str, key_id: str,
                             signing_algorithm: str) -> GenerateSignatureResponse:
    """keyId echoes, the algorithm is the key spec's, signature and chain decode."""
    r = _Response(obj, plugin, CMD_GENERATE_SIGNATURE)
    got_id, alg = r.string("keyId"), r.string("signingAlgorithm")
    if got_id != key_id:
        raise r.fail(f"keyId {got_id!r} does not match the requested key {key_id!r}")
    if alg != signing_algorithm:
        raise r.fail(f"signingAlgorithm {alg!r} does not match the key spec's {signing_algorithm!r}")
    signature = r.blob("signature")
    chain_raw = obj.get("certificateChain")
    if not isinstance(chain_raw, list) or not chain_raw:
        raise r.fail("'certificateChain' must be a non-empty array of base64 certificates")
    chain = tuple(_Response({"c": c}, plugin, CMD_GENERATE_SIGNATURE).blob("c") for c in chain_raw)
    return GenerateSignatureResponse(key_id=got_id, signature=signature, signing_algorithm=alg,
                                     certificate_chain=chain)


# --- generate-envelope --------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateEnvelopeResponse:
    """``generate-envelope`` response."""

    envelope: bytes
    envelope_type: str
    annotations: Mapping[str, str]


def parse_generate_envelope(obj: Mapping[str, Any], *, plugin: str, envelope_type: str) -> GenerateEnvelopeResponse:
    """The envelope decodes and its type echoes the request."""
    r = _Response(obj, plugin, CMD_GENERATE_ENVELOPE)
    got_type = r.string("signatureEnvelopeType")
    if got_type != envelope_type:
        raise r.fail(f"signatureEnvelopeType {got_type!r} does not match the requested {envelope_type!r}")
    return GenerateEnvelopeResponse(envelope=r.blob("signatureEnvelope"), envelope_type=got_type,
                                    annotations=r.string_map("annotations"))


# --- verify-signature ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VerificationResult:
    """One capability's result."""

    success: bool
    reason: str = ""


@dataclass(frozen=True)
class VerifySignatureResponse:
    """``verify-signature`` response."""

    results: Mapping[str, VerificationResult]
    processed_attributes: tuple[str, ...]


def parse_verify_signature(obj: Mapping[str, Any], *, plugin: str) -> VerifySignatureResponse:
    """``verificationResults`` maps capabilities to ``{"success": bool, "reason"?: str}``."""
    r = _Response(obj, plugin, CMD_VERIFY_SIGNATURE)
    raw = obj.get("verificationResults")
    if not isinstance(raw, dict):
        raise r.fail("'verificationResults' must be an object")
    results: dict[str, VerificationResult] = {}
    for cap, res in raw.items():
        if not isinstance(res, dict) or not isinstance(res.get("success"), bool):
            raise r.fail(f"verificationResults[{cap!r}] must be an object with a boolean 'success'")
        reason = res.get("reason", "")
        if not isinstance(reason, str):
            raise r.fail(f"verificationResults[{cap!r}].reason must be a string")
        results[cap] = VerificationResult(success=res["success"], reason=reason)
    return VerifySignatureResponse(results=results,
                                   processed_attributes=tuple(r.strings("processedAttributes", required=False)))


def plugin_config_json(config: Mapping[str, str] | None) -> dict[str, Any]:
    """``{"pluginConfig": …}`` when there is configuration (notation omits an empty one)."""
    return {"pluginConfig": dict(config)} if config else {}


def certificate_chain_b64(chain: Sequence[bytes]) -> list[str]:
    """DER certificates as the base64 strings of a request."""
    return [b64(c) for c in chain]
