"""Rules shared by the Notary signature envelopes (the JWS and COSE codecs are the ``jws``/``cose`` plugins).

``headers`` (names, schemes), ``errors``, ``algorithms`` (key specs, ECDSA forms, signature
check), ``encoding`` (strict base64/JSON), ``times`` (RFC 3339 / epoch), ``payload`` (the
``targetArtifact`` payload, user metadata), ``sealing`` (request checks, signer call), ``guard``
(the parse guard), ``certificates`` (Go-strict certificate parsing), ``chain`` (the Notary
signing-chain rules) and ``content`` (what opening a JWS or COSE envelope shares).
"""
