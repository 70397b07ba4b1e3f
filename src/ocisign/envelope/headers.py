"""Header names and signing schemes of Notary signature envelopes (shared by JWS and COSE)."""

from __future__ import annotations

#: the only payload content type of Notary signatures
PAYLOAD_CONTENT_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"
SIGNING_SCHEMES = (SCHEME_X509, SCHEME_SIGNING_AUTHORITY)

H_SIGNING_SCHEME = "io.cncf.notary.signingScheme"
H_SIGNING_TIME = "io.cncf.notary.signingTime"
H_AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
H_EXPIRY = "io.cncf.notary.expiry"
H_SIGNING_AGENT = "io.cncf.notary.signingAgent"
H_TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
H_VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
H_VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"

#: prefix of annotation keys users may not set with ``-m``
RESERVED_ANNOTATION_PREFIX = "io.cncf.notary"

#: protected-header names that are not extended attributes (JWS names; COSE adds int labels 1-3)
STANDARD_HEADERS = frozenset(
    {"alg", "cty", "crit", H_SIGNING_SCHEME, H_SIGNING_TIME, H_AUTHENTIC_SIGNING_TIME, H_EXPIRY}
)
#: extended attributes that are always critical
ALWAYS_CRITICAL = (H_VERIFICATION_PLUGIN, H_VERIFICATION_PLUGIN_MIN_VERSION)
