"""A stream of signatures verified in one process: per-chain memos never stand in for a check.

The policy checks remember what is a pure function of the certificates (chain rules, authenticity
against a set of trusted certificates, trusted identity per statement, validity windows, revocation
of a chain no server is asked about); every envelope's signature is still verified, and a different
trust store, statement or time gives its own answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ocisign.plugins.file_key import load_file_signer
from ocisign.plugins.trust_policy import SignatureVerdict, evaluate_signature

from ocisign.config.trustpolicy import TrustPolicyStatement, parse_policy
from ocisign.envelope.encoding import b64url_decode_strict
from ocisign.envelope.errors import EnvelopeError
from ocisign.envelope.payload import build_payload
from ocisign.envelope.times import parse_time
from ocisign.oci.model import MT_COSE, MT_JWS, MT_MANIFEST, Descriptor
from ocisign.types import SignatureBlob, SignRequest
from ocisign.verify.revocation import RevocationChecker
from ocisign.verify.verification import envelope_opener


def _statement(identities: Sequence[str], level: str = "strict") -> TrustPolicyStatement:
    doc = parse_policy(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "stream", "registryScopes": ["*"], "signatureVerification": {"level": level},
        "trustStores": ["ca:stream"], "trustedIdentities": list(identities)}]}).encode(), where="test")
    return doc.statement_for_scope("a.io/b")


def _subject(i: int) -> Descriptor:
    return Descriptor(media_type=MT_MANIFEST, digest="sha256:" + hashlib.sha256(b"%d" % i).hexdigest(), size=100 + i)


@pytest.fixture
def stream(make_keypair: Callable[..., Any], pm: Any) -> dict[str, Any]:
    """Five envelopes per format, each over another subject at another second, by one signer (chain of 2)."""
    kp = make_keypair("ec256", chain_len=2, cn="stream signer")
    signer = load_file_signer(kp.key_path, kp.cert_path)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    out: dict[str, Any] = {"chain": kp.chain}
    for mt in (MT_JWS, MT_COSE):
        fmt = pm.envelope_format(mt)
        envelopes = []
        for i in range(5):
            t = now - dt.timedelta(seconds=i)
            req = SignRequest(payload=build_payload(_subject(i), envelope_media_type=mt), signing_time=t,
                              expiry=t + dt.timedelta(hours=1))
            envelopes.append((_subject(i), fmt.seal(req, signer)))
        out[mt] = envelopes
    return out


def _evaluate(pm: Any, mt: str, subject: Descriptor, blob: bytes, statement: TrustPolicyStatement,
              trusted: Sequence[Any], *, now: dt.datetime | None = None,
              checker: RevocationChecker | None = None) -> SignatureVerdict:
    def lookup(store_type: str, name: str) -> Sequence[Any] | None:
        return list(trusted) if (store_type, name) == ("ca", "stream") else None

    return evaluate_signature(
        0, SignatureBlob(manifest=None, media_type=mt, envelope=blob), statement=statement, subject=subject,
        user_metadata={}, now=now or dt.datetime.now(dt.timezone.utc), trust_store=lookup,
        open_envelope=envelope_opener(pm), revocation=checker or RevocationChecker(),
    )


@pytest.mark.parametrize("mt", [MT_JWS, MT_COSE])
def test_every_envelope_of_a_stream_is_verified_for_real(stream: dict[str, Any], pm: Any, mt: str) -> None:
    """The same chain in every envelope is remembered; a signature moved onto another envelope still fails."""
    root = stream["chain"][-1]
    statement = _statement(["x509.subject: C=US, ST=WA, O=Notary"])
    checker = RevocationChecker()
    for subject, blob in stream[mt]:
        verdict = _evaluate(pm, mt, subject, blob, statement, [root], checker=checker)
        assert verdict.passed, verdict.reason
    first = pm.envelope_format(mt).open(stream[mt][0][1]).signature
    second = pm.envelope_format(mt).open(stream[mt][1][1]).signature
    assert first != second
    if mt == MT_JWS:
        obj = json.loads(stream[mt][1][1])
        other = json.loads(stream[mt][0][1])
        obj["signature"] = other["signature"]
        forged = json.dumps(obj).encode()
    else:
        forged = stream[mt][1][1].replace(second, first)
        assert forged != stream[mt][1][1]
    verdict = _evaluate(pm, mt, stream[mt][1][0], forged, statement, [root], checker=checker)
    assert verdict.failing_check == "integrity"
    assert "signature is invalid" in verdict.reason


def test_authenticity_follows_the_trust_store_not_the_memo(stream: dict[str, Any], pm: Any,
                                                           make_keypair: Callable[..., Any]) -> None:
    root = stream["chain"][-1]
    stranger = make_keypair("ec256", chain_len=2, cn="stranger").chain[-1]
    statement = _statement(["*"])
    subject, blob = stream[MT_JWS][0]
    for trusted, passes in (([root], True), ([stranger], False), ([stranger, root], True), ([stranger], False)):
        verdict = _evaluate(pm, MT_JWS, subject, blob, statement, trusted)
        assert verdict.passed is passes, verdict.reason
        if not passes:
            assert verdict.failing_check == "authenticity"
            assert verdict.reason == "the signature's certificate chain does not contain any trusted certificate"


def test_trusted_identity_is_decided_per_statement(stream: dict[str, Any], pm: Any) -> None:
    root = stream["chain"][-1]
    good, bad = _statement(["x509.subject: C=US, ST=WA, O=Notary"]), _statement(["x509.subject: C=US, ST=WA, O=Other"])
    subject, blob = stream[MT_JWS][0]
    for statement, passes in ((good, True), (bad, False), (good, True), (bad, False)):
        verdict = _evaluate(pm, MT_JWS, subject, blob, statement, [root])
        assert verdict.passed is passes
        if not passes:
            assert verdict.failing_check == "trustedIdentity"
            assert "does not match the X.509 trusted identities" in verdict.reason


def test_validity_is_judged_at_each_verification_time(stream: dict[str, Any], pm: Any) -> None:
    root = stream["chain"][-1]
    statement = _statement(["*"])
    subject, blob = stream[MT_COSE][0]
    assert _evaluate(pm, MT_COSE, subject, blob, statement, [root]).passed
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
    verdict = _evaluate(pm, MT_COSE, subject, blob, statement, [root], now=later)
    assert verdict.failing_check == "expiry"  # the signature expires after an hour
    lenient = _statement(["*"], level="permissive")  # expiry and certificate validity are logged
    verdict = _evaluate(pm, MT_COSE, subject, blob, lenient, [root], now=later)
    logged = {r.check: r.message for r in verdict.logged}
    assert verdict.passed and set(logged) == {"expiry", "authenticTimestamp"}
    assert logged["authenticTimestamp"].startswith('verification time is after certificate "CN=stream signer')
    assert _evaluate(pm, MT_COSE, subject, blob, statement, [root]).passed


def test_a_chain_no_server_is_asked_about_is_decided_once(stream: dict[str, Any]) -> None:
    chain = stream["chain"]
    checker = RevocationChecker()
    first = checker.check_chain(chain)
    assert first.ok and checker.check_chain(chain) is first
    offline = checker.check_chain(chain, offline_reason="not trusted")
    assert offline is not first and offline.to_json() == first.to_json()  # no endpoints: nothing to be unknown
    assert RevocationChecker().check_chain(chain) is first  # a pure function of the certificates


@pytest.mark.parametrize(("text", "result"), [
    ("", b""), ("QQ", b"A"), ("QUI", b"AB"), ("QUJD", b"ABC"), ("-_8", b"\xfb\xff"),
    ("QR", None), ("QUJ", None), ("QQ==", None), ("QQ=", None), ("+/8", None), ("Q", None), ("QU JD", None),
    ("QUJD\n", None), ("QU=D", None), ("é", None),
])
def test_b64url_is_canonical_and_unpadded(text: str, result: bytes | None) -> None:
    if result is None:
        with pytest.raises(EnvelopeError):
            b64url_decode_strict(text, where="x")
    else:
        assert b64url_decode_strict(text, where="x") == result


@pytest.mark.parametrize(("text", "result"), [
    ("2026-12-06T10:00:00Z", dt.datetime(2026, 12, 6, 10, tzinfo=dt.timezone.utc)),
    ("2026-12-06T10:00:00.5Z", dt.datetime(2026, 12, 6, 10, 0, 0, 500000, tzinfo=dt.timezone.utc)),
    ("2026-12-06T10:00:00+01:30", dt.datetime(2026, 12, 6, 8, 30, tzinfo=dt.timezone.utc)),
    ("2026-02-30T10:00:00Z", None), ("2026-12-06T24:00:00Z", None), ("2026-12-06t10:00:00Z", None),
    ("2026-12-06 10:00:00Z", None), ("+026-12-06T10:00:00Z", None),
])
def test_rfc3339_times(text: str, result: dt.datetime | None) -> None:
    if result is None:
        with pytest.raises(EnvelopeError):
            parse_time(text, where="t")
    else:
        parsed = parse_time(text, where="t")
        assert parsed == result and parsed.utcoffset() is not None


def test_envelope_content_filled_directly_equals_the_constructed_one(stream: dict[str, Any], pm: Any) -> None:
    """new_content skips the frozen dataclass __init__; the result must be the same object in every respect."""
    import dataclasses

    from ocisign.envelope.content import new_content
    from ocisign.types import EnvelopeContent

    opened = pm.envelope_format(MT_JWS).open(stream[MT_JWS][0][1])
    values = {f.name: getattr(opened, f.name) for f in dataclasses.fields(opened)}
    built = EnvelopeContent(**values)
    direct = new_content(**values)
    assert type(direct) is EnvelopeContent and direct == built == opened and repr(direct) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        direct.payload = b"x"  # type: ignore[misc]
    for fmt in (MT_JWS, MT_COSE):  # later opens fill the instance directly (verified_content): the same again
        for _subject, blob in stream[fmt][:3]:
            again = pm.envelope_format(fmt).open(blob)
            rebuilt = EnvelopeContent(**{f.name: getattr(again, f.name) for f in dataclasses.fields(again)})
            assert again == rebuilt and list(vars(again)) == list(vars(rebuilt))
    from ocisign.envelope import content as content_module

    assert content_module._FILLED_DIRECTLY  # the direct path was taken
    partial = new_content(media_type=MT_JWS, payload=b"p", payload_content_type="t", signing_scheme="s",
                          signature_algorithm="a", certificate_chain=(), signature=b"s")  # defaults: the constructor
    assert partial.critical == () and partial.extended_attributes == {} and partial.expiry is None


_MODULES_PROBE = """
import json, sys
from ocisign.cli.app import main
rc = main(sys.argv[1:])
print(json.dumps([rc, sorted(sys.modules)]))
"""


def test_verify_on_a_layout_imports_no_ssh_key_code_no_plugin_protocol_no_sealing(tmp_path: Path) -> None:
    """A cold ``verify`` of a JWS and a COSE signature: what start-up it no longer pays for (issue 12)."""
    import subprocess
    import sys

    from ocisign.testing.sample_image import write_image_layout

    env = {"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path / "cfg"),
           "OCISIGN_CACHE_DIR": str(tmp_path / "cache")}

    def run(*argv: str) -> tuple[int, set[str]]:
        proc = subprocess.run([sys.executable, "-c", _MODULES_PROBE, *argv], capture_output=True, text=True,
                              timeout=120, env=env)
        assert proc.returncode in (0, 1), proc.stderr
        rc, mods = json.loads(proc.stdout.splitlines()[-1])
        return rc, set(mods)

    write_image_layout(tmp_path / "img")
    ref = f"{tmp_path / 'img'}:v1"
    assert run("cert", "generate-test", "--default", "pin")[0] == 0
    (tmp_path / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:pin"], "trustedIdentities": ["*"]}]}))
    assert run("policy", "import", str(tmp_path / "policy.json"))[0] == 0
    for fmt in ("jws", "cose"):
        assert run("sign", "--oci-layout", ref, "--signature-format", fmt)[0] == 0
    rc, mods = run("verify", "--oci-layout", "--scope", "local/pin", ref)
    assert rc == 0
    assert "ocisign.plugins.trust_policy" in mods and "cryptography.x509" in mods  # it did verify
    assert not mods & {"cryptography.hazmat.primitives.serialization", "cryptography.hazmat.primitives.ciphers",
                       "bcrypt", "ocisign.extplugin.protocol", "ocisign.extplugin.verification",
                       "ocisign.envelope.sealing"}


def test_certificate_der_is_the_parsed_bytes_and_the_encoding(stream: dict[str, Any], pm: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from ocisign.plugins.truststore_files import parse_certificates

    from ocisign.x509.encoding import certificate_der, encoding_enum, public_format_enum

    assert encoding_enum() is Encoding and public_format_enum() is PublicFormat
    opened = pm.envelope_format(MT_COSE).open(stream[MT_COSE][0][1]).certificate_chain
    pem = b"".join(c.public_bytes(Encoding.PEM) for c in stream["chain"])
    loaded = parse_certificates(pem, where="test")
    for cert in (*opened, *loaded, *stream["chain"]):  # parsed from DER, from PEM, built by cryptography
        assert certificate_der(cert) == cert.public_bytes(Encoding.DER)


@pytest.mark.parametrize("digest", [
    "sha256:" + "a" * 64, "sha512:" + "0" * 128, "sha256:" + "a" * 63, "sha256:" + "A" * 64, "sha256:", ":",
    "sha384:" + "a" * 96, "sha256:" + "a" * 64 + "\n", "sha256:" + "\u0663" * 64, "sha256::" + "a" * 63,
    "sha256:" + "a" * 32 + "g" + "a" * 31, "SHA256:" + "a" * 64,
])
def test_digest_ok_agrees_with_validate_digest(digest: str) -> None:
    from ocisign.errors import ContentError
    from ocisign.oci.model import digest_ok, validate_digest

    try:
        validate_digest(digest)
        valid = True
    except ContentError:
        valid = False
    assert digest_ok(digest) is valid


@pytest.mark.parametrize("data", [
    b'{"a":1}', b'[1,2]', b' {"a":1}', b'{"a":1} ', b'{"a":1}\n', b'{"a":1}x', b'{}{}', b'{"a":1,"a":2}',
    b'{"a":[1,{"b":2,"b":3}]}', b'[NaN]', b'{"a":Infinity}', b'{', b'[1,]', b'"s"', b'1', b'', b'{"a":"\\ud800"}',
])
def test_strict_json_scanner_fast_path_equals_the_decoder(data: bytes) -> None:
    """parse_json runs the C scanner directly for text that starts with ``{``/``[``: the same value,
    or the same error as the decoder's own decode()."""
    from ocisign.errors import ContentError
    from ocisign.oci.model import _strict_decoder, parse_json

    try:
        want: object = _strict_decoder().decode(data.decode())
    except ValueError as exc:
        want = f"invalid JSON ({str(exc).splitlines()[0]})"
    try:
        got: object = parse_json(data, where="w")
    except ContentError as exc:
        got = str(exc).removeprefix("w: ")
    assert got == want and type(got) is type(want)


def test_rfc1123z_utc_fast_path_equals_the_general_one() -> None:
    from ocisign.plugins.trust_policy import _rfc1123z

    zero = dt.timezone(dt.timedelta(0))  # a UTC offset that is not the dt.timezone.utc object
    utc = dt.timezone.utc
    for t in (dt.datetime(2026, 12, 6, 9, 5, 7, tzinfo=utc), dt.datetime(999, 1, 4, tzinfo=utc)):
        assert _rfc1123z(t) == _rfc1123z(t.replace(tzinfo=zero))
    assert _rfc1123z(dt.datetime(2026, 12, 6, 9, 5, 7, tzinfo=dt.timezone.utc)) == "Sun, 06 Dec 2026 09:05:07 +0000"
    assert _rfc1123z(dt.datetime(2026, 12, 6, 9, 5, 7, tzinfo=dt.timezone(-dt.timedelta(hours=7)))) == \
        "Sun, 06 Dec 2026 09:05:07 -0700"


def test_rfc3339_notation_form_takes_only_ascii_digits_at_every_digit_place() -> None:
    """The ``…Z`` fast path leaves the digits to CPython's ISO parser: every digit place refuses a
    sign, a space, a letter and a non-ASCII digit, and the result is UTC."""
    good = "2026-12-06T10:20:30Z"
    assert parse_time(good).tzinfo is dt.timezone.utc
    assert parse_time(good) == dt.datetime(2026, 12, 6, 10, 20, 30, tzinfo=dt.timezone.utc)
    places = [i for i, c in enumerate(good) if c.isdigit()]
    assert len(places) == 14
    for i in places:
        for c in ("+", "-", " ", "a", "\u0663", "\uff13", "."):
            bad = good[:i] + c + good[i + 1:]
            with pytest.raises(EnvelopeError):
                parse_time(bad, where="t")
    for bad in ("2026-12-06T24:00:00Z", "2026-02-29T10:20:30Z", "2026-12-06T10:20:60Z", "0000-12-06T10:20:30Z"):
        with pytest.raises(EnvelopeError, match="not a valid RFC 3339 date-time"):
            parse_time(bad, where="t")


def test_plain_descriptor_fast_path_checks_as_the_general_one() -> None:
    from ocisign.errors import ContentError
    from ocisign.oci.model import descriptor_from_json

    digest = "sha256:" + "ab" * 32
    plain = descriptor_from_json({"size": 7, "digest": digest, "mediaType": MT_MANIFEST}, where="t")
    assert plain == Descriptor(media_type=MT_MANIFEST, digest=digest, size=7)
    assert vars(plain) == vars(Descriptor(media_type=MT_MANIFEST, digest=digest, size=7))
    annotated = descriptor_from_json({"mediaType": MT_MANIFEST, "digest": digest, "size": 7, "annotations": {"a": "b"}},
                                     where="t")
    assert annotated.annotations == {"a": "b"}
    for bad in ({"mediaType": "", "digest": digest, "size": 7},
                {"mediaType": MT_MANIFEST, "digest": "sha256:ab", "size": 7},
                {"mediaType": MT_MANIFEST, "digest": digest, "size": -1},
                {"mediaType": MT_MANIFEST, "digest": digest, "size": True}):
        with pytest.raises(ContentError):
            descriptor_from_json(bad, where="t")


@pytest.mark.parametrize("size", [32, 48, 66])
def test_der_ecdsa_equals_cryptography_encoding(size: int) -> None:
    """der_ecdsa encodes r and s itself (no import per envelope): the same DER as cryptography's."""
    import random

    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from ocisign.envelope.algorithms import der_ecdsa

    rng = random.Random(size)
    top = 2 ** (8 * size) - 1
    values = [0, 1, 0x7F, 0x80, 0xFF, 0x100, top, top >> 1, (top >> 1) + 1, 2 ** (8 * size - 9)]
    values += [rng.randrange(top + 1) >> rng.randrange(8 * size) for _ in range(200)]
    for r in values:
        s = rng.choice(values)
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        assert der_ecdsa(raw, size) == encode_dss_signature(r, s), (r, s)
    with pytest.raises(EnvelopeError):
        der_ecdsa(b"\x01" * (2 * size - 1), size)
