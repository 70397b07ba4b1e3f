"""JWS and COSE envelopes: round trips, byte-level format, conformance envelopes, strict parsing."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocisign.plugins import cose, jws
from ocisign.plugins.file_key import FileSigner, load_file_signer

from ocisign.envelope.algorithms import BY_KEY_SPEC, key_spec_of
from ocisign.envelope.chain import CertificateChainError, validate_signing_chain
from ocisign.envelope.encoding import b64url_encode
from ocisign.envelope.errors import EnvelopeError
from ocisign.envelope.headers import PAYLOAD_CONTENT_TYPE
from ocisign.envelope.payload import build_payload, check_user_metadata
from ocisign.envelope.times import format_time, parse_time
from ocisign.errors import SigningError, UsageError, VerificationError
from ocisign.goformat import go_marshal
from ocisign.oci.model import MT_COSE, MT_JWS, Descriptor
from ocisign.types import EnvelopeContent, SignRequest
from ocisign.x509.chain import cert_fingerprint_sha256

FORMATS = {"jws": jws, "cose": cose}
MT = {"jws": MT_JWS, "cose": MT_COSE}
SCHEME = "io.cncf.notary.signingScheme"
STIME = "io.cncf.notary.signingTime"
ASTIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
AGENT = "io.cncf.notary.signingAgent"
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
TARGET = Descriptor(
    media_type="application/vnd.oci.image.manifest.v1+json",
    digest="sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
    size=517,
    annotations={"purpose": "e2e", "a<b": "x&y"},
)


def signer_for(make_keypair: Callable[..., Any], kind: str = "ec256", **kw: Any) -> FileSigner:
    kp = make_keypair(kind, **kw)
    return load_file_signer(kp.key_path, kp.cert_path)


def request(fmt: str, **kw: Any) -> SignRequest:
    kw.setdefault("payload", build_payload(TARGET, envelope_media_type=MT[fmt]))
    kw.setdefault("signing_time", T0)
    return SignRequest(**kw)


def b64url_dec(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def der_chain(signer: FileSigner) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in signer.certificate_chain()]


# --- crafting envelopes with arbitrary headers (signed correctly) --------------------------------
def craft_jws(signer: FileSigner, protected: dict[str, Any] | bytes, payload: bytes = b'{"a":1}',
              *, header: dict[str, Any] | None = None, sig: bytes | None = None) -> bytes:
    raw = protected if isinstance(protected, bytes) else go_marshal(protected, sort_keys=True)
    p, q = b64url_encode(raw), b64url_encode(payload)
    signature = sig if sig is not None else signer.sign(f"{p}.{q}".encode())
    if header is None:
        header = {"x5c": [base64.b64encode(d).decode() for d in der_chain(signer)]}
    return json.dumps({"payload": q, "protected": p, "header": header,
                       "signature": b64url_encode(signature)}).encode()


def jws_headers(alg: str = "ES256", **extra: Any) -> dict[str, Any]:
    h = {"alg": alg, "crit": [SCHEME], "cty": PAYLOAD_CONTENT_TYPE, SCHEME: "notary.x509",
         STIME: "2024-05-06T07:08:09Z"}
    h.update(extra)
    return h


def craft_cose(signer: FileSigner, protected: dict[Any, Any] | bytes, payload: bytes = b'{"a":1}',
               *, unprotected: dict[Any, Any] | None = None, sig: bytes | None = None) -> bytes:
    raw = protected if isinstance(protected, bytes) else cbor2.dumps(protected)
    signature = sig if sig is not None else signer.sign(cose.sig_structure(raw, payload))
    if unprotected is None:
        unprotected = {33: der_chain(signer)}
    return bytes(cbor2.dumps(cbor2.CBORTag(18, [raw, unprotected, payload, signature])))


def cose_headers(alg: Any = -7, **extra: Any) -> dict[Any, Any]:
    h: dict[Any, Any] = {1: alg, 2: [SCHEME], 3: PAYLOAD_CONTENT_TYPE, SCHEME: "notary.x509",
                         STIME: cbor2.CBORTag(1, 1714979289)}
    h.update(extra)
    return h


# --- algorithm table / key specs / helpers -------------------------------------------------------
def test_algorithm_table_is_exact() -> None:
    rows = {(a.key_spec, a.jws_alg, a.cose_alg, a.hash_name, a.signature_algorithm) for a in BY_KEY_SPEC.values()}
    assert rows == {
        ("RSA-2048", "PS256", -37, "SHA-256", "RSASSA-PSS-SHA-256"),
        ("RSA-3072", "PS384", -38, "SHA-384", "RSASSA-PSS-SHA-384"),
        ("RSA-4096", "PS512", -39, "SHA-512", "RSASSA-PSS-SHA-512"),
        ("EC-256", "ES256", -7, "SHA-256", "ECDSA-SHA-256"),
        ("EC-384", "ES384", -35, "SHA-384", "ECDSA-SHA-384"),
        ("EC-521", "ES512", -36, "SHA-512", "ECDSA-SHA-512"),
    }
    assert [BY_KEY_SPEC[s].ec_coordinate_size for s in ("EC-256", "EC-384", "EC-521")] == [32, 48, 66]


def test_key_spec_of_accepts_only_the_six_specs() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    assert key_spec_of(ec.generate_private_key(ec.SECP384R1()).public_key()) == "EC-384"
    assert key_spec_of(ec.generate_private_key(ec.SECP521R1())) == "EC-521"
    for bad in (rsa.generate_private_key(65537, 1024), ec.generate_private_key(ec.SECP256K1()),
                ec.generate_private_key(ec.SECP224R1()), ed25519.Ed25519PrivateKey.generate()):
        with pytest.raises(SigningError, match="not supported"):
            key_spec_of(bad.public_key())
        with pytest.raises(VerificationError):
            key_spec_of(bad.public_key())


def test_time_helpers() -> None:
    t = dt.datetime(2023, 6, 27, 13, 30, 33, 987654, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert format_time(t) == "2023-06-27T05:30:33Z"
    assert parse_time("2023-06-27T13:30:33+08:00") == dt.datetime(2023, 6, 27, 5, 30, 33, tzinfo=dt.timezone.utc)
    assert parse_time("2023-01-19T00:21:36-08:00").utcoffset() == dt.timedelta(hours=-8)
    assert parse_time("2023-06-27T05:30:33.5Z").microsecond == 500000
    for bad in ("2023-06-27T05:30:33+0000", "2023-06-27t05:30:33Z", "2023-06-27T05:30:33z", "2023-06-27 05:30:33Z",
                "2023-13-27T05:30:33Z", "2023-06-27T05:30:33", "2023-06-27T05:30:33+24:00", "1687843833", ""):
        with pytest.raises(EnvelopeError):
            parse_time(bad)
    with pytest.raises(EnvelopeError):
        parse_time(1687843833)


def test_build_payload_matches_notation_bytes() -> None:
    plain = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json",
                       digest="sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0", size=481)
    # bytes of notation-go/internal/testdata/{jws,cose}_signature.sig payloads
    assert build_payload(plain) == (
        b'{"targetArtifact":{"digest":"sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0",'
        b'"mediaType":"application/vnd.oci.image.manifest.v1+json","size":481}}')
    assert build_payload(plain, envelope_media_type=MT_COSE) == (
        b'{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"digest":"sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0","size":481}}')
    rich = Descriptor(media_type="m", digest=plain.digest, size=1, annotations={"z": "1", "a": "<é>"},
                      artifact_type="x/y", urls=("http://u",), platform={"os": "linux"})
    assert build_payload(rich) == (b'{"targetArtifact":{"annotations":{"a":"\\u003c\xc3\xa9\\u003e","z":"1"},'
                                   b'"digest":"' + plain.digest.encode() + b'","mediaType":"m","size":1}}')
    assert build_payload(rich, envelope_media_type=MT_COSE).startswith(
        b'{"targetArtifact":{"mediaType":"m","digest":"sha256:19db')
    assert b'"annotations":{"a"' in build_payload(rich, envelope_media_type=MT_COSE)


def test_user_metadata_reserved_prefix() -> None:
    check_user_metadata({"purpose": "e2e", "org.opencontainers.x": "y"})
    for key in ("io.cncf.notary", "io.cncf.notary.foo", "io.cncf.notaryproject"):
        with pytest.raises(UsageError, match="reserved"):
            check_user_metadata({key: "v"})


# --- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rsa2048", "rsa3072", "rsa4096", "ec256", "ec384", "ec521"])
def test_round_trip_all_key_specs(make_keypair: Callable[..., Any], kind: str) -> None:
    signer = signer_for(make_keypair, kind, chain_len=2)
    alg = BY_KEY_SPEC[signer.key_spec]
    for fmt, mod in FORMATS.items():
        for expiry in (None, T0 + dt.timedelta(days=3)):
            for scheme in ("notary.x509", "notary.x509.signingAuthority"):
                req = request(fmt, expiry=expiry, signing_agent="ocisign/0.1.0", signing_scheme=scheme)
                blob = mod.seal(req, signer)
                content = mod.open_envelope(blob)
                assert isinstance(content, EnvelopeContent)
                assert content.media_type == MT[fmt]
                assert content.payload == (req.payload if fmt == "cose" else build_payload(TARGET))
                assert json.loads(content.payload) == json.loads(req.payload)
                assert content.payload_content_type == PAYLOAD_CONTENT_TYPE
                assert content.signature_algorithm == alg.signature_algorithm
                assert content.signing_scheme == scheme
                if scheme == "notary.x509":
                    assert (content.signing_time, content.authentic_signing_time) == (T0, None)
                else:
                    assert (content.signing_time, content.authentic_signing_time) == (None, T0)
                assert content.expiry == expiry
                assert content.signing_agent == "ocisign/0.1.0"
                assert content.timestamp_token is None
                assert [c.public_bytes(Encoding.DER) for c in content.certificate_chain] == der_chain(signer)
                if kind.startswith("ec"):
                    assert len(content.signature) == 2 * alg.ec_coordinate_size
                validate_signing_chain(content.certificate_chain, at=dt.datetime.now(dt.timezone.utc))
                want_crit = [SCHEME] + ([ASTIME] if scheme.endswith("Authority") else []) + ([EXPIRY] if expiry else [])
                assert sorted(content.critical) == sorted(want_crit)


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_seal_extended_attributes_and_critical(make_keypair: Callable[..., Any], fmt: str) -> None:
    signer = signer_for(make_keypair)
    req = request(fmt, extended_attributes={"ext.b": "2", "io.cncf.notary.verificationPlugin": "acme",
                                            "io.cncf.notary.verificationPluginMinVersion": "1.0.0"},
                  critical_attributes=("ext.b",))
    content = FORMATS[fmt].open_envelope(FORMATS[fmt].seal(req, signer))
    assert content.verification_plugin == "acme"
    assert content.verification_plugin_min_version == "1.0.0"
    assert content.extended_attributes["ext.b"] == "2"
    assert set(content.critical) == {SCHEME, "ext.b", "io.cncf.notary.verificationPlugin",
                                     "io.cncf.notary.verificationPluginMinVersion"}


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_seal_refuses_bad_requests(make_keypair: Callable[..., Any], fmt: str) -> None:
    signer = signer_for(make_keypair)
    mod = FORMATS[fmt]
    bad: list[dict[str, Any]] = [
        dict(signing_scheme="notary.x509.other"),
        dict(expiry=T0),
        dict(expiry=T0 - dt.timedelta(seconds=1)),
        dict(expiry=T0 + dt.timedelta(milliseconds=500)),  # equal after truncation to seconds
        dict(signing_time=dt.datetime(2024, 1, 1)),  # naive
        dict(extended_attributes={"alg": "none"}),
        dict(extended_attributes={STIME: "x"}),
        dict(extended_attributes={"x": 1}, critical_attributes=("y",)),
    ]
    for kw in bad:
        with pytest.raises(SigningError):
            mod.seal(request(fmt, **kw), signer)


def test_seal_refuses_signer_whose_key_does_not_match_leaf(make_keypair: Callable[..., Any]) -> None:
    a, b = make_keypair("ec256"), make_keypair("ec384")
    signer = FileSigner(load_file_signer(a.key_path, a.cert_path)._key,
                        load_file_signer(b.key_path, b.cert_path).certificate_chain())
    for mod in FORMATS.values():
        with pytest.raises(SigningError, match="does not match"):
            mod.seal(request("jws"), signer)
    same_spec = FileSigner(load_file_signer(a.key_path, a.cert_path)._key,
                           signer_for(make_keypair, "ec256").certificate_chain())
    for fmt, mod in FORMATS.items():
        with pytest.raises(SigningError, match="does not verify"):
            mod.seal(request(fmt), same_spec)


# --- byte-level format ---------------------------------------------------------------------------
def test_jws_bytes(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair, "rsa2048", chain_len=3)
    blob = jws.seal(request("jws", expiry=T0 + dt.timedelta(hours=1), signing_agent="a/1"), signer)
    env = json.loads(blob)
    assert list(env) == ["payload", "protected", "header", "signature"]
    assert blob.startswith(b'{"payload":"') and b" " not in blob and b"\n" not in blob
    for part in ("payload", "protected", "signature"):
        assert "=" not in env[part] and "+" not in env[part] and "/" not in env[part]
    raw = b64url_dec(env["protected"])
    assert raw == (b'{"alg":"PS256","crit":["io.cncf.notary.signingScheme","io.cncf.notary.expiry"],'
                   b'"cty":"application/vnd.cncf.notary.payload.v1+json",'
                   b'"io.cncf.notary.expiry":"2024-05-06T08:08:09Z",'
                   b'"io.cncf.notary.signingScheme":"notary.x509",'
                   b'"io.cncf.notary.signingTime":"2024-05-06T07:08:09Z"}')
    assert b64url_dec(env["payload"]) == build_payload(TARGET)
    assert list(env["header"]) == ["x5c", AGENT]
    assert env["header"][AGENT] == "a/1"
    assert [base64.b64decode(c) for c in env["header"]["x5c"]] == der_chain(signer)
    assert all(c == base64.b64encode(base64.b64decode(c)).decode() for c in env["header"]["x5c"])
    assert any(c.endswith("=") for c in env["header"]["x5c"]) or all(len(d) % 3 == 0 for d in der_chain(signer))
    # signature is PSS with salt = hash length (what go-cose and notation use)
    leaf = signer.certificate_chain()[0].public_key()
    assert isinstance(leaf, rsa.RSAPublicKey)
    leaf.verify(b64url_dec(env["signature"]), f"{env['protected']}.{env['payload']}".encode(),
                padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    # signing authority scheme and no agent
    env2 = json.loads(jws.seal(request("jws", signing_scheme="notary.x509.signingAuthority"), signer))
    assert json.loads(b64url_dec(env2["protected"])) == {
        "alg": "PS256", "crit": [SCHEME, ASTIME], "cty": PAYLOAD_CONTENT_TYPE, ASTIME: "2024-05-06T07:08:09Z",
        SCHEME: "notary.x509.signingAuthority"}
    assert list(env2["header"]) == ["x5c"]


def test_jws_attach_timestamp(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    blob = jws.seal(request("jws", signing_agent="a/1"), signer)
    stamped = jws.attach_timestamp(blob, b"\x30\x03\x02\x01\x01")
    env = json.loads(stamped)
    assert list(env["header"]) == ["io.cncf.notary.timestampSignature", "x5c", AGENT]
    assert env["header"]["io.cncf.notary.timestampSignature"] == "MAMCAQE="
    assert jws.open_envelope(stamped).timestamp_token == b"\x30\x03\x02\x01\x01"
    stamped_cose = cose.attach_timestamp(cose.seal(request("cose"), signer), b"\x01\x02")
    assert cose.open_envelope(stamped_cose).timestamp_token == b"\x01\x02"


def test_cose_bytes(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair, "ec384")
    blob = cose.seal(request("cose", expiry=T0 + dt.timedelta(hours=1), signing_agent="a/1",
                             extended_attributes={"zz": "v", "a": "w"}), signer)
    assert blob[:2] == b"\xd2\x84"
    msg = cbor2.loads(blob)
    assert msg.tag == 18 and len(msg.value) == 4
    protected_raw, unprotected, payload, signature = msg.value
    assert payload == build_payload(TARGET, envelope_media_type=MT_COSE)
    decoded = cbor2.loads(protected_raw)
    assert decoded == {1: -35, 2: [SCHEME, EXPIRY], 3: PAYLOAD_CONTENT_TYPE, SCHEME: "notary.x509",
                       STIME: T0, EXPIRY: T0 + dt.timedelta(hours=1), "a": "w", "zz": "v"}
    # raw bytes: tag 1 (0xc1) + uint32 (0x1a) epoch seconds for both times
    assert b"\xc1\x1a" + (1714979289).to_bytes(4, "big") in protected_raw
    assert b"\xc1\x1a" + (1714982889).to_bytes(4, "big") in protected_raw
    keys = list(cbor2.loads(protected_raw))
    assert keys == [1, 2, 3, "a", "zz", EXPIRY, STIME, SCHEME]  # core deterministic order
    assert {k: (list(v) if k == 33 else v) for k, v in unprotected.items()} == {33: der_chain(signer), AGENT: "a/1"}
    # label 33 (0x18 0x21) then an array of one bstr (0x81 0x59 <len16>): an array even for one certificate
    leaf = der_chain(signer)[0]
    assert b"\x18\x21\x81\x59" + len(leaf).to_bytes(2, "big") + leaf in blob
    assert len(signature) == 96
    # independent check of the Sig_structure and raw r||s encoding
    tbs = cbor2.dumps(["Signature1", protected_raw, b"", payload])
    assert tbs == cose.sig_structure(protected_raw, payload)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    leaf_key = signer.certificate_chain()[0].public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    leaf_key.verify(encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")),
                tbs, ec.ECDSA(hashes.SHA384()))


def test_cose_rsa_salt_is_hash_length(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair, "rsa3072")
    protected_raw, _, payload, signature = cbor2.loads(cose.seal(request("cose"), signer)).value
    leaf = signer.certificate_chain()[0].public_key()
    assert isinstance(leaf, rsa.RSAPublicKey)
    leaf.verify(signature, cose.sig_structure(protected_raw, payload),
                padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())


def test_encoding_vectors_match(conformance: Path, make_keypair: Callable[..., Any]) -> None:
    vec = json.loads((conformance / "notation-core-go/signature/jws/testdata/conformance.json").read_text())
    ext = {"signedCritKey1": "signedCritValue1", "signedKey1": "signedValue1", "signedKey2": "signedValue1",
           "signedKey3": "signedValue1", "signedKey4": "signedValue1"}
    env = json.loads(jws.seal(SignRequest(
        payload=b'{"key":"hello JWS"}', signing_time=dt.datetime(2022, 8, 29, 13, 50, tzinfo=dt.timezone.utc),
        expiry=dt.datetime(2099, 8, 30, 13, 50, tzinfo=dt.timezone.utc), extended_attributes=ext,
        critical_attributes=("signedCritKey1",), signing_agent=vec["header"][AGENT]),
        signer_for(make_keypair, "ec256")))
    assert env["protected"] == vec["protected"]
    assert env["payload"] == vec["payload"]
    assert env["header"][AGENT] == vec["header"][AGENT]

    cvec = json.loads((conformance / "notation-core-go/signature/cose/testdata/conformance.json").read_text())
    blob = cose.seal(SignRequest(
        payload=bytes.fromhex(cvec["payload"]),
        signing_time=dt.datetime.fromtimestamp(cvec["signingTime"], dt.timezone.utc),
        expiry=dt.datetime.fromtimestamp(cvec["expiry"], dt.timezone.utc),
        extended_attributes={"signedCritKey1": "signedCritValue1", "signedKey1": "signedValue1"},
        critical_attributes=("signedCritKey1",), signing_agent="NotationConformanceTest/1.0.0"),
        signer_for(make_keypair, "rsa3072"))
    protected_raw, unprotected, payload, _ = cbor2.loads(blob).value
    assert protected_raw.hex().upper() == cvec["protectedHeaders"]["cborHex"]
    assert cbor2.dumps({AGENT: unprotected[AGENT]}).hex().upper() == cvec["unprotectedHeaders"]["cborHex"]
    expected = bytes.fromhex(cvec["expectedOutput"]["cborHex"])
    head = b"\xd2\x84\x59\x01\x17" + protected_raw
    assert expected.startswith(head)
    assert blob.startswith(head)
    assert payload == bytes.fromhex(cvec["payload"])


# --- conformance envelopes -----------------------------------------------------------------------
def _conformance_envelopes(conformance: Path) -> dict[str, str]:
    cases = json.loads((conformance / "cases.json").read_text())["cases"]
    found = {c["envelope"]["file"]: c["envelope"]["media_type"] for c in cases if c["kind"] == "envelope"}
    for layout in sorted((conformance / "notation/test/e2e/testdata/registry/oci_layout").iterdir()):
        for blob in sorted((layout / "blobs/sha256").iterdir()):
            try:
                manifest = json.loads(blob.read_bytes())
            except (UnicodeDecodeError, ValueError):
                continue
            if not isinstance(manifest, dict) or "subject" not in manifest:
                continue
            cfg = manifest.get("config", {}).get("mediaType")
            if cfg != "application/vnd.cncf.notary.signature" and manifest.get("artifactType") != cfg:
                continue
            (layer,) = manifest["layers"]
            rel = str((layout / "blobs/sha256" / layer["digest"].split(":")[1]).relative_to(conformance))
            found[rel] = layer["mediaType"]
    return found


BAD_ENVELOPES = {
    "notation-go/internal/mock/testdata/ca_invalid_sig_env.json",
    "notation-go/internal/mock/testdata/sa_invalid_sig_env.json",
    "notation/test/e2e/testdata/signatures/malformed.jws.sig",
}


def test_every_conformance_envelope_parses_and_verifies(conformance: Path) -> None:
    envelopes = _conformance_envelopes(conformance)
    assert len(envelopes) >= 35
    formats = {MT_JWS: jws, MT_COSE: cose}
    ok = 0
    for rel, media_type in envelopes.items():
        data = (conformance / rel).read_bytes()
        if media_type not in formats:  # e2e-invalid-signature: a tar layer holding "invalid signature"
            for mod in formats.values():
                with pytest.raises(EnvelopeError):
                    mod.open_envelope(data)
            continue
        if rel in BAD_ENVELOPES:
            with pytest.raises(EnvelopeError) as info:
                formats[media_type].open_envelope(data)
            assert info.value.check == "integrity"
            continue
        content = formats[media_type].open_envelope(data)
        validate_signing_chain(content.certificate_chain, scheme=content.signing_scheme)
        target = json.loads(content.payload)["targetArtifact"]
        assert {"mediaType", "digest", "size"} <= set(target)
        ok += 1
    assert ok >= 32
    assert set(envelopes) >= BAD_ENVELOPES


def test_conformance_expected_metadata(conformance: Path) -> None:
    cases = json.loads((conformance / "cases.json").read_text())["cases"]
    envs = _conformance_envelopes(conformance)
    checked = 0
    for case in cases:
        meta = case["expected"].get("expected_metadata") or case.get("expected_metadata")
        if not meta or "signing_cert_sha256" not in meta:
            continue
        if case["kind"] == "envelope":
            rel, mt = case["envelope"]["file"], case["envelope"]["media_type"]
        else:
            layout = case["artifact"]["layout"]
            manifest = json.loads((conformance / layout / "blobs/sha256" /
                                   meta["signature_manifest"].split(":")[1]).read_bytes())
            rel = f"{layout}/blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"
            mt = envs[rel]
        content = (jws if mt == MT_JWS else cose).open_envelope((conformance / rel).read_bytes())
        signed_at = content.signing_time or content.authentic_signing_time
        assert signed_at is not None and format_time(signed_at) == meta["signing_time"]
        assert cert_fingerprint_sha256(content.certificate_chain[0]) == meta["signing_cert_sha256"]
        if "expiry" in meta:
            assert content.expiry is not None and format_time(content.expiry) == meta["expiry"]
        if "signing_agent" in meta:
            assert content.signing_agent == meta["signing_agent"]
        if "signature_algorithm" in meta:
            assert content.signature_algorithm == meta["signature_algorithm"]
        if meta.get("signed_artifact"):
            target = json.loads(content.payload)["targetArtifact"]
            assert {k: target[k] for k in ("mediaType", "digest", "size")} == meta["signed_artifact"]
        if "tsa_cert_sha256" in meta:
            assert content.timestamp_token
        checked += 1
    assert checked >= 3


def test_real_notation_layout_envelope_fields(conformance: Path) -> None:
    rel = ("notation/test/e2e/testdata/registry/oci_layout/e2e-with-timestamped-signature/blobs/sha256/"
           "603ff134e97a79cd7a15560b76137c2c4a10451daab11327a7c6f86dac250fee")
    content = jws.open_envelope((conformance / rel).read_bytes())
    assert content.signing_agent == "notation-go/1.3.0+unreleased"
    assert json.loads(content.payload)["targetArtifact"]["annotations"] == {"purpose": "e2e"}
    assert content.critical == (SCHEME, EXPIRY)


# --- single-byte tampering -----------------------------------------------------------------------
def _spki_span(signer: FileSigner) -> tuple[int, int]:
    """(offset, length) of the leaf's SubjectPublicKeyInfo inside the leaf certificate DER."""
    leaf = signer.certificate_chain()[0]
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    der = leaf.public_bytes(Encoding.DER)
    return der.index(spki), len(spki)


def _region_positions(blob: bytes, start: bytes, end: bytes) -> range:
    i = blob.index(start) + len(start)
    return range(i, blob.index(end, i))


@pytest.mark.parametrize("kind", ["ec256", "rsa2048"])
def test_jws_tampering_each_signed_region_fails(make_keypair: Callable[..., Any], kind: str) -> None:
    signer = signer_for(make_keypair, kind)
    blob = jws.seal(request("jws", expiry=T0 + dt.timedelta(days=1)), signer)
    env = json.loads(blob)
    regions = {name: _region_positions(blob, f'"{name}":"'.encode(), b'"')
               for name in ("payload", "protected", "signature")}
    leaf_b64 = env["header"]["x5c"][0].encode()
    off, length = _spki_span(signer)
    start = blob.index(leaf_b64)
    regions["x5c[0] public key"] = range(start + (off // 3 + 1) * 4, start + (off + length) // 3 * 4)
    for name, positions in regions.items():
        step = max(1, len(positions) // 97)
        for pos in positions[::step]:
            for repl in {blob[pos] ^ 0x01, ord("A") if blob[pos] != ord("A") else ord("B")}:
                mutated = blob[:pos] + bytes([repl]) + blob[pos + 1:]
                with pytest.raises(EnvelopeError):
                    jws.open_envelope(mutated)
                    pytest.fail(f"{name} byte {pos} mutation accepted")


@pytest.mark.parametrize("kind", ["ec256", "rsa2048"])
def test_cose_tampering_each_signed_region_fails(make_keypair: Callable[..., Any], kind: str) -> None:
    signer = signer_for(make_keypair, kind)
    blob = cose.seal(request("cose", expiry=T0 + dt.timedelta(days=1)), signer)
    protected_raw, unprotected, payload, signature = cbor2.loads(blob).value
    leaf = unprotected[33][0]
    regions = {}
    off, length = _spki_span(signer)
    for name, part in (("protected", protected_raw), ("payload", payload), ("signature", signature),
                       ("leaf public key", leaf[off:off + length])):
        start = blob.index(part)
        regions[name] = range(start, start + len(part))
    for name, positions in regions.items():
        for pos in positions:
            for flip in (0x01, 0x80):
                mutated = blob[:pos] + bytes([blob[pos] ^ flip]) + blob[pos + 1:]
                try:
                    cose.open_envelope(mutated)
                except EnvelopeError:
                    continue
                pytest.fail(f"{name} byte {pos} ^ {flip:#x} accepted")


# --- strict JWS parsing --------------------------------------------------------------------------
def test_jws_crafted_valid_envelope_opens(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    content = jws.open_envelope(craft_jws(signer, jws_headers()))
    assert content.signing_time == T0


@pytest.mark.parametrize("case", [
    "alg-none", "alg-mismatch", "alg-rsa-for-ec", "cty-wrong", "cty-missing", "scheme-unknown",
    "crit-missing", "crit-empty", "crit-not-list", "crit-alg", "crit-cty", "crit-signingtime", "crit-duplicate",
    "crit-expiry-without-expiry", "crit-unknown", "expiry-not-critical", "expiry-before-signing",
    "expiry-equal", "signingtime-missing", "signingtime-bad-format", "signingtime-number", "x509-with-authentic",
    "sa-with-signingtime", "sa-authentic-not-critical", "sa-missing-authentic", "case-variant-alg",
    "plugin-not-string", "protected-not-object", "protected-duplicate-key", "protected-bom",
])
def test_jws_protected_header_rules(make_keypair: Callable[..., Any], case: str) -> None:
    signer = signer_for(make_keypair)
    h = jws_headers()
    sa = {"alg": "ES256", "crit": [SCHEME, ASTIME], "cty": PAYLOAD_CONTENT_TYPE,
          SCHEME: "notary.x509.signingAuthority", ASTIME: "2024-05-06T07:08:09Z"}
    protected: dict[str, Any] | bytes = h
    if case == "alg-none":
        h["alg"] = "none"
    elif case == "alg-mismatch":
        h["alg"] = "ES384"
    elif case == "alg-rsa-for-ec":
        h["alg"] = "PS256"
    elif case == "cty-wrong":
        h["cty"] = "application/json"
    elif case == "cty-missing":
        del h["cty"]
    elif case == "scheme-unknown":
        h[SCHEME] = "notary.x509.other"
    elif case == "crit-missing":
        del h["crit"]
    elif case == "crit-empty":
        h["crit"] = []
    elif case == "crit-not-list":
        h["crit"] = SCHEME
    elif case == "crit-alg":
        h["crit"] = [SCHEME, "alg"]
    elif case == "crit-cty":
        h["crit"] = [SCHEME, "cty"]
    elif case == "crit-signingtime":
        h["crit"] = [SCHEME, STIME]
    elif case == "crit-duplicate":
        h["crit"] = [SCHEME, SCHEME]
    elif case == "crit-expiry-without-expiry":
        h["crit"] = [SCHEME, EXPIRY]
    elif case == "crit-unknown":
        h["crit"] = [SCHEME, "not-present"]
    elif case == "expiry-not-critical":
        h[EXPIRY] = "2030-01-01T00:00:00Z"
    elif case == "expiry-before-signing":
        h.update({EXPIRY: "2024-05-06T07:08:08Z", "crit": [SCHEME, EXPIRY]})
    elif case == "expiry-equal":
        h.update({EXPIRY: "2024-05-06T15:08:09+08:00", "crit": [SCHEME, EXPIRY]})
    elif case == "signingtime-missing":
        del h[STIME]
    elif case == "signingtime-bad-format":
        h[STIME] = "2024-05-06T07:08:09+0000"
    elif case == "signingtime-number":
        h[STIME] = 1714979289
    elif case == "x509-with-authentic":
        h[ASTIME] = "2024-05-06T07:08:09Z"
    elif case == "sa-with-signingtime":
        protected = dict(sa, **{STIME: "2024-05-06T07:08:09Z"})
    elif case == "sa-authentic-not-critical":
        protected = dict(sa, crit=[SCHEME])
    elif case == "sa-missing-authentic":
        protected = {k: v for k, v in sa.items() if k != ASTIME}
        protected["crit"] = [SCHEME]
    elif case == "case-variant-alg":
        h["Alg"] = "ES256"
    elif case == "plugin-not-string":
        h.update({"io.cncf.notary.verificationPlugin": 5, "crit": [SCHEME, "io.cncf.notary.verificationPlugin"]})
    elif case == "protected-not-object":
        protected = b'["alg"]'
    elif case == "protected-duplicate-key":
        protected = go_marshal(h, sort_keys=True).replace(b'{"alg":"ES256",', b'{"alg":"ES256","alg":"ES256",')
    elif case == "protected-bom":
        protected = b"\xef\xbb\xbf" + go_marshal(h, sort_keys=True)
    with pytest.raises(EnvelopeError):
        jws.open_envelope(craft_jws(signer, protected))


def test_jws_crit_extended_header_accepted(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    h = jws_headers(SomeKey="SomeValue", crit=[SCHEME, "SomeKey"])
    content = jws.open_envelope(craft_jws(signer, h))
    assert content.extended_attributes == {"SomeKey": "SomeValue"}
    assert content.critical == (SCHEME, "SomeKey")


@pytest.mark.parametrize("case", [
    "padding-protected", "padding-payload", "padding-signature", "std-alphabet-signature", "extra-member",
    "missing-header", "general-serialization", "header-not-object", "x5c-missing", "x5c-empty",
    "x5c-unpadded", "x5c-urlsafe", "x5c-garbage-cert", "x5c-trailing-data", "agent-not-string",
    "timestamp-empty", "empty-payload", "empty-signature", "not-json", "json-array", "duplicate-top-level",
    "ecdsa-der-signature", "ecdsa-padded-signature", "payload-not-string", "nan",
])
def test_jws_envelope_structure_rules(make_keypair: Callable[..., Any], case: str) -> None:
    signer = signer_for(make_keypair)
    good = craft_jws(signer, jws_headers())
    env = json.loads(good)
    if case.startswith("padding-"):
        part = case.split("-")[1]
        env[part] += "=" * (-len(env[part]) % 4 or 4)
    elif case == "std-alphabet-signature":
        sig = env["signature"]
        while "-" not in sig and "_" not in sig:
            env = json.loads(craft_jws(signer, jws_headers()))
            sig = env["signature"]
        env["signature"] = sig.replace("-", "+").replace("_", "/")
    elif case == "extra-member":
        env["signatures"] = []
    elif case == "missing-header":
        del env["header"]
    elif case == "general-serialization":
        env = {"payload": env["payload"], "signatures": [{k: env[k] for k in ("protected", "header", "signature")}]}
    elif case == "header-not-object":
        env["header"] = []
    elif case == "x5c-missing":
        env["header"] = {}
    elif case == "x5c-empty":
        env["header"]["x5c"] = []
    elif case == "x5c-unpadded":
        env["header"]["x5c"] = [c.rstrip("=") + ("" if c.endswith("=") else "x") for c in env["header"]["x5c"]]
    elif case == "x5c-urlsafe":
        env["header"]["x5c"] = [base64.urlsafe_b64encode(base64.b64decode(c)).decode() + "-_"
                                for c in env["header"]["x5c"]]
    elif case == "x5c-garbage-cert":
        env["header"]["x5c"] = [base64.b64encode(b"\x30\x03\x02\x01\x01").decode()]
    elif case == "x5c-trailing-data":
        env["header"]["x5c"] = [base64.b64encode(base64.b64decode(env["header"]["x5c"][0]) + b"\x00").decode()]
    elif case == "agent-not-string":
        env["header"][AGENT] = 1
    elif case == "timestamp-empty":
        env["header"]["io.cncf.notary.timestampSignature"] = ""
    elif case == "empty-payload":
        env = json.loads(craft_jws(signer, jws_headers(), payload=b""))
    elif case == "empty-signature":
        env["signature"] = ""
    elif case == "not-json":
        env = None
    elif case == "json-array":
        env = [env]
    elif case == "payload-not-string":
        env["payload"] = {"a": 1}
    elif case == "ecdsa-der-signature":
        p, q = env["protected"], env["payload"]
        key = signer._key
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        env["signature"] = b64url_encode(key.sign(f"{p}.{q}".encode(), ec.ECDSA(hashes.SHA256())))
    elif case == "ecdsa-padded-signature":
        sig = b64url_dec(env["signature"])
        env["signature"] = b64url_encode(b"\x00" + sig[:32] + b"\x00" + sig[32:])
    blob = b"{not json" if env is None else json.dumps(env).encode()
    if case == "duplicate-top-level":
        blob = good[:-1] + b',"payload":' + json.dumps(env["payload"]).encode() + b"}"
    if case == "nan":
        blob = good[:-1] + b',"x":NaN}'
    with pytest.raises(EnvelopeError):
        jws.open_envelope(blob)


def test_jws_unknown_top_level_members_are_ignored(make_keypair: Callable[..., Any]) -> None:
    """RFC 7515 section 7.2.1: members that are not understood are ignored (issue 11 item 1)."""
    signer = signer_for(make_keypair)
    env = json.loads(craft_jws(signer, jws_headers()))
    env["x-vendor"] = {"note": [1, 2]}
    env["unprotected"] = "ignored"
    assert jws.open_envelope(json.dumps(env).encode()).signing_time == T0
    # still refused: a member only a case-insensitive (Go) reader takes for one of ours
    for variant in ("Payload", "HEADER", "Signature", "\u017fignature"):  # Go folds U+017F to s
        bad = dict(env, **{variant: env["signature" if variant.startswith("\u017f") else variant.lower()]})
        with pytest.raises(EnvelopeError, match="only in case"):
            jws.open_envelope(json.dumps(bad).encode())
    with pytest.raises(EnvelopeError, match=r"7\.2\.2"):
        jws.open_envelope(json.dumps(dict(env, signatures=[])).encode())
    # and duplicate names inside the protected header
    h = go_marshal(jws_headers(), sort_keys=True).replace(b'{"alg":"ES256",', b'{"alg":"ES256","alg":"ES256",')
    with pytest.raises(EnvelopeError, match="duplicate"):
        jws.open_envelope(craft_jws(signer, h))


def test_jws_header_is_lenient_where_notation_is(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    env = json.loads(craft_jws(signer, jws_headers()))
    env["header"]["io.cncf.notary.SigningAgent"] = "Notation/1.0.0"  # Go matches names case-insensitively
    env["header"]["unknown"] = {"x": 1}
    pretty = json.dumps(env, indent=2).encode()  # whitespace outside signed parts is irrelevant
    assert jws.open_envelope(pretty).signing_agent == "Notation/1.0.0"
    env["header"][AGENT] = "other"
    with pytest.raises(EnvelopeError, match="conflicting"):
        jws.open_envelope(json.dumps(env).encode())


def test_jws_pss_salt_auto_accepted_cose_refused(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair, "rsa2048")
    key = signer._key
    assert isinstance(key, rsa.RSAPrivateKey)
    pss20 = padding.PSS(padding.MGF1(hashes.SHA256()), 20)
    h = jws_headers("PS256")
    p, q = b64url_encode(go_marshal(h, sort_keys=True)), b64url_encode(b'{"a":1}')
    blob = craft_jws(signer, h, sig=key.sign(f"{p}.{q}".encode(), pss20, hashes.SHA256()))
    assert jws.open_envelope(blob).signature_algorithm == "RSASSA-PSS-SHA-256"
    ch = cose_headers(-37)
    raw = cbor2.dumps(ch)
    cblob = craft_cose(signer, raw, sig=key.sign(cose.sig_structure(raw, b'{"a":1}'), pss20, hashes.SHA256()))
    with pytest.raises(EnvelopeError, match="signature is invalid"):
        cose.open_envelope(cblob)
    # PKCS#1 v1.5 is never accepted
    with pytest.raises(EnvelopeError):
        jws.open_envelope(craft_jws(signer, h, sig=key.sign(f"{p}.{q}".encode(), padding.PKCS1v15(), hashes.SHA256())))


# --- strict COSE parsing -------------------------------------------------------------------------
def test_cose_crafted_valid_envelope_opens(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    content = cose.open_envelope(craft_cose(signer, cose_headers()))
    assert content.signing_time == T0


@pytest.mark.parametrize("case", [
    "alg-missing", "alg-string", "alg-mismatch", "cty-uint", "cty-wrong", "scheme-missing", "crit-missing",
    "crit-empty", "crit-absent-label", "crit-duplicate", "expiry-not-critical", "time-untagged",
    "time-tag0-string", "time-tag1-nan", "time-tag1-inf", "time-tag1-huge-float", "time-tag1-text",
    "time-tag1-nested", "expiry-before", "sa-authentic-not-critical",
    "x509-with-authentic", "unknown-int-label", "tag-on-extended", "protected-not-map", "protected-empty",
    "protected-duplicate-key", "protected-indefinite-map", "protected-trailing-bytes", "protected-non-minimal",
])
def test_cose_protected_header_rules(make_keypair: Callable[..., Any], case: str) -> None:
    signer = signer_for(make_keypair)
    h = cose_headers()
    raw: bytes | None = None
    if case == "alg-missing":
        del h[1]
    elif case == "alg-string":
        h[1] = "ES256"
    elif case == "alg-mismatch":
        h[1] = -35
    elif case == "cty-uint":
        h[3] = 50
    elif case == "cty-wrong":
        h[3] = "application/json"
    elif case == "scheme-missing":
        del h[SCHEME]
        h[2] = [STIME]
    elif case == "crit-missing":
        del h[2]
    elif case == "crit-empty":
        h[2] = []
    elif case == "crit-absent-label":
        h[2] = [SCHEME, "nope"]
    elif case == "crit-duplicate":
        h[2] = [SCHEME, SCHEME]
    elif case == "expiry-not-critical":
        h[EXPIRY] = cbor2.CBORTag(1, 1914979289)
    elif case == "time-untagged":
        h[STIME] = 1714979289
    elif case == "time-tag0-string":
        h[STIME] = cbor2.CBORTag(0, "2024-05-06T07:08:09Z")
    elif case == "time-tag1-nan":
        h[STIME] = cbor2.CBORTag(1, float("nan"))
    elif case == "time-tag1-inf":
        h[STIME] = cbor2.CBORTag(1, float("-inf"))
    elif case == "time-tag1-huge-float":
        h[STIME] = cbor2.CBORTag(1, 1e300)
    elif case == "time-tag1-text":
        h[STIME] = cbor2.CBORTag(1, "1714979289")
    elif case == "time-tag1-nested":
        h[STIME] = cbor2.CBORTag(1, cbor2.CBORTag(1, 1714979289))
    elif case == "expiry-before":
        h.update({EXPIRY: cbor2.CBORTag(1, 1714979288), 2: [SCHEME, EXPIRY]})
    elif case == "sa-authentic-not-critical":
        del h[STIME]
        h.update({SCHEME: "notary.x509.signingAuthority", ASTIME: cbor2.CBORTag(1, 1714979289)})
    elif case == "x509-with-authentic":
        h[ASTIME] = cbor2.CBORTag(1, 1714979289)
    elif case == "unknown-int-label":
        h[4] = b"kid"
    elif case == "tag-on-extended":
        h["ext"] = cbor2.CBORTag(1, 5)
    elif case == "protected-not-map":
        raw = cbor2.dumps([1, 2])
    elif case == "protected-empty":
        raw = b""
    elif case == "protected-duplicate-key":
        raw = cbor2.dumps(h)
        raw = bytes([raw[0] + 1]) + raw[1:] + b"\x01\x26"  # repeat label 1
    elif case == "protected-indefinite-map":
        raw = cbor2.dumps(h)
        raw = b"\xbf" + raw[1:] + b"\xff"
    elif case == "protected-trailing-bytes":
        raw = cbor2.dumps(h) + b"\x00"
    elif case == "protected-non-minimal":
        raw = cbor2.dumps(h)
        raw = b"\xb8" + bytes([raw[0] & 0x1F]) + raw[1:]
    with pytest.raises(EnvelopeError):
        cose.open_envelope(craft_cose(signer, raw if raw is not None else h))


def test_cose_float_epoch_times_are_read_as_notation_reads_them(make_keypair: Callable[..., Any]) -> None:
    """Tag 1 with a float (issue 11 item 2): whole seconds + fraction * 1e9 truncated, as fxamacker/cbor."""
    signer = signer_for(make_keypair)
    half = dt.timedelta(milliseconds=500)
    content = cose.open_envelope(craft_cose(signer, cose_headers(**{STIME: cbor2.CBORTag(1, 1714979289.5)})))
    assert content.signing_time == T0 + half
    # a half-precision float (0xf9 3c00 = 1.0) is a float too
    raw = cbor2.dumps(cose_headers(**{STIME: cbor2.CBORTag(1, 7)}))
    raw = raw.replace(b"\xc1\x07", b"\xc1\xf9\x3c\x00")
    assert cose.open_envelope(craft_cose(signer, raw)).signing_time == dt.datetime(
        1970, 1, 1, 0, 0, 1, tzinfo=dt.timezone.utc)
    # negative epochs: Modf keeps the sign on both parts (-1.25 s is 23:59:58.75)
    neg = cose.open_envelope(craft_cose(signer, cose_headers(**{STIME: cbor2.CBORTag(1, -1.25)})))
    assert neg.signing_time == dt.datetime(1969, 12, 31, 23, 59, 58, 750000, tzinfo=dt.timezone.utc)
    # expiry is compared with the signing time in nanoseconds: 238 ns later is later
    step = 2.0 ** -22  # the float64 spacing at this magnitude
    h = cose_headers(**{STIME: cbor2.CBORTag(1, 1714979289.25), EXPIRY: cbor2.CBORTag(1, 1714979289.25 + step)})
    h[2] = [SCHEME, EXPIRY]
    content = cose.open_envelope(craft_cose(signer, h))
    assert content.expiry == content.signing_time == T0 + dt.timedelta(milliseconds=250)
    h[EXPIRY] = cbor2.CBORTag(1, 1714979289.25)
    with pytest.raises(EnvelopeError, match="expiry must be after"):
        cose.open_envelope(craft_cose(signer, h))


@pytest.mark.parametrize("case", [
    "untagged", "wrong-tag", "tag-sign", "array-of-3", "indefinite-array", "x5chain-bstr", "x5chain-empty",
    "x5chain-missing", "x5chain-item-text", "x5chain-in-protected-only", "unprotected-duplicate-key",
    "unprotected-tag", "alg-in-unprotected", "label-in-both", "detached-payload", "payload-text",
    "empty-signature", "ecdsa-der", "trailing-bytes", "agent-not-text", "timestamp-empty", "bool-key",
    "undefined-value", "deep-nesting", "huge-length",
])
def test_cose_structure_rules(make_keypair: Callable[..., Any], case: str) -> None:
    signer = signer_for(make_keypair)
    h = cose_headers()
    raw = cbor2.dumps(h)
    payload = b'{"a":1}'
    sig = signer.sign(cose.sig_structure(raw, payload))
    chain = der_chain(signer)
    unprotected: dict[Any, Any] = {33: chain}
    items: list[Any] = [raw, unprotected, payload, sig]
    blob: bytes | None = None
    if case == "untagged":
        blob = cbor2.dumps(items)
    elif case == "wrong-tag":
        blob = cbor2.dumps(cbor2.CBORTag(98, items))
    elif case == "tag-sign":
        blob = cbor2.dumps(cbor2.CBORTag(18, cbor2.CBORTag(18, items)))
    elif case == "array-of-3":
        blob = cbor2.dumps(cbor2.CBORTag(18, items[:3]))
    elif case == "indefinite-array":
        enc = cbor2.dumps(cbor2.CBORTag(18, items))
        blob = b"\xd2\x9f" + enc[2:] + b"\xff"
    elif case == "x5chain-bstr":
        unprotected[33] = chain[0]
    elif case == "x5chain-empty":
        unprotected[33] = []
    elif case == "x5chain-missing":
        del unprotected[33]
    elif case == "x5chain-item-text":
        unprotected[33] = [base64.b64encode(chain[0]).decode()]
    elif case == "x5chain-in-protected-only":
        h2 = dict(h)
        h2[33] = chain
        raw2 = cbor2.dumps(h2)
        items = [raw2, {}, payload, signer.sign(cose.sig_structure(raw2, payload))]
    elif case == "unprotected-duplicate-key":
        enc = cbor2.dumps(cbor2.CBORTag(18, [raw, {33: chain, AGENT: "a"}, payload, sig]))
        agent = cbor2.dumps(AGENT) + cbor2.dumps("a")
        blob = enc.replace(b"\xa2" + cbor2.dumps(33), b"\xa3" + cbor2.dumps(33), 1).replace(agent, agent + agent, 1)
    elif case == "unprotected-tag":
        unprotected[AGENT] = cbor2.CBORTag(32, "http://x")
    elif case == "alg-in-unprotected":
        unprotected[1] = -7
    elif case == "label-in-both":
        unprotected[SCHEME] = "notary.x509"
    elif case == "detached-payload":
        items[2] = None
    elif case == "payload-text":
        items[2] = payload.decode()
    elif case == "empty-signature":
        items[3] = b""
    elif case == "ecdsa-der":
        key = signer._key
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        items[3] = key.sign(cose.sig_structure(raw, payload), ec.ECDSA(hashes.SHA256()))
    elif case == "trailing-bytes":
        blob = cbor2.dumps(cbor2.CBORTag(18, items)) + b"\x00"
    elif case == "agent-not-text":
        unprotected[AGENT] = b"bytes"
    elif case == "timestamp-empty":
        unprotected["io.cncf.notary.timestampSignature"] = b""
    elif case == "bool-key":
        enc = cbor2.dumps(cbor2.CBORTag(18, [raw, {33: chain, "k": 1}, payload, sig]))
        blob = enc.replace(cbor2.dumps("k") + b"\x01", b"\xf5\x01")
    elif case == "undefined-value":
        enc = cbor2.dumps(cbor2.CBORTag(18, [raw, {33: chain, "k": 1}, payload, sig]))
        blob = enc.replace(cbor2.dumps("k") + b"\x01", cbor2.dumps("k") + b"\xf7")
    elif case == "deep-nesting":
        nested: Any = 1
        for _ in range(100):
            nested = [nested]
        unprotected["deep"] = nested
    elif case == "huge-length":
        blob = b"\xd2\x84\x5b\xff\xff\xff\xff\xff\xff\xff\xff"
    if blob is None:
        blob = cbor2.dumps(cbor2.CBORTag(18, items))
    with pytest.raises(EnvelopeError):
        cose.open_envelope(blob)


def test_cose_unknown_unprotected_labels_are_ignored(make_keypair: Callable[..., Any]) -> None:
    signer = signer_for(make_keypair)
    content = cose.open_envelope(craft_cose(signer, cose_headers(), unprotected={33: der_chain(signer), "x": [1, "y"],
                                                                                 99: {"a": b"b"}}))
    assert content.signing_agent is None


def test_open_rejects_oversized_and_non_bytes() -> None:
    for mod in FORMATS.values():
        with pytest.raises(EnvelopeError, match="exceeds"):
            mod.open_envelope(b"\xd2\x84" + b" " * (32 * 1024 * 1024))
        with pytest.raises(EnvelopeError):
            mod.open_envelope("text")


def test_plugins_registered(pm: Any) -> None:
    assert pm.envelope_format("jws").open is jws.open_envelope
    assert pm.envelope_format(MT_COSE).seal is cose.seal
    assert pm.envelope_format(MT_JWS).name == "jws"


# --- fuzzing -------------------------------------------------------------------------------------
def _signed_view(c: EnvelopeContent) -> tuple[Any, ...]:
    return (c.media_type, c.payload, c.payload_content_type, c.signing_scheme, c.signature_algorithm, c.signature,
            c.signing_time, c.authentic_signing_time, c.expiry, c.verification_plugin,
            c.verification_plugin_min_version, dict(c.extended_attributes), c.critical,
            c.certificate_chain[0].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


_FUZZ_CACHE: dict[str, tuple[bytes, EnvelopeContent]] = {}


def _fuzz_sample(fmt: str, tmp_factory: pytest.TempPathFactory) -> tuple[bytes, EnvelopeContent]:
    if fmt not in _FUZZ_CACHE:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(7).not_valid_before(T0 - dt.timedelta(days=1)).not_valid_after(T0 + dt.timedelta(days=1))
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .sign(key, hashes.SHA256()))
        signer = FileSigner(key, [cert])
        blob = FORMATS[fmt].seal(request(fmt, expiry=T0 + dt.timedelta(hours=1), signing_agent="fuzz/1",
                                         extended_attributes={"e": "v"}, critical_attributes=("e",)), signer)
        _FUZZ_CACHE[fmt] = (blob, FORMATS[fmt].open_envelope(blob))
    return _FUZZ_CACHE[fmt]


@st.composite
def mutations(draw: st.DrawFn, size: int) -> tuple[str, int, bytes]:
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "xor"]))
    pos = draw(st.integers(0, size - 1))
    data = draw(st.binary(min_size=1, max_size=4))
    return kind, pos, data


def _apply(blob: bytes, m: tuple[str, int, bytes]) -> bytes:
    kind, pos, data = m
    if kind == "replace":
        return blob[:pos] + data + blob[pos + len(data):]
    if kind == "insert":
        return blob[:pos] + data + blob[pos:]
    if kind == "delete":
        return blob[:pos] + blob[pos + len(data):]
    if kind == "truncate":
        return blob[:pos]
    return blob[:pos] + bytes([blob[pos] ^ (data[0] or 1)]) + blob[pos + 1:]


@pytest.mark.parametrize("fmt", ["jws", "cose"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_envelopes(fmt: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Mutations of a valid envelope only ever raise EnvelopeError, or leave every signed field intact.

    A mutation may succeed only if it touched unsigned material: the signing agent, an unknown
    unprotected header, JSON whitespace/escaping outside signed strings, or the certificate
    bytes outside the leaf's public key — in that last case the certificate chain rules fail.
    """
    blob, original = _fuzz_sample(fmt, tmp_path_factory)
    m = data.draw(mutations(len(blob)))
    mutated = _apply(blob, m)
    if mutated == blob:
        return
    try:
        content = FORMATS[fmt].open_envelope(mutated)
    except EnvelopeError:
        return
    assert _signed_view(content) == _signed_view(original), f"mutation {m} changed signed content"
    chain = [c.public_bytes(Encoding.DER) for c in content.certificate_chain]
    if chain != [c.public_bytes(Encoding.DER) for c in original.certificate_chain]:
        with pytest.raises(CertificateChainError):
            validate_signing_chain(content.certificate_chain)


@pytest.mark.parametrize("fmt", ["jws", "cose"])
@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=300))
def test_fuzz_random_bytes(fmt: str, blob: bytes) -> None:
    with pytest.raises(EnvelopeError):
        FORMATS[fmt].open_envelope(b"\xd2\x84" + blob if fmt == "cose" and blob[:1] != b"\xff" else blob)


@settings(max_examples=300, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.binary(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3) | st.integers(), children,
                                                                     max_size=3), max_leaves=10))
def test_fuzz_cose_structures(value: Any) -> None:
    """Arbitrary CBOR inside a COSE_Sign1 tag never escapes as another exception type."""
    shapes = ([value, value, value, value], [b"", value, b"x", b"y"], [cbor2.dumps(value), {33: value}, b"x", b"y"])
    for items in shapes:
        with pytest.raises(EnvelopeError):
            cose.open_envelope(cbor2.dumps(cbor2.CBORTag(18, items)))


def test_raw_signature_helpers() -> None:
    from ocisign.envelope.algorithms import der_ecdsa, raw_ecdsa, resolve_algorithm, verify_raw_signature

    key = ec.generate_private_key(ec.SECP521R1())
    der = key.sign(b"data", ec.ECDSA(hashes.SHA512()))
    raw = raw_ecdsa(der, key.curve)
    assert len(raw) == 132 and raw == raw_ecdsa(der, 66) == raw_ecdsa(der, BY_KEY_SPEC["EC-521"])
    assert der_ecdsa(raw, 66) == der
    for alg in ("EC-521", "ES512", "ECDSA-SHA-512", BY_KEY_SPEC["EC-521"]):
        verify_raw_signature(key.public_key(), alg, b"data", raw, pss_salt_auto=False)
    with pytest.raises(EnvelopeError, match="signature is invalid"):
        verify_raw_signature(key.public_key(), "ES512", b"datA", raw, pss_salt_auto=False)
    with pytest.raises(EnvelopeError, match="does not match"):
        verify_raw_signature(key.public_key(), "ES256", b"data", raw, pss_salt_auto=False)
    with pytest.raises(EnvelopeError, match="132"):
        verify_raw_signature(key.public_key(), "ES512", b"data", der, pss_salt_auto=False)
    with pytest.raises(VerificationError):
        resolve_algorithm("HS256")


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize("text", [
    "2024-05-06T07:08:09Z".translate(ARABIC_INDIC),  # every digit
    "٢024-05-06T07:08:09Z",  # one digit of the year
    "2024-05-06T07:08:09.٥Z",  # the fraction
    "2024-05-06T07:08:09+0٨:00",  # the offset
    "2024-05-06T07:08:09+08:00".replace("09", "٠٩"),  # the seconds, with an offset (not the fast path)
    "2024-05-06T07:08:0\uff19Z",  # a fullwidth digit
])
def test_rfc3339_times_take_ascii_digits_only(text: str) -> None:
    """Go's time.Parse reads ASCII digits only; ``\\d`` and ``int()`` would take any Unicode digit."""
    assert not text.isascii()
    with pytest.raises(EnvelopeError, match="not an RFC 3339 date-time"):
        parse_time(text, where=STIME)


def test_jws_signing_time_in_arabic_indic_digits_is_refused(make_keypair: Callable[..., Any]) -> None:
    """notation-core-go decodes the protected header into a time.Time: non-ASCII digits fail
    ("jws envelope protected header can't be decoded", an InvalidSignatureError: integrity)."""
    signer = signer_for(make_keypair)
    assert jws.open_envelope(craft_jws(signer, jws_headers())).signing_time == T0  # the same, in ASCII: fine
    h = jws_headers(**{STIME: "2024-05-06T07:08:09Z".translate(ARABIC_INDIC)})
    with pytest.raises(EnvelopeError, match=f"{STIME}: .* is not an RFC 3339 date-time") as info:
        jws.open_envelope(craft_jws(signer, h))
    assert info.value.check == "integrity"
    extra: dict[str, Any] = {EXPIRY: "2030-01-01T00:00:00Z".translate(ARABIC_INDIC), "crit": [SCHEME, EXPIRY]}
    h = jws_headers(**extra)
    with pytest.raises(EnvelopeError, match=f"{EXPIRY}: .* is not an RFC 3339 date-time"):
        jws.open_envelope(craft_jws(signer, h))
