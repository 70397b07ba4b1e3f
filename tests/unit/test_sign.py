"""``ocisign sign``: notation's signature manifest byte for byte, envelopes that match notation's, failures."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys
from ocisign.oci.model import EMPTY_JSON_DIGEST, MT_COSE, MT_JWS, MT_MANIFEST, MT_NOTARY_SIGNATURE

NOTATION_LAYOUTS = "notation/test/e2e/testdata/registry/oci_layout"
SUCCESS_RE = re.compile(r"\ASuccessfully signed (?P<ref>.+)@(?P<digest>sha256:[0-9a-f]{64})\n\Z")


def b64url(text: str) -> bytes:
    assert "=" not in text and "+" not in text and "/" not in text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


def index_entries(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "index.json").read_bytes())["manifests"]  # type: ignore[no-any-return]


def blob(root: Path, digest: str) -> bytes:
    data = (root / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


@pytest.fixture
def add_key(config_dir: Path, make_keypair) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    """Generate a key pair, register it in signingkeys.json under ``name``; returns the KeyPair."""

    def _add(name: str, kind: str = "rsa2048", *, default: bool = False, **kw: Any) -> Any:
        kp = make_keypair(kind, **kw)
        with edit_signing_keys(ConfigDir(config_dir)) as keys:
            keys.add(KeyRecord(name=name, key_path=str(kp.key_path), cert_path=str(kp.cert_path)),
                     make_default=default)
        return kp

    return _add


def sign_ok(run_cli, *args: str) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """Run sign, assert success; returns (printed reference, subject digest, stderr)."""
    res = run_cli("sign", *args)
    assert res.rc == 0, res.err
    m = SUCCESS_RE.match(res.out)
    assert m, res.out
    return m.group("ref"), m.group("digest"), res.err


def new_signature(root: Path, before: list[dict[str, Any]]) -> dict[str, Any]:
    after = index_entries(root)
    assert after[: len(before)] == before  # existing entries untouched, in order
    added = after[len(before):]
    assert len(added) == 1
    return added[0]


def check_manifest(root: Path, entry: dict[str, Any], subject: dict[str, Any], envelope_type: str,
                   chain: list[Any]) -> tuple[dict[str, Any], bytes]:
    """The signature manifest is released notation's legacy form, byte for byte; returns (manifest, envelope)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    raw = blob(root, entry["digest"])
    assert entry["mediaType"] == MT_MANIFEST and entry["size"] == len(raw)
    m = json.loads(raw)
    assert list(m) == ["schemaVersion", "mediaType", "config", "layers", "subject", "annotations"]
    assert raw == json.dumps(m, separators=(",", ":")).encode()  # compact, no spaces
    assert m["schemaVersion"] == 2 and m["mediaType"] == MT_MANIFEST and "artifactType" not in m
    assert m["config"] == {"mediaType": MT_NOTARY_SIGNATURE, "digest": EMPTY_JSON_DIGEST, "size": 2}
    assert blob(root, EMPTY_JSON_DIGEST) == b"{}"
    assert len(m["layers"]) == 1 and list(m["layers"][0]) == ["mediaType", "digest", "size"]
    layer = m["layers"][0]
    assert layer["mediaType"] == envelope_type
    envelope = blob(root, layer["digest"])
    assert layer["size"] == len(envelope)
    assert m["subject"] == {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]}
    assert list(m["subject"]) == ["mediaType", "digest", "size"]
    ann = m["annotations"]
    assert list(ann) == ["io.cncf.notary.x509chain.thumbprint#S256", "org.opencontainers.image.created"]
    prints = [hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in chain]
    assert ann["io.cncf.notary.x509chain.thumbprint#S256"] == json.dumps(prints, separators=(",", ":"))
    created = dt.datetime.strptime(ann["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.replace(tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=2)
    # index.json entry: untagged, manifest annotations copied (as oras does), no artifactType
    assert entry == {"mediaType": MT_MANIFEST, "digest": entry["digest"], "size": len(raw), "annotations": ann}
    return m, envelope


def verify_primitive(chain: list[Any], data: bytes, sig: bytes, *, strict_salt: bool) -> str:
    """Verify like Go does (PSS salt = hash length for COSE, raw r||s for ECDSA); returns the alg name."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key = chain[0].public_key()
    if isinstance(key, rsa.RSAPublicKey):
        h = {2048: hashes.SHA256(), 3072: hashes.SHA384(), 4096: hashes.SHA512()}[key.key_size]
        salt = padding.PSS.DIGEST_LENGTH
        key.verify(sig, data, padding.PSS(mgf=padding.MGF1(h), salt_length=salt), h)
        return f"PS{h.digest_size * 8}"
    assert isinstance(key, ec.EllipticCurvePublicKey)
    size = {256: 32, 384: 48, 521: 66}[key.curve.key_size]
    assert len(sig) == 2 * size  # raw r||s, not DER
    h2 = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[key.curve.key_size]
    der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
    key.verify(der, data, ec.ECDSA(h2))
    return f"ES{ {256: 256, 384: 384, 521: 512}[key.curve.key_size] }"


def check_jws(envelope: bytes, chain: list[Any], subject: dict[str, Any], *, annotations: dict[str, str] | None = None,
              expiry: int | None = None) -> dict[str, Any]:
    """JWS envelope exactly as notation writes it."""
    from cryptography.hazmat.primitives.serialization import Encoding

    env = json.loads(envelope)
    assert list(env) == ["payload", "protected", "header", "signature"]
    protected_raw = b64url(env["protected"])
    protected = json.loads(protected_raw)
    assert protected_raw == json.dumps(protected, sort_keys=True, separators=(",", ":")).encode()
    alg = verify_primitive(chain, f"{env['protected']}.{env['payload']}".encode(), b64url(env["signature"]),
                           strict_salt=False)
    assert protected["alg"] == alg
    assert protected["cty"] == "application/vnd.cncf.notary.payload.v1+json"
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", protected["io.cncf.notary.signingTime"])
    crit = ["io.cncf.notary.signingScheme"]
    if expiry is not None:
        crit.append("io.cncf.notary.expiry")
        signed = dt.datetime.strptime(protected["io.cncf.notary.signingTime"], "%Y-%m-%dT%H:%M:%SZ")
        exp = dt.datetime.strptime(protected["io.cncf.notary.expiry"], "%Y-%m-%dT%H:%M:%SZ")
        assert (exp - signed).total_seconds() == expiry
    else:
        assert "io.cncf.notary.expiry" not in protected
    assert protected["crit"] == crit
    assert env["header"]["x5c"] == [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]
    assert env["header"]["io.cncf.notary.signingAgent"] == "ocisign/0.1.0"
    payload = b64url(env["payload"])
    target: dict[str, Any] = {"digest": subject["digest"], "mediaType": subject["mediaType"], "size": subject["size"]}
    if annotations:
        target = {"annotations": dict(sorted(annotations.items())), **target}
    go_json = json.dumps({"targetArtifact": target}, separators=(",", ":")).replace("<", "\\u003c")  # Go escapes
    assert payload == go_json.encode()
    return protected  # type: ignore[no-any-return]


def check_cose(envelope: bytes, chain: list[Any], subject: dict[str, Any]) -> dict[Any, Any]:
    """COSE_Sign1_Tagged exactly as notation writes it."""
    import cbor2
    from cryptography.hazmat.primitives.serialization import Encoding

    assert envelope[:2] == b"\xd2\x84"
    tagged = cbor2.loads(envelope)
    protected_raw, unprotected, payload, sig = tagged.value
    protected = cbor2.loads(protected_raw)
    alg_name = verify_primitive(
        chain, cbor2.dumps(["Signature1", protected_raw, b"", payload]), sig, strict_salt=True
    )
    assert protected[1] == {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}[alg_name]
    assert protected[2] == ["io.cncf.notary.signingScheme"]
    assert protected[3] == "application/vnd.cncf.notary.payload.v1+json"
    assert protected["io.cncf.notary.signingScheme"] == "notary.x509"
    # signing time is CBOR tag 1 wrapping an integer
    key = cbor2.dumps("io.cncf.notary.signingTime")
    at = protected_raw.index(key) + len(key)
    assert protected_raw[at] == 0xC1 and protected_raw[at + 1] >> 5 == 0
    assert list(unprotected[33]) == [c.public_bytes(Encoding.DER) for c in chain]
    assert unprotected["io.cncf.notary.signingAgent"] == "ocisign/0.1.0"
    assert json.loads(payload) == {"targetArtifact": {"mediaType": subject["mediaType"], "digest": subject["digest"],
                                                      "size": subject["size"]}}
    assert list(json.loads(payload)["targetArtifact"]) == ["mediaType", "digest", "size"]  # Go struct order
    return protected  # type: ignore[no-any-return]


# --- tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rsa2048", "ec256"])
@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_sign_conformance_layout_matches_notation(run_cli, copy_conformance_layout, conformance: Path,  # type: ignore[no-untyped-def]
                                                  add_key, kind: str, fmt: str) -> None:
    """A signature made in a copy of ``e2e`` has notation's manifest, index entry and envelope header set."""
    kp = add_key("k", kind, chain_len=2)
    root = copy_conformance_layout("e2e")
    before = index_entries(root)
    subject = before[0]
    ref, digest, err = sign_ok(run_cli, "--oci-layout", f"{root}:v1", "--key", "k", "--signature-format", fmt)
    assert ref == str(root) and digest == subject["digest"]
    assert "Always sign the artifact using digest(@sha256:...) rather than a tag(:v1)" in err
    entry = new_signature(root, before)
    media_type = MT_JWS if fmt == "jws" else MT_COSE
    m, envelope = check_manifest(root, entry, subject, media_type, kp.chain)
    if fmt == "jws":
        ours = check_jws(envelope, kp.chain, subject)
        notation_layout = conformance / NOTATION_LAYOUTS / "e2e-valid-signature"
        nm = json.loads(blob(notation_layout, index_entries(notation_layout)[1]["digest"]))
        theirs = json.loads(blob(notation_layout, nm["layers"][0]["digest"]))
        assert set(json.loads(b64url(theirs["protected"]))) == set(ours)
        assert set(theirs["header"]) == set(json.loads(envelope)["header"])
        assert set(theirs) == set(json.loads(envelope))
        assert list(m) == list(nm) and list(m["annotations"]) == list(nm["annotations"])
    else:
        import cbor2

        ours_cose = check_cose(envelope, kp.chain, subject)
        theirs_env = cbor2.loads((conformance / "notation-go/internal/testdata/cose_signature.sig").read_bytes())
        assert set(cbor2.loads(theirs_env.value[0])) == set(ours_cose)
        assert set(theirs_env.value[1]) == set(cbor2.loads(envelope).value[1])
    # our own reader and the envelope format accept it
    res = run_cli("list", "--oci-layout", f"{root}@{digest}")
    assert res.out.splitlines()[-1] == f"    └── {entry['digest']}"
    # and it passes the same strict verification as notation's own signature with notation's e2e policy
    from cryptography.hazmat.primitives.serialization import Encoding

    root_pem = root.parent / "our-root.pem"
    root_pem.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "e2e", str(root_pem),
                   str(conformance / "notation/test/e2e/testdata/config/localkeys/e2e.crt")).rc == 0
    policy = conformance / "notation/test/e2e/testdata/config/trustpolicies/trustpolicy.json"
    assert run_cli("policy", "import", "--force", str(policy)).rc == 0
    notation_layout = conformance / NOTATION_LAYOUTS / "e2e-valid-signature"
    for layout in (root, notation_layout):
        res = run_cli("verify", "--oci-layout", "--scope", "local/e2e", f"{layout}@{digest}")
        assert res.rc == 0, (layout, res.err)
        assert res.out.startswith(f"Successfully verified signature for {layout}@{digest}")


@pytest.mark.parametrize(("kind", "alg"), [("rsa3072", "PS384"), ("rsa4096", "PS512"), ("ec384", "ES384"),
                                           ("ec521", "ES512")])
def test_algorithm_follows_the_key(run_cli, make_layout, add_key, kind: str, alg: str) -> None:  # type: ignore[no-untyped-def]
    kp = add_key("k", kind, default=True)
    root = make_layout()
    before = index_entries(root)
    sign_ok(run_cli, "--oci-layout", f"{root}:v1")
    _, envelope = check_manifest(root, new_signature(root, before), before[0], MT_JWS, kp.chain)
    assert check_jws(envelope, kp.chain, before[0])["alg"] == alg


def test_sign_by_digest_with_metadata_and_expiry(run_cli, make_layout, add_key) -> None:  # type: ignore[no-untyped-def]
    kp = add_key("k", "ec256", default=True)
    root = make_layout()
    before = index_entries(root)
    subject = before[0]
    _, digest, err = sign_ok(run_cli, "--oci-layout", f"{root}@{subject['digest']}", "-m", "buildId=123",
                             "--user-metadata", "team=a<b", "-e", "1h30m")
    assert err == "" and digest == subject["digest"]
    _, envelope = check_manifest(root, new_signature(root, before), subject, MT_JWS, kp.chain)
    check_jws(envelope, kp.chain, subject, annotations={"buildId": "123", "team": "a<b"}, expiry=5400)


def test_signing_twice_adds_two_signatures(run_cli, make_layout, add_key) -> None:  # type: ignore[no-untyped-def]
    add_key("k", default=True)
    root = make_layout()
    sign_ok(run_cli, "--oci-layout", f"{root}:v1")
    sign_ok(run_cli, "--oci-layout", f"{root}:v1", "--signature-format", "cose")
    entries = index_entries(root)
    assert len(entries) == 3 and len({e["digest"] for e in entries}) == 3
    assert entries[0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"  # tag kept


def test_default_format_from_config_json(run_cli, config_dir: Path, make_layout, add_key) -> None:  # type: ignore[no-untyped-def]
    kp = add_key("k", default=True)
    (config_dir / "config.json").write_text('{"signatureFormat": "cose", "insecureRegistries": []}')
    root = make_layout()
    before = index_entries(root)
    sign_ok(run_cli, "--oci-layout", f"{root}:v1")
    check_manifest(root, new_signature(root, before), before[0], MT_COSE, kp.chain)
    (config_dir / "config.json").write_text('{"signatureFormat": "pgp"}')
    assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 2


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (["-m", "io.cncf.notary.foo=1"], 2, "reserved"),
        (["-m", "novalue"], 2, "KEY=VALUE"),
        (["-e", "1x"], 2, "invalid duration"),
        (["--expiry=-1h"], 2, "negative"),
        (["-e", "1.5s"], 2, "whole number of seconds"),
        (["--signature-format", "pgp"], 2, "not supported"),
        (["--key", "nope"], 2, "'nope' not found"),  # as a missing default key: exit 2
        (["--max-signatures", "1"], 2, ""),  # not a sign flag
    ],
)
def test_bad_arguments_write_nothing(run_cli, make_layout, add_key, args: list[str], rc: int, message: str) -> None:  # type: ignore[no-untyped-def]
    add_key("k", default=True)
    root = make_layout()
    before = snapshot(root)
    res = run_cli("sign", "--oci-layout", f"{root}:v1", *args)
    assert res.rc == rc and message in res.err, res
    assert "Traceback" not in res.err and res.out == ""
    assert snapshot(root) == before


def test_no_key_configured(run_cli, make_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    res = run_cli("sign", "--oci-layout", f"{root}:v1")
    assert res.rc == 2 and "--key" in res.err


def test_digest_not_in_layout_and_missing_tag_fail(run_cli, make_layout, add_key) -> None:  # type: ignore[no-untyped-def]
    add_key("k", default=True)
    root = make_layout()
    before = snapshot(root)
    res = run_cli("sign", "--oci-layout", f"{root}@sha256:{'0' * 64}")
    assert res.rc == 1 and f"sha256:{'0' * 64}" in res.err
    assert run_cli("sign", "--oci-layout", f"{root}:v2").rc == 1
    assert run_cli("sign", "--oci-layout", f"{root.parent / 'nowhere'}:v1").rc != 0
    assert snapshot(root) == before
    assert not (root.parent / "nowhere").exists()


def test_layout_whose_tag_points_to_a_different_manifest(run_cli, make_layout, add_key) -> None:  # type: ignore[no-untyped-def]
    """The digest given by the user is what gets signed, never what a tag resolves to (CVE-2023-33959)."""
    add_key("k", default=True)
    a = make_layout("a")
    b = make_layout("b", layer_sizes=[10])
    b_desc = index_entries(b)[0]
    # copy b's blobs into a and list b's manifest untagged: a:v1 still names a's own image
    for p in (b / "blobs" / "sha256").iterdir():
        target = a / "blobs" / "sha256" / p.name
        if not target.exists():
            target.write_bytes(p.read_bytes())
    ix = json.loads((a / "index.json").read_text())
    ix["manifests"].append({k: b_desc[k] for k in ("mediaType", "digest", "size")})
    (a / "index.json").write_text(json.dumps(ix))
    before = index_entries(a)
    _, digest, _ = sign_ok(run_cli, "--oci-layout", f"{a}@{b_desc['digest']}")
    assert digest == b_desc["digest"]
    m = json.loads(blob(a, new_signature(a, before)["digest"]))
    assert m["subject"]["digest"] == b_desc["digest"] and m["subject"]["mediaType"] == MT_MANIFEST


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"ca": True}, "CA"),
        ({"key_usage": "digitalSignature,keyCertSign"}, "CertSign"),
        ({"key_usage": "keyEncipherment"}, "digitalSignature"),
        ({"eku": ["server_auth"]}, "serverAuth"),
        ({"not_after": "past"}, "not valid at"),
        ({"kind": "rsa1024"}, "1024"),
    ],
)
def test_certificates_notary_rules_reject_fail_at_sign_time(run_cli, make_layout, add_key, kw: dict[str, Any],  # type: ignore[no-untyped-def]
                                                            message: str) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    kw = dict(kw)
    kind = kw.pop("kind", "rsa2048")
    if kw.get("eku") == ["server_auth"]:
        kw["eku"] = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING]
    if kw.get("not_after") == "past":
        now = dt.datetime.now(dt.timezone.utc)
        kw["not_before"], kw["not_after"] = now - dt.timedelta(days=3), now - dt.timedelta(days=1)
    add_key("bad", kind, default=True, **kw)
    root = make_layout()
    before = snapshot(root)
    res = run_cli("sign", "--oci-layout", f"{root}:v1")
    assert res.rc != 0 and res.rc != 4, res.err
    assert message.lower() in res.err.lower(), res.err
    lines = res.err.strip().splitlines()
    assert lines[-1].startswith("Error: ")  # one error line, at most after the tag warning
    assert len(lines) <= 2 and all(line.startswith("Warning: Always sign") for line in lines[:-1])
    assert snapshot(root) == before


def test_signature_created_hook_is_called(run_cli, make_layout, add_key, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "audit_plugin_for_test.py").write_text(
        "import ocisign\nCALLS = []\n"
        "@ocisign.hookimpl\n"
        "def ocisign_signature_created(target, subject, signature):\n"
        "    CALLS.append((target.location, subject.digest, signature.digest))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    add_key("k", default=True)
    root = make_layout()
    before = index_entries(root)
    sign_ok(run_cli, "-p", "audit_plugin_for_test", "--oci-layout", f"{root}:v1")
    import audit_plugin_for_test  # type: ignore[import-not-found]

    sig = new_signature(root, before)
    assert [(str(root), before[0]["digest"], sig["digest"])] == audit_plugin_for_test.CALLS


def test_sign_api_refuses_reserved_metadata_before_writing(make_layout, add_key, pm) -> None:  # type: ignore[no-untyped-def]
    from ocisign.plugins.file_key import load_file_signer

    from ocisign.errors import UsageError
    from ocisign.sign.signing import sign_artifact

    kp = add_key("k")
    root = make_layout()
    before = snapshot(root)
    target = pm.open_layout(root)
    with pytest.raises(UsageError, match="reserved"):
        sign_artifact(pm, target, "v1", signer=load_file_signer(kp.key_path, kp.cert_path),
                      envelope_format=pm.envelope_format("jws"), user_metadata={"io.cncf.notary.x": "1"})
    assert snapshot(root) == before


def test_parse_duration() -> None:
    from ocisign.errors import UsageError
    from ocisign.sign.signing import parse_duration

    assert parse_duration("24h") == dt.timedelta(hours=24)
    assert parse_duration("1h30m") == dt.timedelta(minutes=90)
    assert parse_duration("10s") == dt.timedelta(seconds=10)
    assert parse_duration("1.5h") == dt.timedelta(minutes=90)
    assert parse_duration("2000ms") == dt.timedelta(seconds=2)
    assert parse_duration("0") == dt.timedelta(0)
    for bad in ("", "h", "10", "1d", "1h-5m", ".s", "1500ms"):
        with pytest.raises(UsageError):
            parse_duration(bad)


@pytest.mark.registry
def test_sign_registry_reference(run_cli, make_layout, add_key, registry_plain: Any, repo_name: str) -> None:  # type: ignore[no-untyped-def]
    """Signing ``host/repo:tag`` pushes envelope, config and manifest, and indexes it for referrer lookup."""
    from ocisign.oci.model import MT_INDEX
    from ocisign.oci.referrers_tag import referrers_tag
    from ocisign.registry.client import RegistryClient
    from ocisign.types import RemoteOptions

    kp = add_key("k", "ec256", default=True)
    root = make_layout()
    subject = index_entries(root)[0]
    ref = f"{registry_plain.host}/{repo_name}"
    assert run_cli("cp", "--from-oci-layout", f"{root}:v1", f"{ref}:v1").rc == 0

    printed, digest, err = sign_ok(run_cli, f"{ref}:v1")
    assert printed == ref and digest == subject["digest"]
    assert "Always sign the artifact using digest(@sha256:...) rather than a tag(:v1)" in err
    printed, _, err = sign_ok(run_cli, f"{ref}@{digest}", "--signature-format", "cose", "-m", "k=v")
    assert err == ""

    client = RegistryClient(registry_plain.host, RemoteOptions())
    _, data = client.get_manifest(repo_name, referrers_tag(digest), accept=MT_INDEX)
    index = json.loads(data)
    assert [m["artifactType"] for m in index["manifests"]] == [MT_NOTARY_SIGNATURE] * 2
    envelope_types = []
    for entry in index["manifests"]:
        _, raw = client.get_manifest(repo_name, entry["digest"], accept=MT_MANIFEST)
        m = json.loads(raw)
        assert list(m) == ["schemaVersion", "mediaType", "config", "layers", "subject", "annotations"]
        assert m["subject"] == {k: subject[k] for k in ("mediaType", "digest", "size")}
        assert entry["annotations"] == m["annotations"]
        envelope_types.append(m["layers"][0]["mediaType"])
    assert envelope_types == [MT_JWS, MT_COSE]

    res = run_cli("list", f"{ref}@{digest}")
    assert res.rc == 0 and [line[8:] for line in res.out.splitlines()[2:]] == [e["digest"] for e in index["manifests"]]
    res = run_cli("inspect", f"{ref}@{digest}", "-o", "json")
    assert res.rc == 0, res.err
    sigs = json.loads(res.out)["Signatures"]
    assert [s["mediaType"] for s in sigs] == [MT_JWS, MT_COSE]
    assert sigs[1]["userDefinedAttributes"] == {"k": "v"}
    from cryptography.hazmat.primitives.serialization import Encoding

    assert sigs[0]["certificates"][0]["SHA256Fingerprint"] == hashlib.sha256(
        kp.chain[0].public_bytes(Encoding.DER)).hexdigest()

    res = run_cli("sign", f"{ref}@sha256:{'0' * 64}")
    assert res.rc == 1
    assert len(json.loads(client.get_manifest(repo_name, referrers_tag(digest), accept=MT_INDEX)[1])["manifests"]) == 2


def test_plugin_scheme_keys(run_cli, make_layout, make_keypair, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Keys served by a signer plugin: a signingkeys.json record or on-demand ``--plugin/--id``."""
    (tmp_path / "fake_kms_for_test.py").write_text(
        "import ocisign\n"
        "from ocisign.types import SignerFactory\n"
        "from ocisign.plugins.file_key import load_file_signer\n"
        "SEEN = []\n"
        "def create(record):\n"
        "    SEEN.append(dict(record))\n"
        "    cfg = record['pluginConfig']\n"
        "    return load_file_signer(cfg['keyPath'], cfg['certPath'])\n"
        "@ocisign.hookimpl\n"
        "def ocisign_signers():\n"
        "    yield SignerFactory(name='fakekms', create=create)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    kp = make_keypair("ec256")
    root = make_layout()
    before = index_entries(root)
    cfg = ["--plugin-config", f"keyPath={kp.key_path}", "--plugin-config", f"certPath={kp.cert_path}"]
    sign_ok(run_cli, "-p", "fake_kms_for_test", "--oci-layout", f"{root}:v1", "--plugin", "fakekms", "--id", "k1", *cfg)
    check_manifest(root, new_signature(root, before), before[0], MT_JWS, kp.chain)
    import fake_kms_for_test  # type: ignore[import-not-found]

    assert fake_kms_for_test.SEEN[-1]["id"] == "k1" and fake_kms_for_test.SEEN[-1]["pluginName"] == "fakekms"

    assert run_cli("-p", "fake_kms_for_test", "key", "add", "kms", "--plugin", "fakekms", "--id", "k2",
                   "--plugin-config", f"keyPath={kp.key_path}").rc == 0
    before = index_entries(root)
    sign_ok(run_cli, "-p", "fake_kms_for_test", "--oci-layout", f"{root}:v1", "--key", "kms",
            "--plugin-config", f"certPath={kp.cert_path}")  # merged with the stored pluginConfig
    assert fake_kms_for_test.SEEN[-1]["pluginConfig"] == {"keyPath": str(kp.key_path), "certPath": str(kp.cert_path)}
    new_signature(root, before)
    assert run_cli("sign", "--oci-layout", f"{root}:v1", "--key", "kms").rc == 3  # plugin not loaded
    assert run_cli("sign", "--oci-layout", f"{root}:v1", "--plugin", "fakekms").rc == 2  # --id missing


@pytest.mark.parametrize("link", ["blobs", "blobs/sha256"])
def test_never_writes_through_a_symlinked_blobs_directory(run_cli, make_layout, add_key, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          link: str) -> None:
    add_key("k", default=True)
    root = make_layout()
    outside = tmp_path / "outside"
    (root / link).rename(outside)
    (root / link).symlink_to(outside)
    before = snapshot(outside)
    index_before = (root / "index.json").read_bytes()
    res = run_cli("sign", "--oci-layout", f"{root}:v1")
    assert res.rc == 1 and "symbolic link" in res.err
    assert snapshot(outside) == before
    assert (root / "index.json").read_bytes() == index_before
