"""Signers backed by external plugins: ``SIGNATURE_GENERATOR.RAW`` and ``SIGNATURE_GENERATOR.ENVELOPE``.

RAW (preferred when a plugin declares both, as notation does): ``describe-key`` gives the key
spec; ocisign builds the envelope and sends its signing input (the JWS ``protected.payload``
ASCII, or the COSE ``Sig_structure``) to ``generate-signature``; the returned signature must
verify with the returned leaf certificate over exactly those bytes. The chain is known only
after signing (``chain_after_signing``), so :func:`ocisign.sign.signing.sign_artifact` validates
it then.

ENVELOPE: ``generate-envelope`` returns a whole envelope. It must be of the requested type,
open and verify with its leaf key (algorithm allowed and matching the key), carry the notary
payload type, and keep the ``targetArtifact`` (mediaType, digest, size equal; every original
annotation kept; no unknown descriptor fields). Its annotations go on the signature manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ocisign.errors import OcisignError, PluginError, SigningError
from ocisign.extplugin import protocol as p

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.types import EnvelopeFormat, GeneratedEnvelope, KeySpec, SignRequest

__all__ = ["PluginEnvelopeSigner", "PluginRawSigner", "create_plugin_signer"]

#: descriptor fields a generate-envelope plugin may leave in targetArtifact (notation-go's list)
_ALLOWED_DESCRIPTOR_KEYS = frozenset(
    {"mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"}
)
#: manifest annotations ocisign sets itself; a plugin cannot replace them
_RESERVED_ANNOTATIONS = ("io.cncf.notary.x509chain.thumbprint#S256", "org.opencontainers.image.created")


class _PluginSignerBase:
    """What both kinds share: the plugin, the key id, the configuration and the agent suffix."""

    def __init__(self, plugin: ExternalPlugin, key_id: str, plugin_config: Mapping[str, str] | None,
                 metadata: p.PluginMetadata) -> None:
        self.plugin = plugin
        self.key_id = key_id
        self.plugin_config = dict(plugin_config or {})
        self.metadata = metadata
        #: appended to ocisign's signing agent, as notation appends ``<plugin>/<version>``
        self.signing_agent_suffix = f"{metadata.name}/{metadata.version}"
        self.chain_after_signing = True
        self._chain: tuple[x509.Certificate, ...] | None = None

    def certificate_chain(self) -> Sequence[x509.Certificate]:
        """The chain the plugin returned with its signature (leaf first)."""
        if self._chain is None:
            raise SigningError(f"plugin {self.plugin.name!r}: the certificate chain is only known after signing")
        return self._chain

    def _where(self, command: str) -> str:
        return f"plugin {self.plugin.name!r} {command}"


class PluginRawSigner(_PluginSignerBase):
    """A Signer whose ``sign`` is the plugin's ``generate-signature``."""

    def __init__(self, plugin: ExternalPlugin, key_id: str, plugin_config: Mapping[str, str] | None,
                 metadata: p.PluginMetadata) -> None:
        super().__init__(plugin, key_id, plugin_config, metadata)
        self._spec: KeySpec | None = None

    @property
    def key_spec(self) -> KeySpec:
        """From ``describe-key`` (asked once)."""
        if self._spec is None:
            spec = self.plugin.describe_key(self.key_id, self.plugin_config).key_spec
            self._spec = spec  # type: ignore[assignment]  # validated against KEY_SPECS
        assert self._spec is not None
        return self._spec

    def sign(self, data: bytes) -> bytes:
        """``generate-signature`` over ``data``; the signature must verify with the returned leaf."""
        from ocisign.envelope.algorithms import algorithm_for, key_spec_of, verify_raw_signature
        from ocisign.envelope.certificates import parse_der_certificate

        spec = self.key_spec
        resp = self.plugin.generate_signature(self.key_id, spec, data, self.plugin_config)
        where = self._where(p.CMD_GENERATE_SIGNATURE)
        try:
            chain = tuple(parse_der_certificate(der, where=f"certificateChain[{i}]")
                          for i, der in enumerate(resp.certificate_chain))
            leaf_spec = key_spec_of(chain[0].public_key(), what="leaf certificate")
        except OcisignError as exc:
            raise PluginError(f"{where}: invalid response: {exc}") from None
        if leaf_spec != spec:
            raise PluginError(f"{where}: the leaf certificate has a {leaf_spec} key but describe-key said {spec}")
        try:
            verify_raw_signature(chain[0].public_key(), algorithm_for(spec), data, resp.signature, pss_salt_auto=True)
        except OcisignError:
            raise PluginError(f"{where}: the returned signature does not verify with the leaf certificate's key "
                              "over the signing input (signed other bytes, or with another key)") from None
        self._chain = chain
        return resp.signature


class PluginEnvelopeSigner(_PluginSignerBase):
    """A signer whose plugin returns whole envelopes (``generate_envelope``); it has no ``sign``."""

    @property
    def key_spec(self) -> KeySpec:
        """The leaf key's spec, once an envelope was generated."""
        from ocisign.envelope.algorithms import key_spec_of

        return key_spec_of(self.certificate_chain()[0].public_key(), what="leaf certificate")

    def sign(self, data: bytes) -> bytes:
        """Not available: an envelope generator signs whole envelopes."""
        raise SigningError(f"plugin {self.plugin.name!r} generates whole envelopes, not raw signatures")

    def generate_envelope(self, request: SignRequest, fmt: EnvelopeFormat) -> GeneratedEnvelope:
        """``generate-envelope`` for ``request.payload`` as ``fmt``, checked (see the module docstring)."""
        from ocisign.envelope.headers import PAYLOAD_CONTENT_TYPE
        from ocisign.types import GeneratedEnvelope

        expiry_seconds = int((request.expiry - request.signing_time).total_seconds()) if request.expiry else None
        resp = self.plugin.generate_envelope(self.key_id, request.payload, fmt.media_type, expiry_seconds,
                                             self.plugin_config)
        where = self._where(p.CMD_GENERATE_ENVELOPE)
        try:
            content = fmt.open(resp.envelope)
        except OcisignError as exc:
            raise PluginError(f"{where}: the returned {fmt.name} envelope is invalid: {exc}") from None
        if content.payload_content_type != PAYLOAD_CONTENT_TYPE:
            raise PluginError(f"{where}: the envelope's payload type {content.payload_content_type!r} is not "
                              f"{PAYLOAD_CONTENT_TYPE!r}")
        _check_target(where, request.payload, content.payload)
        for key in resp.annotations:
            if key in _RESERVED_ANNOTATIONS:
                raise PluginError(f"{where}: the plugin may not set the manifest annotation {key!r}")
        self._chain = tuple(content.certificate_chain)
        return GeneratedEnvelope(envelope=resp.envelope, certificate_chain=self._chain,
                                 annotations=dict(resp.annotations))


def _check_target(where: str, sent: bytes, signed: bytes) -> None:
    """The signed payload keeps the sent targetArtifact (notation-go ``isPayloadDescriptorValid``)."""
    want: Any = json.loads(sent)["targetArtifact"]
    try:
        obj = json.loads(signed)
    except ValueError:
        raise PluginError(f"{where}: the envelope's payload is not JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"targetArtifact"} or not isinstance(obj["targetArtifact"], dict):
        raise PluginError(f"{where}: the envelope's payload must be exactly {{\"targetArtifact\": descriptor}}")
    got = obj["targetArtifact"]
    for key in ("mediaType", "digest", "size"):
        if got.get(key) != want.get(key):
            raise PluginError(f"{where}: the envelope signs another artifact: targetArtifact {key} "
                              f"{got.get(key)!r} != {want.get(key)!r}")
    added = sorted(set(got) - _ALLOWED_DESCRIPTOR_KEYS)
    if added:
        raise PluginError(f"{where}: the plugin added unknown fields {added} to targetArtifact")
    got_ann = got.get("annotations") or {}
    for k, v in (want.get("annotations") or {}).items():
        if not isinstance(got_ann, dict) or got_ann.get(k) != v:
            raise PluginError(f"{where}: the envelope dropped or changed the signed annotation {k!r}")


def create_plugin_signer(plugin: ExternalPlugin, record: Mapping[str, Any]) -> PluginRawSigner | PluginEnvelopeSigner:
    """The Signer for a plugin key record (``id``, ``pluginConfig``): RAW if declared, else ENVELOPE."""
    name = record.get("name", "?")
    key_id = record.get("id")
    if not isinstance(key_id, str) or not key_id:
        raise SigningError(f"signing key {name!r}: the key id is missing")
    config = record.get("pluginConfig") or {}
    metadata = plugin.metadata(config)
    if metadata.has(p.CAP_RAW):
        return PluginRawSigner(plugin, key_id, config, metadata)
    if metadata.has(p.CAP_ENVELOPE):
        return PluginEnvelopeSigner(plugin, key_id, config, metadata)
    raise PluginError(f"plugin {plugin.name!r} cannot sign: it declares neither {p.CAP_RAW} nor {p.CAP_ENVELOPE} "
                      f"(capabilities: {', '.join(metadata.capabilities)})")
