"""``sign --timestamp-url/--timestamp-root-cert``: RFC 3161 timestamps at sign time, against a real loopback TSA."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocisign.oci.model import MT_COSE, MT_JWS
from ocisign.testing.tsa import TestTSA, make_tsa_pki, parse_request

SCOPE = "local/test"
TS_HEADER = "io.cncf.notary.timestampSignature"
HASH_OIDS = {"sha256": "2.16.840.1.101.3.4.2.1", "sha384": "2.16.840.1.101.3.4.2.2",
             "sha512": "2.16.840.1.101.3.4.2.3"}


# --- fixtures and helpers ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_tsa() -> Iterator[TestTSA]:
    with TestTSA() as tsa:
        yield tsa


@pytest.fixture
def tsa(shared_tsa: TestTSA) -> Iterator[TestTSA]:
    """The module's TSA, answering correctly, its request log cleared."""
    shared_tsa.mode = "ok"
    shared_tsa.requests.clear()
    yield shared_tsa
    shared_tsa.mode = "ok"


class Env:
    """A config dir with a trusted signing key, the TSA root file and a fresh layout."""

    def __init__(self, run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
                 config_dir: Path, tmp_path: Path, tsa: TestTSA) -> None:
        self.run = run_cli
        self.make_keypair = make_keypair
        self.config_dir = config_dir
        self.tmp = tmp_path
        self.tsa = tsa
        self.layout = make_layout()
        self.ref = f"{self.layout}:v1"
        self.root_file = tsa.pki.write_root(tmp_path / "tsa-root.pem")
        self.keys = 0

    def add_key(self, kind: str = "rsa2048", **kw: Any) -> Any:
        """Generate a key with a 2-cert chain, make it the default key and trust its root in ca:acme."""
        from cryptography.hazmat.primitives.serialization import Encoding

        kp = self.make_keypair(kind, chain_len=2, **kw)
        self.keys += 1
        res = self.run("key", "add", f"k{self.keys}", "--key-file", str(kp.key_path), "--cert-file",
                       str(kp.cert_path), "--default")
        assert res.rc == 0, res.err
        root = self.tmp / f"k{self.keys}-root.pem"
        root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
        assert self.run("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
        return kp

    def trust_tsa(self, store: str = "acme-tsa") -> None:
        res = self.run("cert", "add", "-t", "tsa", "-s", store, str(self.root_file))
        assert res.rc == 0, res.err

    def policy(self, stores: tuple[str, ...] = ("ca:acme", "tsa:acme-tsa"), **sv: Any) -> None:
        statement = {"name": "test", "registryScopes": [SCOPE],
                     "signatureVerification": {"level": "strict", **sv},
                     "trustStores": list(stores), "trustedIdentities": ["*"]}
        (self.config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0",
                                                                      "trustPolicies": [statement]}))

    def sign(self, *args: str, url: str | None = None, root: Path | None = None) -> Any:
        return self.run("sign", "--oci-layout", self.ref, "--timestamp-url", url or self.tsa.url,
                        "--timestamp-root-cert", str(root or self.root_file), *args)

    def verify(self) -> Any:
        return self.run("verify", "--oci-layout", self.ref, "--scope", SCOPE, "-o", "json")

    def envelope(self) -> tuple[str, bytes]:
        """(media type, bytes) of the layout's only signature envelope."""
        index = json.loads((self.layout / "index.json").read_text())
        found = []
        for entry in index["manifests"]:
            manifest = json.loads(_blob(self.layout, entry["digest"]).read_bytes())
            if "subject" in manifest:
                found.append(manifest["layers"][0])
        assert len(found) == 1
        return found[0]["mediaType"], _blob(self.layout, found[0]["digest"]).read_bytes()


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def env(run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
        config_dir: Path, tmp_path: Path, tsa: TestTSA) -> Env:
    return Env(run_cli, make_keypair, make_layout, config_dir, tmp_path, tsa)


def _token_and_signature(media_type: str, blob: bytes) -> tuple[bytes, bytes]:
    """(timestamp token, primitive signature bytes) read straight from the envelope encoding."""
    if media_type == MT_JWS:
        doc = json.loads(blob)
        text = doc["header"][TS_HEADER]
        token = base64.b64decode(text, validate=True)
        assert text == base64.b64encode(token).decode()  # standard alphabet, with padding
        assert list(doc["header"]) == [TS_HEADER, "x5c", "io.cncf.notary.signingAgent"]
        sig_b64 = doc["signature"]
        return token, base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    import cbor2

    assert media_type == MT_COSE
    msg = cbor2.loads(blob)
    assert msg.tag == 18
    unprotected = msg.value[1]
    assert isinstance(unprotected[TS_HEADER], bytes)
    return unprotected[TS_HEADER], msg.value[3]


# --- signing with a timestamp --------------------------------------------------------------------------
@pytest.mark.parametrize(("fmt", "kind", "hash_name"), [
    ("jws", "rsa2048", "sha256"),
    ("cose", "rsa2048", "sha256"),
    ("jws", "ec384", "sha384"),
    ("cose", "ec521", "sha512"),
])
def test_sign_attaches_a_verified_timestamp(env: Env, fmt: str, kind: str, hash_name: str) -> None:
    from ocisign.verify.timestamp import verify_countersignature
    from ocisign.verify.timestamp_token import parse_token, parse_tst_info

    env.add_key(kind)
    res = env.sign("--signature-format", fmt)
    assert res.rc == 0, res.err
    assert res.out.startswith("Successfully signed ")
    media_type, blob = env.envelope()
    assert media_type == (MT_JWS if fmt == "jws" else MT_COSE)
    token, signature = _token_and_signature(media_type, blob)

    # exactly one request, as notation's HTTP timestamper sends it
    [req] = env.tsa.requests
    assert req.headers["Content-Type"] == "application/timestamp-query"
    assert not any(h.lower() in ("authorization", "cookie") for h in req.headers)
    parsed = parse_request(req.body)
    assert parsed.version == 1 and parsed.cert_req and parsed.nonce is not None and parsed.nonce > 0
    assert parsed.hash_oid == HASH_OIDS[hash_name]
    assert parsed.imprint == hashlib.new(hash_name, signature).digest()

    info = parse_tst_info(parse_token(token).content)
    assert info.nonce == parsed.nonce and info.hashed_message == parsed.imprint
    stamp = verify_countersignature(token, signature, [env.tsa.pki.root])
    assert abs(stamp.gen_time - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=1)

    env.trust_tsa()
    env.policy()
    res = env.verify()
    assert res.rc == 0 and json.loads(res.out)["verified"] is True, res.out


def test_inspect_shows_the_timestamp(env: Env) -> None:
    from ocisign.x509.chain import cert_fingerprint_sha256

    env.add_key()
    assert env.sign().rc == 0
    res = env.run("inspect", "--oci-layout", env.ref, "-o", "json")
    assert res.rc == 0, res.err
    [sig] = json.loads(res.out)["Signatures"]
    ts = sig["unsignedAttributes"]["timestampSignature"]
    assert "error" not in ts
    lo, hi = ts["timestamp"].strip("[]").split(", ")
    lo_t, hi_t = (dt.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (lo, hi))
    assert hi_t - lo_t == dt.timedelta(seconds=2)  # genTime ± 1 s accuracy
    assert [c["SHA256Fingerprint"] for c in ts["certificates"]] == [cert_fingerprint_sha256(env.tsa.pki.tsa_cert)]
    tree = env.run("inspect", "--oci-layout", env.ref)
    assert tree.rc == 0
    assert any(line.strip(" │├└─").startswith("timestamp signature") for line in tree.out.splitlines())
    assert any(line.strip(" │├└─").startswith("timestamp: [") for line in tree.out.splitlines())


def test_tsa_policy_requires_the_timestamp(env: Env) -> None:
    env.add_key()
    env.trust_tsa()
    env.policy()
    assert env.run("sign", "--oci-layout", env.ref).rc == 0  # no timestamp
    res = env.verify()
    assert res.rc == 1
    [sig] = json.loads(res.out)["signatures"]
    assert "no timestamp countersignature" in json.dumps(sig)


def test_timestamp_from_an_untrusted_tsa_fails_verification(env: Env, tmp_path: Path) -> None:
    env.add_key()
    assert env.sign().rc == 0
    other = make_tsa_pki(cn="another TSA")
    other_root = other.write_root(tmp_path / "other-root.pem")
    assert env.run("cert", "add", "-t", "tsa", "-s", "acme-tsa", str(other_root)).rc == 0
    env.policy()
    assert env.verify().rc == 1


def _verify_at(pm: Any, env: Env, when: dt.datetime) -> Any:
    from ocisign.config.configdir import ConfigDir
    from ocisign.verify.verification import verify_artifact

    target = pm.open_layout(env.layout)
    try:
        return verify_artifact(pm, ConfigDir(env.config_dir), target, "v1", location=str(env.layout), scope=SCOPE,
                               verification_time=when)
    finally:
        target.close()


def test_timestamp_keeps_a_signature_valid_after_the_signing_cert_expired(env: Env, pm: Any) -> None:
    kp = env.add_key()
    leaf_expiry = kp.chain[0].not_valid_after_utc
    assert env.sign().rc == 0
    env.trust_tsa()
    later = leaf_expiry + dt.timedelta(days=2)  # both signing certs have expired; the TSA's are valid for years

    env.policy()
    assert _verify_at(pm, env, dt.datetime.now(dt.timezone.utc)).verified
    report = _verify_at(pm, env, later)
    assert report.verified, report.message

    env.policy(stores=("ca:acme",))  # no tsa store: the expired chain must be valid now
    report = _verify_at(pm, env, later)
    assert not report.verified and report.failed_check == "authenticTimestamp", report.message

    env.policy(verifyTimestamp="afterCertExpiry")
    assert _verify_at(pm, env, later).verified


def test_expired_signature_without_timestamp_fails(env: Env, pm: Any) -> None:
    kp = env.add_key()
    assert env.run("sign", "--oci-layout", env.ref).rc == 0
    env.trust_tsa()
    env.policy()
    report = _verify_at(pm, env, kp.chain[0].not_valid_after_utc + dt.timedelta(days=2))
    assert not report.verified and report.failed_check == "authenticTimestamp"


def test_tsa_with_intermediate_and_ec_key(run_cli: Callable[..., Any], make_keypair: Callable[..., Any],
                                          make_layout: Callable[..., Path], config_dir: Path, tmp_path: Path) -> None:
    with TestTSA(make_tsa_pki(key="ec256", intermediate=True)) as tsa:
        e = Env(run_cli, make_keypair, make_layout, config_dir, tmp_path, tsa)
        e.add_key("ec256")
        res = e.sign("--signature-format", "cose")
        assert res.rc == 0, res.err
        e.trust_tsa()
        e.policy()
        assert e.verify().rc == 0


def test_der_root_cert_file_is_accepted(env: Env, tmp_path: Path) -> None:
    env.add_key()
    der_root = env.tsa.pki.write_root(tmp_path / "root.der", der=True)
    res = env.sign(root=der_root)
    assert res.rc == 0, res.err


# --- a misbehaving TSA fails the sign and changes nothing ----------------------------------------------
@pytest.mark.parametrize("mode", ["wrong-imprint", "wrong-nonce", "no-nonce", "reject", "untrusted-root",
                                  "bad-signature", "garbage", "slow", "http-error", "wrong-content-type",
                                  "oversized", "no-token"])
def test_misbehaving_tsa_fails_the_sign(env: Env, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocisign.sign.timestamping

    monkeypatch.setattr(ocisign.sign.timestamping, "DEFAULT_TIMEOUT", 0.5)
    env.add_key()
    env.tsa.mode = mode
    env.tsa.delay = 3.0
    before = _snapshot(env.layout)
    res = env.sign()
    assert res.rc == 1, (res.out, res.err)
    assert "timestamping" in res.err and "Traceback" not in res.err
    assert [line for line in res.err.splitlines() if not line.startswith("Warning:")] == [
        line for line in res.err.splitlines() if line.startswith("Error: timestamping:")]
    assert res.out == ""
    assert _snapshot(env.layout) == before
    assert len(env.tsa.requests) == 1


def test_unreachable_tsa_fails_the_sign(env: Env) -> None:
    from ocisign.testing.registry import free_port

    env.add_key()
    before = _snapshot(env.layout)
    res = env.sign(url=f"http://127.0.0.1:{free_port()}/tsa")
    assert res.rc == 1 and "cannot reach TSA" in res.err
    assert _snapshot(env.layout) == before


@pytest.mark.parametrize(("what", "pki_kw"), [
    ("eku-not-critical", {"eku_critical": False}),
    ("eku-extra", {"eku": ("1.3.6.1.5.5.7.3.8", "1.3.6.1.5.5.7.3.3")}),
    ("no-eku", {"eku": ()}),
    ("expired-tsa-cert", {"not_before": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
                          "not_after": dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc)}),
    ("unreachable-crl", {"crl_url": "http://127.0.0.1:9/tsa.crl"}),
])
def test_tsa_certificate_rules_are_enforced_at_sign(
    run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
    config_dir: Path, tmp_path: Path, what: str, pki_kw: dict[str, Any],
) -> None:
    with TestTSA(make_tsa_pki(**pki_kw)) as tsa:
        e = Env(run_cli, make_keypair, make_layout, config_dir, tmp_path, tsa)
        e.add_key()
        before = _snapshot(e.layout)
        res = e.sign()
        assert res.rc == 1, what
        assert "timestamping" in res.err
        assert _snapshot(e.layout) == before


@pytest.mark.parametrize("crl", ["good", "revoked"])
def test_tsa_chain_revocation_is_checked_at_sign(
    run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
    config_dir: Path, tmp_path: Path, crl: str,
) -> None:
    with TestTSA(crl=crl) as tsa:
        e = Env(run_cli, make_keypair, make_layout, config_dir, tmp_path, tsa)
        e.add_key()
        before = _snapshot(e.layout)
        res = e.sign()
        assert tsa.crl_requests >= 1
        if crl == "good":
            assert res.rc == 0, res.err
            return
        assert res.rc == 1
        assert "timestamping certificate with subject" in res.err and "is revoked" in res.err
        assert _snapshot(e.layout) == before


def test_tsa_time_outside_the_signing_cert_validity_fails(env: Env) -> None:
    env.add_key()
    env.tsa.gen_time = lambda: dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=30)
    try:
        res = env.sign()
    finally:
        env.tsa.gen_time = lambda: dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert res.rc == 1 and "outside the validity" in res.err


# --- flags ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("--timestamp-url", "URL"),
    ("--timestamp-root-cert", "ROOT"),
])
def test_timestamp_flags_go_together(env: Env, args: tuple[str, str]) -> None:
    env.add_key()
    value = env.tsa.url if args[1] == "URL" else str(env.root_file)
    before = _snapshot(env.layout)
    res = env.run("sign", "--oci-layout", env.ref, args[0], value)
    assert res.rc == 2
    assert "--timestamp-url and --timestamp-root-cert must be given together" in res.err
    assert env.tsa.requests == [] and _snapshot(env.layout) == before


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/tsa", "127.0.0.1:8080/tsa", "http:///tsa", "",
                                 "http://user:secret@127.0.0.1/tsa", "http://127.0.0.1:99999/tsa"])
def test_bad_timestamp_url_is_a_usage_error(env: Env, url: str) -> None:
    env.add_key()
    res = env.sign(url=url) if url else env.run("sign", "--oci-layout", env.ref, "--timestamp-url", "",
                                                "--timestamp-root-cert", str(env.root_file))
    assert res.rc == 2, res.err
    assert "secret" not in res.err
    assert env.tsa.requests == []


def test_root_cert_file_must_be_a_single_self_signed_root(env: Env, tmp_path: Path,
                                                          make_keypair: Callable[..., Any]) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    env.add_key()
    pki = env.tsa.pki
    other = make_tsa_pki(cn="other", intermediate=True)
    signing = make_keypair("rsa2048", chain_len=1)  # a self-signed leaf, not a CA
    cases = {
        "two-roots.pem": pki.root_pem() + other.root_pem(),
        "tsa-leaf.pem": pki.tsa_cert.public_bytes(Encoding.PEM),
        "intermediate.pem": other.issuers[0].public_bytes(Encoding.PEM),
        "self-signed-leaf.pem": signing.chain[0].public_bytes(Encoding.PEM),
        "garbage.pem": b"not a certificate\n",
        "empty.pem": b"",
        "key.pem": signing.key_path.read_bytes(),
    }
    before = _snapshot(env.layout)
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        res = env.sign(root=path)
        assert res.rc == 2, (name, res.err)
        assert "--timestamp-root-cert" in res.err and "Traceback" not in res.err, name
    res = env.sign(root=tmp_path / "missing.pem")
    assert res.rc == 2 and "cannot read" in res.err
    assert env.tsa.requests == [] and _snapshot(env.layout) == before


def test_other_root_than_the_tsa_chain_fails(env: Env, tmp_path: Path) -> None:
    env.add_key()
    root = make_tsa_pki(cn="unrelated").write_root(tmp_path / "unrelated.pem")
    before = _snapshot(env.layout)
    res = env.sign(root=root)
    assert res.rc == 1 and "does not verify against --timestamp-root-cert" in res.err
    assert _snapshot(env.layout) == before


# --- units ---------------------------------------------------------------------------------------------
def test_request_encoding_is_exact() -> None:
    from ocisign.sign.timestamping import build_request

    req = build_request(b"signature", "sha256", nonce=0x80)
    digest = hashlib.sha256(b"signature").digest()
    expected = (bytes.fromhex("303d020101") + bytes.fromhex("3031300d060960864801650304020105000420") + digest
                + bytes.fromhex("0202008001 01ff".replace(" ", "")))
    assert req.der == expected
    assert build_request(b"s", "sha256").nonce != build_request(b"s", "sha256").nonce


def test_rejection_reply_names_status_and_failure() -> None:
    from ocisign.errors import SigningError
    from ocisign.sign.timestamping import parse_response
    from ocisign.testing.tsa import make_response

    with pytest.raises(SigningError, match=r"status rejection \(badAlg; nope\)"):
        parse_response(make_response(2, text="nope", failure_bit=0))
    with pytest.raises(SigningError, match="status waiting"):
        parse_response(make_response(3))
    with pytest.raises(SigningError, match="not a valid TimeStampResp"):
        parse_response(b"\x30\x03\x02\x01")
