"""Verification with a notation verification plugin, as notation-go's ``verifier`` does it.

A signature whose protected headers name ``io.cncf.notary.verificationPlugin`` (and optionally
``…MinVersion``) needs that plugin installed, with a SemVer version at least the minimum, and
declaring ``SIGNATURE_VERIFIER.TRUSTED_IDENTITY`` and/or ``SIGNATURE_VERIFIER.REVOCATION_CHECK``
(:func:`plan_verification`). The plugin then takes over those checks: ocisign skips its own
trusted-identity match and revocation lookup, and after the other checks sends
``verify-signature`` (:func:`run_verification`) with the critical attributes, the extended
attributes to process, the chain, the statement's trusted identities and the capabilities
wanted (REVOCATION_CHECK is not asked for when the policy skips revocation). Every critical
extended attribute must come back in ``processedAttributes`` and every capability asked must
have a result; the results are applied by the caller under the policy's actions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocisign.errors import OcisignError, VerificationError
from ocisign.lazy_dataclass import dataclass

if TYPE_CHECKING:
    from ocisign.config.trustpolicy import TrustPolicyStatement
    from ocisign.extplugin import protocol as p
    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.types import EnvelopeContent

__all__ = [
    "PluginOutcome",
    "PluginPlan",
    "plan_verification",
    "plugin_attributes",
    "run_verification",
    "verify_signature_request",
]

H_VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
H_VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
_PLUGIN_HEADERS = (H_VERIFICATION_PLUGIN, H_VERIFICATION_PLUGIN_MIN_VERSION)
#: what notation sends when a signature has no expiry (Go's zero time)
ZERO_TIME = "0001-01-01T00:00:00Z"


def plugin_attributes(content: EnvelopeContent) -> tuple[str | None, str | None]:
    """(plugin name, minimum version) named by the signature, or (None, None)."""
    name = content.verification_plugin
    if name is None and H_VERIFICATION_PLUGIN in content.extended_attributes:
        name = str(content.extended_attributes[H_VERIFICATION_PLUGIN])
    min_version = content.verification_plugin_min_version
    if min_version is None and H_VERIFICATION_PLUGIN_MIN_VERSION in content.extended_attributes:
        min_version = str(content.extended_attributes[H_VERIFICATION_PLUGIN_MIN_VERSION])
    return name, min_version


def extended_attributes(content: EnvelopeContent) -> dict[str, Any]:
    """Non-plugin extended attributes (critical or not), JSON-able."""
    return {k: _jsonable(v) for k, v in content.extended_attributes.items() if k not in _PLUGIN_HEADERS}


def critical_extended(content: EnvelopeContent) -> list[str]:
    """Non-plugin extended attributes listed in ``crit``: the plugin must process each."""
    return [n for n in content.critical if n in content.extended_attributes and n not in _PLUGIN_HEADERS]


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, (bytes, bytearray)):
            return base64.b64encode(bytes(value)).decode("ascii")
        return str(value)


@dataclass(frozen=True)
class PluginPlan:
    """The located plugin and the verifier capabilities it takes over."""

    plugin: ExternalPlugin
    name: str
    version: str
    capabilities: tuple[str, ...]

    def takes(self, capability: str) -> bool:
        """True when the plugin verifies ``capability`` instead of ocisign."""
        return capability in self.capabilities


def plan_verification(content: EnvelopeContent, lookup: Any, plugin_config: Mapping[str, str] | None
                      ) -> PluginPlan | None:
    """Locate the verification plugin the signature names; None when it names none.

    Raises VerificationError (notation's wording) when the plugin is missing, too old, not
    SemVer, or declares no verifier capability.
    """
    name, min_version = plugin_attributes(content)
    if name is None:
        return None
    from ocisign.extplugin import protocol as p  # imported only for a signature that names a plugin

    if min_version is not None and not p.is_semver(min_version):
        raise VerificationError(f"error while getting plugin minimum version: {min_version!r} is not a "
                                "valid semantic version")
    if lookup is None:
        raise VerificationError(f"the signature requires verification plugin {name!r} but no plugin can be run here")
    try:
        plugin = lookup(name)
        metadata = plugin.metadata(plugin_config)
    except OcisignError as exc:
        raise VerificationError(f"error while locating the verification plugin {name!r}, make sure the plugin is "
                                f"installed successfully before verifying the signature. error: {exc}") from None
    if not p.is_semver(metadata.version):
        raise VerificationError(f"plugin {name} has pluginVersion {metadata.version} which is not in valid "
                                "semver format")
    if min_version is not None and p.compare_semver(metadata.version, min_version) < 0:
        raise VerificationError(f"found plugin {name} with version {metadata.version} but signature verification "
                                f"needs plugin version greater than or equal to {min_version}")
    caps = tuple(c for c in metadata.capabilities if c in p.VERIFIER_CAPABILITIES)
    if not caps:
        raise VerificationError(f"digital signature requires plugin {name!r} with signature verification "
                                f"capabilities ({p.CAP_TRUSTED_IDENTITY!r} and/or {p.CAP_REVOCATION!r}) installed")
    return PluginPlan(plugin=plugin, name=name, version=metadata.version, capabilities=caps)


def verify_signature_request(content: EnvelopeContent, statement: TrustPolicyStatement,
                             capabilities: Sequence[str], plugin_config: Mapping[str, str] | None) -> dict[str, Any]:
    """The ``verify-signature`` request notation sends (expiry always present, zero time when none)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from ocisign.envelope.times import format_time
    from ocisign.extplugin import protocol as p

    extended = extended_attributes(content)
    critical: dict[str, Any] = {
        "contentType": content.payload_content_type,
        "signingScheme": content.signing_scheme,
        "expiry": format_time(content.expiry) if content.expiry else ZERO_TIME,
    }
    if content.authentic_signing_time is not None and content.signing_scheme == "notary.x509.signingAuthority":
        critical["authenticSigningTime"] = format_time(content.authentic_signing_time)
    if extended:
        critical["extendedAttributes"] = extended
    return {
        "contractVersion": p.CONTRACT_VERSION,
        "signature": {
            "criticalAttributes": critical,
            "unprocessedAttributes": list(extended),
            "certificateChain": [p.b64(c.public_bytes(Encoding.DER)) for c in content.certificate_chain],
        },
        "trustPolicy": {"trustedIdentities": list(statement.trusted_identities),
                        "signatureVerification": list(capabilities)},
        **p.plugin_config_json(plugin_config),
    }


@dataclass(frozen=True)
class PluginOutcome:
    """The plugin's results for the capabilities asked (None: not asked)."""

    trusted_identity: p.VerificationResult | None
    revocation: p.VerificationResult | None
    processed: tuple[str, ...]


def unprocessed_critical(content: EnvelopeContent, processed: Sequence[str]) -> list[str]:
    """Critical extended attributes the plugin did not list as processed."""
    return [n for n in critical_extended(content) if n not in processed]


def run_verification(plan: PluginPlan, content: EnvelopeContent, statement: TrustPolicyStatement,
                     capabilities: Sequence[str], plugin_config: Mapping[str, str] | None) -> PluginOutcome:
    """Send ``verify-signature``; VerificationError when an attribute or a result is missing."""
    from ocisign.extplugin import protocol as p

    request = verify_signature_request(content, statement, capabilities, plugin_config)
    try:
        response = plan.plugin.verify_signature(request)
    except OcisignError as exc:
        raise VerificationError(str(exc)) from None
    for attr in unprocessed_critical(content, response.processed_attributes):
        raise VerificationError(f"extended critical attribute {attr!r} was not processed by the verification plugin "
                                f"{plan.name!r} (all extended critical attributes must be processed by the "
                                "verification plugin)")
    for cap in capabilities:
        if cap not in response.results:
            raise VerificationError(f"verification plugin {plan.name!r} failed to verify {cap!r} (no result)")
    return PluginOutcome(
        trusted_identity=response.results.get(p.CAP_TRUSTED_IDENTITY) if p.CAP_TRUSTED_IDENTITY in capabilities
        else None,
        revocation=response.results.get(p.CAP_REVOCATION) if p.CAP_REVOCATION in capabilities else None,
        processed=response.processed_attributes,
    )
