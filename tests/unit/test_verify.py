"""``ocisign verify`` end to end: sign → verify round trips, tampering, levels, limits, output, plugins."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocisign.config.configdir import ConfigDir
from ocisign.oci.model import MT_COSE, MT_JWS, Descriptor
from ocisign.types import PolicyResult

SCOPE = "local/test"


# --- helpers -----------------------------------------------------------------------------------------
class Env:
    """A config dir with a trusted signing key, a policy and a fresh layout."""

    def __init__(self, run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
                 config_dir: Path, tmp_path: Path) -> None:
        self.run = run_cli
        self.make_keypair = make_keypair
        self.config_dir = config_dir
        self.tmp = tmp_path
        self.layout = make_layout()
        self.ref = f"{self.layout}:v1"
        self.keys = 0

    def add_key(self, kind: str = "rsa2048", *, chain_len: int = 2, store: str | None = "acme",
                default: bool = True, **kw: Any) -> Any:
        """Generate a key, register it (default signing key) and trust its root in ca:<store>."""
        from cryptography.hazmat.primitives.serialization import Encoding

        kp = self.make_keypair(kind, chain_len=chain_len, **kw)
        self.keys += 1
        name = f"k{self.keys}"
        args = ["key", "add", name, "--key-file", str(kp.key_path), "--cert-file", str(kp.cert_path)]
        res = self.run(*args, *(["--default"] if default else []))
        assert res.rc == 0, res.err
        if store:
            root = self.tmp / f"{name}-root.pem"
            root.write_bytes(kp.chain[-1].public_bytes(Encoding.PEM))
            res = self.run("cert", "add", "-t", "ca", "-s", store, str(root))
            assert res.rc == 0, res.err
        kp.name = name
        return kp

    def policy(self, level: str = "strict", *, stores: tuple[str, ...] = ("ca:acme",),
               identities: tuple[str, ...] = ("*",), scopes: tuple[str, ...] = (SCOPE,),
               override: dict[str, str] | None = None) -> None:
        sv: dict[str, Any] = {"level": level}
        if override:
            sv["override"] = override
        st_: dict[str, Any] = {"name": "test", "registryScopes": list(scopes), "signatureVerification": sv}
        if level != "skip":
            st_["trustStores"] = list(stores)
            st_["trustedIdentities"] = list(identities)
        (self.config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [st_]}))

    def sign(self, *args: str, key: str | None = None) -> None:
        extra = ["--key", key] if key else []
        res = self.run("sign", "--oci-layout", self.ref, *extra, *args)
        assert res.rc == 0, res.err

    def verify(self, *args: str, ref: str | None = None, scope: str | None = SCOPE) -> Any:
        scope_args = ["--scope", scope] if scope else []
        return self.run("verify", "--oci-layout", ref or self.ref, *scope_args, *args)

    def verify_json(self, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        res = self.verify("-o", "json", *args, **kw)
        return res.rc, json.loads(res.out)


@pytest.fixture
def env(run_cli: Callable[..., Any], make_keypair: Callable[..., Any], make_layout: Callable[..., Path],
        config_dir: Path, tmp_path: Path) -> Env:
    return Env(run_cli, make_keypair, make_layout, config_dir, tmp_path)


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def _write_blob(layout: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return digest


def _index(layout: Path) -> dict[str, Any]:
    return json.loads((layout / "index.json").read_text())


def _save_index(layout: Path, index: dict[str, Any]) -> None:
    (layout / "index.json").write_text(json.dumps(index, separators=(",", ":")))


def signature_entries(layout: Path) -> list[dict[str, Any]]:
    """index.json entries of signature manifests, in order."""
    out = []
    for entry in _index(layout)["manifests"]:
        m = json.loads(_blob(layout, entry["digest"]).read_bytes())
        if "subject" in m:
            out.append(entry)
    return out


def envelope_of(layout: Path, entry: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    m = json.loads(_blob(layout, entry["digest"]).read_bytes())
    return m, _blob(layout, m["layers"][0]["digest"]).read_bytes()


def relink(layout: Path, entry: dict[str, Any], manifest: dict[str, Any], envelope: bytes | None = None) -> None:
    """Store a (changed) envelope and signature manifest and point index.json at them, consistently."""
    if envelope is not None:
        manifest["layers"][0]["digest"] = _write_blob(layout, envelope)
        manifest["layers"][0]["size"] = len(envelope)
    data = json.dumps(manifest, separators=(",", ":")).encode()
    new_digest = _write_blob(layout, data)
    index = _index(layout)
    for e in index["manifests"]:
        if e["digest"] == entry["digest"]:
            e["digest"], e["size"] = new_digest, len(data)
    _save_index(layout, index)


def unsigned_region(envelope: bytes, media_type: str) -> range:
    """Byte positions of the unsigned signingAgent header (changing it keeps the signature valid)."""
    key = b"io.cncf.notary.signingAgent"
    i = envelope.find(key)
    if i < 0:
        return range(0)
    if media_type == MT_JWS:
        start = envelope.rfind(b",", 0, i)
        end = envelope.find(b'"', envelope.find(b'"', i + len(key) + 2) + 1) + 1
    else:
        start = i - 2  # CBOR text header of the key
        n = envelope[i + len(key)] & 0x1F
        end = i + len(key) + 1 + n
    return range(start, end + 1)


def _dir_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- round trips ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "kind", "expiry", "metadata"),
    [
        ("jws", "rsa2048", None, {}),
        ("cose", "rsa2048", "1h", {"build": "42", "team": "core"}),
        ("jws", "ec256", "24h", {"build": "42"}),
        ("cose", "ec256", None, {}),
        ("jws", "rsa3072", None, {"a": "b"}),
        ("cose", "ec384", "2h", {}),
        ("jws", "ec521", None, {}),
        ("cose", "rsa3072", None, {"x": "y=z"}),
    ],
)
def test_sign_then_verify_strict(env: Env, fmt: str, kind: str, expiry: str | None, metadata: dict[str, str]) -> None:
    kp = env.add_key(kind, chain_len=3 if kind == "rsa3072" else 2)
    cn = kp.chain[0].subject.rfc4514_string().split(",")[0].split("=", 1)[1]
    env.policy(identities=(f"x509.subject: C=US, ST=WA, O=Notary, CN={cn}",))
    args = ["--signature-format", fmt, *(["-e", expiry] if expiry else [])]
    for k, v in metadata.items():
        args += ["-m", f"{k}={v}"]
    before = _dir_digest(env.layout)
    env.sign(*args)
    res = env.verify(*[a for k, v in metadata.items() for a in ("-m", f"{k}={v}")])
    assert res.rc == 0, res.err
    digest = json.loads((env.layout / "index.json").read_text())["manifests"][0]["digest"]
    assert res.out.startswith(f"Successfully verified signature for {env.layout}@{digest}\n")
    if metadata:
        assert "The artifact was signed with the following user metadata." in res.out
        for k, v in metadata.items():
            assert any(line.split() == [k, v] for line in res.out.splitlines())
    assert "tags are mutable" in res.err  # verified by tag
    rc, out = env.verify_json()
    assert rc == 0 and out["verified"] and out["failedCheck"] is None
    sig = out["signatures"][0]
    assert sig["mediaType"] == (MT_JWS if fmt == "jws" else MT_COSE)
    assert sig["userMetadata"] == metadata and (sig["expiry"] is not None) == bool(expiry)
    assert [c["check"] for c in sig["checks"]] == [
        "integrity", "verificationPlugin", "authenticity", "trustedIdentity", "expiry", "authenticTimestamp",
        "revocation", "targetMismatch", "userMetadata"]
    # verification wrote nothing
    after_sign = _dir_digest(env.layout)
    env.verify()
    assert _dir_digest(env.layout) == after_sign != before


def test_verify_by_digest_has_no_tag_warning(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign()
    digest = _index(env.layout)["manifests"][0]["digest"]
    res = env.verify(ref=f"{env.layout}@{digest}")
    assert res.rc == 0 and "Warning" not in res.err


# --- tampering -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_every_single_byte_tamper_of_the_envelope_fails_integrity(env: Env, fmt: str, pm: Any) -> None:
    from ocisign.verify.verification import verify_envelope

    env.add_key("ec256")
    env.policy()
    env.sign("--signature-format", fmt, "-m", "k=v")
    entry = signature_entries(env.layout)[0]
    manifest, envelope = envelope_of(env.layout, entry)
    media_type = manifest["layers"][0]["mediaType"]
    target = Descriptor(**{"media_type": manifest["subject"]["mediaType"], "digest": manifest["subject"]["digest"],
                           "size": manifest["subject"]["size"]})
    cfg = ConfigDir(env.config_dir)
    from ocisign.config.trustpolicy import load_policy

    policy = load_policy(cfg)
    ok = verify_envelope(pm, cfg, envelope, media_type, target, scope=SCOPE, policy=policy)
    assert ok.verified, ok.message
    skip = unsigned_region(envelope, media_type)
    assert len(skip) > 10
    tried = 0
    for pos in range(len(envelope)):
        if pos in skip:
            continue
        mutated = bytearray(envelope)
        mutated[pos] ^= 0x01
        rep = verify_envelope(pm, cfg, bytes(mutated), media_type, target, scope=SCOPE, policy=policy)
        assert not rep.verified, f"byte {pos} flipped and still verified"
        assert rep.failed_check == "integrity", (pos, rep.failed_check, rep.signatures)
        tried += 1
    assert tried > 500


@pytest.mark.parametrize("fmt", ["jws", "cose"])
def test_tampered_layout_fails_with_the_right_check(env: Env, fmt: str) -> None:
    env.add_key()
    env.policy()
    env.sign("--signature-format", fmt)
    entry = signature_entries(env.layout)[0]
    manifest, envelope = envelope_of(env.layout, entry)
    pristine = _dir_digest(env.layout)

    # 1. the envelope changed and re-linked consistently: the signature no longer verifies
    i = envelope.find(b"targetArtifact") if fmt == "cose" else envelope.find(b'"payload":"') + 20
    tampered = bytearray(envelope)
    tampered[i] ^= 0x02
    relink(env.layout, entry, dict(manifest), bytes(tampered))
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "integrity", out
    assert _dir_digest(env.layout) != pristine


def test_payload_changed_consistently_fails_integrity(env: Env) -> None:
    """Re-encoding the payload (valid JSON, valid base64url) for another digest breaks the signature."""
    import base64

    env.add_key()
    env.policy()
    env.sign()
    entry = signature_entries(env.layout)[0]
    manifest, envelope = envelope_of(env.layout, entry)
    jws = json.loads(envelope)
    payload = json.loads(base64.urlsafe_b64decode(jws["payload"] + "=="))
    payload["targetArtifact"]["size"] += 1
    jws["payload"] = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    relink(env.layout, entry, manifest, json.dumps(jws).encode())
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "integrity"
    assert "invalid" in out["signatures"][0]["reason"]


def test_artifact_manifest_tamper(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign()
    index = _index(env.layout)
    image = index["manifests"][0]
    data = bytearray(_blob(env.layout, image["digest"]).read_bytes())
    data[data.index(b"image.config") + 6] ^= 0x01  # one byte of the config media type: still valid JSON
    new_digest = _write_blob(env.layout, bytes(data))
    image["digest"] = new_digest
    _save_index(env.layout, index)
    # the signature is for the old manifest: none is found for the new one
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "no-signature"
    # an attacker re-points the signature manifest's subject at the new manifest: payload mismatch
    entry = signature_entries(env.layout)[0]
    manifest, _ = envelope_of(env.layout, entry)
    manifest["subject"]["digest"] = new_digest
    relink(env.layout, entry, manifest)
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "targetMismatch", out
    assert "content descriptor mismatch" in out["signatures"][0]["reason"]


def test_corrupt_envelope_blob_on_disk(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign()
    entry = signature_entries(env.layout)[0]
    manifest, envelope = envelope_of(env.layout, entry)
    path = _blob(env.layout, manifest["layers"][0]["digest"])
    path.write_bytes(envelope[:-1] + bytes([envelope[-1] ^ 1]))
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "integrity"


def test_thumbprint_annotation_is_not_evidence(env: Env) -> None:
    """reliability B4.7: the manifest's thumbprint hint never makes an untrusted signature pass."""
    trusted = env.add_key()
    env.add_key(store=None)  # untrusted, now the default key
    env.policy()
    env.sign()
    entry = signature_entries(env.layout)[0]
    manifest, _ = envelope_of(env.layout, entry)
    from cryptography.hazmat.primitives import hashes

    fp = [c.fingerprint(hashes.SHA256()).hex() for c in trusted.chain]
    manifest["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"] = json.dumps(fp)
    relink(env.layout, entry, manifest)
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "authenticity"


# --- levels, expiry, identity, user metadata -------------------------------------------------------------
def test_expired_signature_by_level(env: Env) -> None:
    env.add_key()
    env.sign("-e", "1s")
    time.sleep(1.2)
    env.policy("strict")
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "expiry" and "has expired" in out["signatures"][0]["reason"]
    res = env.verify()
    assert res.rc == 1 and "failed check: expiry (enforced)" in res.err
    assert res.err.rstrip().splitlines()[-1].startswith("Error: signature verification failed for all the signatures")
    assert res.out == ""
    for level in ("permissive", "audit"):
        env.policy(level)
        res = env.verify()
        assert res.rc == 0, res.err
        assert 'Warning: expiry was set to "log" and failed with error: digital signature has expired' in res.err
    env.policy("permissive", override={"expiry": "enforce"})
    assert env.verify().rc == 1
    env.policy("strict", override={"expiry": "log"})
    assert env.verify().rc == 0


def test_untrusted_signer(env: Env) -> None:
    env.add_key(store="acme", default=False)  # the trusted store holds someone else's root
    env.add_key(store="other")
    env.policy("strict")
    env.sign()
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "authenticity"
    assert "does not contain any trusted certificate" in out["signatures"][0]["reason"]
    env.policy("strict", stores=("ca:missing",))
    rc, out = env.verify_json()
    assert out["failedCheck"] == "authenticity" and 'trust store "missing" of type "ca" does not exist' in \
        out["signatures"][0]["reason"]
    env.policy("audit", stores=("ca:acme",))
    res = env.verify()
    assert res.rc == 0 and 'authenticity was set to "log"' in res.err
    env.policy("strict", stores=("signingAuthority:other",))
    rc, out = env.verify_json()
    assert out["failedCheck"] == "authenticity" and "no trust store of type" in out["signatures"][0]["reason"]


def test_trusted_identity(env: Env) -> None:
    kp = env.add_key(cn="builder")
    env.sign()
    env.policy(identities=("x509.subject: C=US, ST=WA, O=Notary, CN=builder",))
    assert env.verify().rc == 0
    env.policy(identities=("x509.subject: C=US, ST=WA, O=Notary, CN=builder2",))
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "trustedIdentity"
    env.policy(identities=("x509.subject: C=US, ST=WA, O=Notary Evil", "x509.subject: C=US, ST=WA, O=notary"))
    assert env.verify_json()[1]["failedCheck"] == "trustedIdentity"
    env.policy(identities=("acme.subject: anything",))
    rc, out = env.verify_json()
    assert out["failedCheck"] == "trustedIdentity" and "no x509 trusted identities" in out["signatures"][0]["reason"]
    assert kp.chain[0] is not None


def test_user_metadata(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign("-m", "buildId=123", "-m", "stage=prod")
    assert env.verify("-m", "buildId=123").rc == 0
    assert env.verify("-m", "buildId=123", "-m", "stage=prod").rc == 0
    rc, out = env.verify_json("-m", "buildId=321")
    assert rc == 1 and out["failedCheck"] == "userMetadata"
    assert env.verify("-m", "novalue").rc == 2
    assert env.verify("-m", "a=1", "-m", "a=2").rc == 2


def test_first_passing_signature_wins(env: Env) -> None:
    env.add_key(store="other")
    env.sign()
    env.add_key(store="acme")
    env.sign("--signature-format", "cose")
    env.policy()
    rc, out = env.verify_json()
    assert rc == 0
    assert [s["result"] for s in out["signatures"]] == ["fail", "pass"]
    assert out["verifiedSignature"] == out["signatures"][1]["digest"]


# --- limits and discovery -------------------------------------------------------------------------------
def test_max_signatures(env: Env) -> None:
    env.add_key(store="other")
    env.sign()
    env.sign()
    env.add_key(store="acme")
    env.sign()
    env.policy()
    res = env.verify("--max-signatures", "2")
    assert res.rc == 1 and "configured limit of 2 signatures" in res.err
    assert env.verify("--max-signatures", "3").rc == 0
    assert env.verify("--max-signatures", "0").rc == 2
    assert env.verify("--max-signatures", "-1").rc == 2


def test_no_signature(env: Env) -> None:
    env.policy()
    res = env.verify()
    assert res.rc == 1 and "no signature is associated with" in res.err
    assert env.verify_json()[1]["failedCheck"] == "no-signature"


def test_malformed_signature_manifest_stops_like_notation(env: Env) -> None:
    """A signature manifest with two layers aborts the evaluation (notation's ErrorSignatureRetrievalFailed)."""
    env.add_key()
    env.policy()
    env.sign()
    entry = signature_entries(env.layout)[0]
    manifest, _ = envelope_of(env.layout, entry)
    bad = json.loads(json.dumps(manifest))
    bad["layers"].append(bad["layers"][0])
    data = json.dumps(bad, separators=(",", ":")).encode()
    index = _index(env.layout)
    index["manifests"].insert(1, {"mediaType": manifest["mediaType"], "digest": _write_blob(env.layout, data),
                                  "size": len(data)})
    _save_index(env.layout, index)
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "integrity" and "stopped" in out["message"]
    assert len(out["signatures"]) == 1


def test_unsupported_envelope_type_is_skipped(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign()
    entry = signature_entries(env.layout)[0]
    manifest, _ = envelope_of(env.layout, entry)
    other = json.loads(json.dumps(manifest))
    other["layers"][0]["mediaType"] = "application/vnd.example.sig"
    other["annotations"]["x"] = "y"
    data = json.dumps(other, separators=(",", ":")).encode()
    index = _index(env.layout)
    index["manifests"].insert(1, {"mediaType": manifest["mediaType"], "digest": _write_blob(env.layout, data),
                                  "size": len(data)})
    _save_index(env.layout, index)
    rc, out = env.verify_json()
    assert rc == 0, out
    assert out["signatures"][0]["failedCheck"] == "integrity"
    assert "unsupported signature envelope media type" in out["signatures"][0]["reason"]


# --- policy and scope errors ----------------------------------------------------------------------------------
def test_policy_and_scope_errors(env: Env) -> None:
    env.add_key()
    env.sign()
    res = env.verify()
    assert res.rc == 2 and "no trust policy" in res.err
    (env.config_dir / "trustpolicy.json").write_text(json.dumps({"version": "2", "trustPolicies": [
        {"name": "a", "registryScopes": ["*", "x.io/y"], "signatureVerification": {"level": "strict"},
         "trustStores": ["ca"], "trustedIdentities": ["*"]}]}))
    res = env.verify()
    assert res.rc == 2 and "3 problems" in res.err and res.err.count("\n  - ") == 3
    rc, out = env.verify_json()
    assert rc == 2 and out["failedCheck"] == "policy" and len(out["problems"]) == 3
    env.policy(scopes=("registry.io/other",))
    rc, out = env.verify_json()
    assert rc == 1 and out["failedCheck"] == "scope"
    assert env.verify(scope=None).rc == 2
    assert env.verify(scope="Local/Test").rc == 2
    res = env.run("verify", "--scope", SCOPE, "registry.io/repo:v1")
    assert res.rc == 2 and "--oci-layout" in res.err


def test_skip_level(env: Env) -> None:
    env.policy("skip")
    res = env.verify()
    assert res.rc == 0
    assert res.out.startswith(f"Trust policy is configured to skip signature verification for {env.layout}@sha256:")


def test_verification_is_read_only(env: Env) -> None:
    env.add_key()
    env.policy()
    env.sign()
    layout_before, config_before = _dir_digest(env.layout), _dir_digest(env.config_dir)
    env.layout.chmod(0o555)
    try:
        assert env.verify().rc == 0
    finally:
        env.layout.chmod(0o755)
    assert _dir_digest(env.layout) == layout_before and _dir_digest(env.config_dir) == config_before


# --- policy plugins ---------------------------------------------------------------------------------------
PLUGIN = '''
import ocisign
from ocisign.types import PolicyResult

MODE = {mode!r}

@ocisign.hookimpl
def ocisign_evaluate_policy(context):
    if MODE == "deny":
        return PolicyResult(source="site", outcome="fail", reason="prod needs two signatures")
    if MODE == "raise":
        raise RuntimeError("boom")
    if MODE == "log":
        return PolicyResult(source="site", outcome="log", reason="noted " + context.subject.digest[:13])
    return PolicyResult(source="site", outcome="pass", reason="fine")
'''


@pytest.mark.parametrize(("mode", "rc", "fragment"), [
    ("deny", 1, "denied by plugin site: prod needs two signatures"),
    # a plugin that raises is a plugin error (exit 3) naming the plugin and the hook; never a pass
    ("raise", 3, "plugin 'site_policy_raise' failed in ocisign_evaluate_policy: RuntimeError: boom"),
    ("log", 0, "Warning: site: noted sha256:"),
    ("pass", 0, "Successfully verified"),
])
def test_site_policy_plugin_gets_a_veto(env: Env, monkeypatch: pytest.MonkeyPatch, mode: str, rc: int,
                                        fragment: str) -> None:
    name = f"site_policy_{mode}"
    (env.tmp / f"{name}.py").write_text(PLUGIN.format(mode=mode))
    monkeypatch.syspath_prepend(str(env.tmp))
    env.add_key()
    env.policy()
    env.sign()
    res = env.run("-p", name, "verify", "--oci-layout", env.ref, "--scope", SCOPE)
    assert res.rc == rc, res.err
    assert fragment in res.out + res.err
    sys.modules.pop(name, None)


def test_plugin_pass_cannot_override_builtin_failure(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    (env.tmp / "site_policy_yes.py").write_text(PLUGIN.format(mode="pass"))
    monkeypatch.syspath_prepend(str(env.tmp))
    env.add_key(store="other")
    env.policy()
    env.sign()
    res = env.run("-p", "site_policy_yes", "verify", "--oci-layout", env.ref, "--scope", SCOPE, "-o", "json")
    out = json.loads(res.out)
    assert res.rc == 1 and out["failedCheck"] == "authenticity"
    assert {p["source"]: p["outcome"] for p in out["plugins"]} == {"trust_policy": "fail", "site": "pass"}


@pytest.mark.parametrize("switch", ["-p", "env", "project"])
def test_notary_verification_cannot_be_switched_off(env: Env, monkeypatch: pytest.MonkeyPatch, switch: str) -> None:
    """Issue 11 item 5: blocking trust_policy plus a plugin that passes must not verify an untrusted signature."""
    (env.tmp / "site_policy_yes.py").write_text(PLUGIN.format(mode="pass"))
    monkeypatch.syspath_prepend(str(env.tmp))
    env.add_key(store="other")  # signed by a key the policy's store does not trust
    env.policy()
    env.sign()
    args = ["-p", "site_policy_yes"]
    if switch == "-p":
        args += ["-p", "no:trust_policy"]
    elif switch == "env":
        monkeypatch.setenv("OCISIGN_DISABLED_PLUGINS", "trust_policy")
    else:
        project = env.tmp / "ocisign.toml"
        project.write_text('disable-plugins = ["trust_policy"]\n')
        monkeypatch.setenv("OCISIGN_PROJECT_CONFIG", str(project))
    res = env.run(*args, "verify", "--oci-layout", env.ref, "--scope", SCOPE)
    assert res.rc == 2, res.err
    assert "'trust_policy' can't be disabled" in res.err and "Notary Project signature verification" in res.err
    assert "Successfully verified" not in res.out + res.err
    sys.modules.pop("site_policy_yes", None)


@pytest.mark.parametrize("name", ["jws", "cose"])
def test_envelope_formats_cannot_be_switched_off(env: Env, name: str) -> None:
    res = env.run("-p", f"no:{name}", "plugin", "list")
    assert res.rc == 2 and f"'{name}' can't be disabled" in res.err


IMPERSONATOR = '''
import ocisign
from ocisign.types import PolicyResult

@ocisign.hookimpl(tryfirst=True)
def ocisign_evaluate_policy(context):
    return PolicyResult(source="trust_policy", outcome="pass", reason="trust me", details={})
'''


def test_plugin_pass_never_stands_in_for_the_notary_result(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin claiming to be the built-in (same source name) denies instead of passing."""
    (env.tmp / "impersonator.py").write_text(IMPERSONATOR)
    monkeypatch.syspath_prepend(str(env.tmp))
    env.add_key(store="other")
    env.policy()
    env.sign()
    rc, out = env.verify_json("-p", "impersonator")
    assert rc == 1 and out["failedCheck"] == "policy"
    assert "impersonating" in out["message"]
    env.add_key()  # now a trusted signature exists too: still denied, the impersonation is the problem
    env.sign()
    rc, out = env.verify_json("-p", "impersonator")
    assert rc == 1 and "impersonating" in out["message"]
    sys.modules.pop("impersonator", None)


def test_combine_requires_the_builtin_pass() -> None:
    """Other plugins' pass results are abstentions: without the built-in's pass nothing verifies."""
    from ocisign.verify.verification import VerificationReport, _combine

    site = PolicyResult(source="site", outcome="pass", reason="fine")
    builtin_fail = PolicyResult(source="trust_policy", outcome="fail", reason="untrusted",
                                details={"failedCheck": "authenticity"})
    builtin_pass = PolicyResult(source="trust_policy", outcome="pass", reason="verified")
    report = _combine(VerificationReport(reference="x", verified=False), [site], None)
    assert not report.verified and report.failed_check == "policy" and "trust_policy" in report.message
    report = _combine(VerificationReport(reference="x", verified=False), [site, builtin_fail], None)
    assert not report.verified and report.failed_check == "authenticity"
    report = _combine(VerificationReport(reference="x", verified=False), [builtin_pass, site], None)
    assert report.verified and report.message == "verified"
    veto = PolicyResult(source="site", outcome="fail", reason="no")
    report = _combine(VerificationReport(reference="x", verified=False), [builtin_pass, veto], None)
    assert not report.verified and report.message == "denied by plugin site: no"


def _self_signed_ec_signer(org: str, *, serial: int, days: int, code_signing: bool) -> tuple[Any, Any]:
    """A P-256 signer (the shape ``EnvelopeFormat.seal`` takes) with a self-signed leaf, and that leaf."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from ocisign.envelope.algorithms import raw_ecdsa

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(now - dt.timedelta(hours=1))
               .not_valid_after(now + dt.timedelta(days=days))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True))
    if code_signing:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    cert = builder.sign(key, hashes.SHA256())

    class _Signer:
        key_spec = "EC-256"

        def certificate_chain(self) -> list[Any]:
            return [cert]

        def sign(self, data: bytes) -> bytes:
            return raw_ecdsa(key.sign(data, ec.ECDSA(hashes.SHA256())), 32)

    return _Signer(), cert


# --- envelope fuzzing --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed_envelopes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Any, Any]]:
    """A JWS and a COSE envelope over a target, with the self-signed certificate that made them."""
    import datetime as dt

    from ocisign.envelope.payload import build_payload
    from ocisign.manager import get_plugin_manager
    from ocisign.types import SignRequest

    signer, cert = _self_signed_ec_signer("Notary", serial=7, days=2, code_signing=True)
    now = dt.datetime.now(dt.timezone.utc)

    target = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json",
                        digest="sha256:" + "ab" * 32, size=123)
    pm = get_plugin_manager(load_entrypoints=False)
    out = {}
    for mt in (MT_JWS, MT_COSE):
        fmt = pm.envelope_format(mt)
        req = SignRequest(payload=build_payload(target, envelope_media_type=mt), signing_time=now,
                          signing_agent="ocisign-test/1")
        out[mt] = (fmt.seal(req, signer), target, cert)  # type: ignore[arg-type]
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mt=st.sampled_from([MT_JWS, MT_COSE]), pos=st.integers(min_value=0), value=st.integers(0, 255),
       cut=st.booleans())
def test_mutated_envelopes_never_verify(signed_envelopes: dict[str, tuple[bytes, Any, Any]], pm: Any,
                                        tmp_path_factory: pytest.TempPathFactory, mt: str, pos: int, value: int,
                                        cut: bool) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from ocisign.config.trustpolicy import parse_policy
    from ocisign.errors import VerificationError
    from ocisign.verify.verification import verify_envelope

    envelope, target, cert = signed_envelopes[mt]
    cfg_root = tmp_path_factory.getbasetemp() / "fuzz-config"
    store = ConfigDir(cfg_root).trust_store_dir("ca", "fuzz")
    if not store.exists():
        store.mkdir(parents=True)
        (store / "leaf.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    policy = parse_policy(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "f", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:fuzz"], "trustedIdentities": ["*"]}]}).encode(), where="fuzz")
    pos %= len(envelope)
    if cut:
        mutated = envelope[:pos]
    else:
        if pos in unsigned_region(envelope, mt) or envelope[pos] == value:
            return
        mutated = envelope[:pos] + bytes([value]) + envelope[pos + 1:]
    with contextlib.suppress(VerificationError):  # the parser raises nothing but its own errors
        pm.envelope_format(mt).open(mutated)
    rep = verify_envelope(pm, ConfigDir(cfg_root), mutated, mt, target, scope="a.io/b", policy=policy)
    assert not rep.verified
    assert rep.failed_check == "integrity"
    assert verify_envelope(pm, ConfigDir(cfg_root), envelope, mt, target, scope="a.io/b", policy=policy).verified


# --- registry references -------------------------------------------------------------------------------------
@pytest.mark.registry
def test_verify_registry_reference(env: Env, registry_plain: Any, repo_name: str) -> None:
    """A signed layout copied with its signatures verifies from the registry; the scope is registry/repo."""
    env.add_key()
    env.sign()
    host = registry_plain.host
    res = env.run("cp", "-r", "--from-oci-layout", env.ref, f"{host}/{repo_name}:v1")
    assert res.rc == 0, res.err
    env.policy(scopes=(f"{host}/{repo_name}",))
    res = env.run("verify", f"{host}/{repo_name}:v1")
    assert res.rc == 0, res.err
    digest = _index(env.layout)["manifests"][0]["digest"]
    assert res.out.startswith(f"Successfully verified signature for {host}/{repo_name}@{digest}")
    assert "tags are mutable" in res.err
    res = env.run("verify", f"{host}/{repo_name}@{digest}", "-o", "json")
    out = json.loads(res.out)
    assert res.rc == 0 and out["scope"] == f"{host}/{repo_name}" and len(out["signatures"]) == 1
    # the scope is exactly registry/repository: another repository has no statement
    env.policy(scopes=(f"{host}/{repo_name}-other",))
    res = env.run("verify", f"{host}/{repo_name}@{digest}", "-o", "json")
    assert res.rc == 1 and json.loads(res.out)["failedCheck"] == "scope"


def test_json_output_even_when_the_artifact_cannot_be_read(env: Env) -> None:
    env.policy()
    res = env.verify("-o", "json", ref=f"{env.layout}:missing-tag")
    out = json.loads(res.out)
    assert res.rc == 1 and out["verified"] is False and "missing-tag" in out["message"]


def test_world_writable_policy_warns(env: Env) -> None:
    env.add_key()
    env.sign()
    env.policy()
    (env.config_dir / "trustpolicy.json").chmod(0o666)
    res = env.verify()
    assert res.rc == 0 and "writable by every user" in res.err


@pytest.mark.parametrize("mt", [MT_JWS, MT_COSE])
def test_unknown_critical_attribute_fails_unlike_notation(mt: str, pm: Any, tmp_path: Path) -> None:
    """Deliberate difference (reliability B5.3): the spec says a verifier MUST reject critical attributes it
    does not understand; notation-go only enforces that when a verification plugin is named. ocisign rejects
    at the integrity check. Non-critical extended attributes are accepted, as in notation."""
    import datetime as dt

    from cryptography.hazmat.primitives.serialization import Encoding

    from ocisign.config.trustpolicy import parse_policy
    from ocisign.envelope.payload import build_payload
    from ocisign.types import SignRequest
    from ocisign.verify.verification import verify_envelope

    signer, cert = _self_signed_ec_signer("N", serial=1, days=1, code_signing=False)
    now = dt.datetime.now(dt.timezone.utc)

    store = ConfigDir(tmp_path).trust_store_dir("ca", "s")
    store.mkdir(parents=True)
    (store / "c.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    policy = parse_policy(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:s"], "trustedIdentities": ["*"]}]}).encode(), where="p")
    target = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json", digest="sha256:" + "c" * 64, size=9)
    fmt = pm.envelope_format(mt)
    for critical, verified in (((), True), (("acme.build",), False)):
        req = SignRequest(payload=build_payload(target, envelope_media_type=mt), signing_time=now,
                          extended_attributes={"acme.build": "42"}, critical_attributes=critical)
        rep = verify_envelope(pm, ConfigDir(tmp_path), fmt.seal(req, signer), mt, target, scope="a.io/b",
                              policy=policy)  # type: ignore[arg-type]
        assert rep.verified is verified, rep.signatures
        if not verified:
            assert rep.failed_check == "integrity" and "does not understand" in rep.signatures[0]["reason"]


def test_junk_signature_flood_is_bounded(env: Env) -> None:
    """reliability B4.5: many junk signatures before a good one stop at the limit, quickly, fail closed."""
    env.add_key(store="other")
    env.sign()
    junk_entry = signature_entries(env.layout)[0]
    junk, _ = envelope_of(env.layout, junk_entry)
    env.add_key(store="acme")
    env.sign()
    index = _index(env.layout)
    good = index["manifests"].pop()  # keep the good signature last
    for i in range(400):
        m = json.loads(json.dumps(junk))
        m["annotations"]["n"] = str(i)
        data = json.dumps(m, separators=(",", ":")).encode()
        index["manifests"].append({"mediaType": m["mediaType"], "digest": _write_blob(env.layout, data),
                                   "size": len(data)})
    index["manifests"].append(good)
    _save_index(env.layout, index)
    env.policy()
    start = time.monotonic()
    rc, out = env.verify_json()
    assert rc == 1 and "configured limit of 100 signatures" in out["message"]
    assert len(out["signatures"]) == 100 and time.monotonic() - start < 30
    assert env.verify_json("--max-signatures", "500")[0] == 0


def test_digest_reference_must_resolve_to_itself(env: Env, pm: Any) -> None:
    """CVE-2023-33959: a store answering digest A with descriptor B (validly signed) must not verify A."""
    from ocisign.config.trustpolicy import load_policy
    from ocisign.errors import ContentError
    from ocisign.verify.verification import verify_artifact

    env.add_key()
    env.sign()
    env.policy()
    target = pm.open_layout(env.layout)
    real = target.resolve("v1")
    asked = "sha256:" + "0" * 64

    class Lying:
        def __getattr__(self, name: str) -> Any:
            return getattr(target, name)

        def resolve(self, reference: str) -> Descriptor:
            return real

    with pytest.raises(ContentError, match="does not match the resolved digest"):
        verify_artifact(pm, ConfigDir(env.config_dir), Lying(), asked, location=str(env.layout),  # type: ignore[arg-type]
                        scope=SCOPE, policy=load_policy(ConfigDir(env.config_dir)))
    rep = verify_artifact(pm, ConfigDir(env.config_dir), target, real.digest, location=str(env.layout), scope=SCOPE)
    assert rep.verified
