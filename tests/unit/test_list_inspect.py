"""``list`` and ``inspect``: notation's tree and JSON, every signature form, read-only, bounded."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys
from ocisign.oci.model import (
    EMPTY_JSON_DIGEST,
    MT_ARTIFACT_MANIFEST,
    MT_EMPTY,
    MT_MANIFEST,
    MT_NOTARY_SIGNATURE,
    canonical_json,
    sha256_digest,
)

LAYOUTS = "notation/test/e2e/testdata/registry/oci_layout"


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


def entries(root: Path) -> list[dict[str, Any]]:
    return json.loads((root / "index.json").read_bytes())["manifests"]  # type: ignore[no-any-return]


def layout_cases(conformance: Path) -> dict[str, dict[str, Any]]:
    """One oci-layout case per (layout, reference) from cases.json."""
    cases = json.loads((conformance / "cases.json").read_text())["cases"]
    out: dict[str, dict[str, Any]] = {}
    for c in cases:
        if c["kind"] == "oci-layout":
            out.setdefault(f"{c['artifact']['layout']}:{c['artifact']['reference']}", c["artifact"])
    return out


@pytest.fixture
def signed_layout(run_cli, make_layout, make_keypair, config_dir: Path) -> Callable[..., Path]:  # type: ignore[no-untyped-def]
    """A fresh layout signed ``n`` times (alternating JWS/COSE) with a default key."""
    kp = make_keypair("rsa2048", chain_len=2)
    with edit_signing_keys(ConfigDir(config_dir)) as keys:
        keys.add(KeyRecord(name="k", key_path=str(kp.key_path), cert_path=str(kp.cert_path)), make_default=True)

    def _make(n: int = 1, *args: str) -> Path:
        root = make_layout()
        for i in range(n):
            res = run_cli("sign", "--oci-layout", f"{root}:v1", "--signature-format", ("jws", "cose")[i % 2], *args)
            assert res.rc == 0, res.err
        return root

    return _make


def test_list_conformance_layouts_shows_exactly_their_signatures(run_cli, conformance: Path) -> None:  # type: ignore[no-untyped-def]
    seen = 0
    for key, art in layout_cases(conformance).items():
        root = conformance / art["layout"]
        before = snapshot(root)
        ref = art["reference"]
        text = f"{root}@{ref}" if ref.startswith("sha256:") else f"{root}:{ref}"
        res = run_cli("list", "--oci-layout", text)
        assert res.rc == 0, (key, res.err)
        digest = art["resolved_descriptor"]["digest"]
        sigs = art["signature_manifests"]
        lines = res.out.splitlines()
        if not sigs:
            assert lines == [f"{root}@{digest} has no associated signature"]
        else:
            assert lines[:2] == [f"{root}@{digest}", "└── application/vnd.cncf.notary.signature"], key
            listed = [line[8:] for line in lines[2:]]
            assert sorted(listed) == sorted(sigs), key
            assert all(line.startswith("    ├── ") for line in lines[2:-1]) and lines[-1].startswith("    └── ")
        assert snapshot(root) == before
        seen += 1
    assert seen >= 8


def test_inspect_timestamped_notation_signature(run_cli, conformance: Path) -> None:  # type: ignore[no-untyped-def]
    case = next(c for c in json.loads((conformance / "cases.json").read_text())["cases"]
                if c["id"] == "layout-timestamped-signature-expired")
    meta = case["expected_metadata"]
    root = conformance / case["artifact"]["layout"]
    res = run_cli("inspect", "--oci-layout", f"{root}:v1", "-o", "json")
    assert res.rc == 0, res.err
    doc = json.loads(res.out)
    assert list(doc) == ["mediaType", "Signatures"]
    assert doc["mediaType"] == meta["signed_artifact"]["mediaType"]
    [sig] = doc["Signatures"]
    assert list(sig) == ["mediaType", "digest", "signatureAlgorithm", "signedAttributes", "userDefinedAttributes",
                         "unsignedAttributes", "certificates", "signedArtifact"]
    assert sig["digest"] == meta["signature_manifest"]
    assert sig["mediaType"] == meta["envelope_media_type"]
    assert sig["signatureAlgorithm"] == meta["signature_algorithm"]
    assert sig["signedAttributes"] == {"expiry": meta["expiry"], "signingScheme": meta["signing_scheme"],
                                       "signingTime": meta["signing_time"]}
    assert sig["userDefinedAttributes"] == meta["user_defined_attributes"]
    assert sig["unsignedAttributes"]["signingAgent"] == meta["signing_agent"]
    ts = sig["unsignedAttributes"]["timestampSignature"]
    lo, hi = (t[:19] + "Z" for t in meta["timestamp_range"])  # RFC 3339 without fractions
    assert ts["timestamp"] == f"[{lo}, {hi}]"
    assert [c["SHA256Fingerprint"] for c in ts["certificates"]] == meta["tsa_cert_sha256"]
    assert [c["SHA256Fingerprint"] for c in sig["certificates"]] == [meta["signing_cert_sha256"]]
    assert sig["certificates"][0]["issuedTo"] == "CN=testcert7,O=Notary,L=Seattle,ST=WA,C=US"
    assert sig["signedArtifact"] == meta["signed_artifact"]

    tree = run_cli("inspect", "--oci-layout", f"{root}:v1")
    assert tree.rc == 0
    lines = tree.out.splitlines()
    assert lines[0] == "Inspecting all signatures for signed artifact"
    assert lines[1] == f"{root}@{meta['signed_artifact']['digest']}"
    assert lines[2] == "└── application/vnd.cncf.notary.signature"
    assert lines[3] == f"    └── {meta['signature_manifest']}"
    assert "        ├── media type: application/jose+json" in lines
    assert "        ├── signature algorithm: RSASSA-PSS-SHA-256" in lines
    assert "        │   ├── expiry: Tue Jan 21 12:39:46 2025" in lines
    assert "        │   └── signingTime: Tue Jan 21 09:17:46 2025" in lines
    assert "        │   └── purpose: e2e" in lines
    assert "        │       ├── timestamp: [Tue Jan 21 09:17:46 2025, Tue Jan 21 09:17:47 2025]" in lines
    assert lines[-3:] == ["            ├── media type: application/vnd.oci.image.manifest.v1+json",
                          f"            ├── digest: {meta['signed_artifact']['digest']}",
                          "            └── size: 582"]


def test_inspect_tree_of_an_ocisign_signature(run_cli, signed_layout) -> None:  # type: ignore[no-untyped-def]
    root = signed_layout(1, "-m", "buildId=7", "-e", "24h")
    subject, sig = entries(root)
    res = run_cli("inspect", "--oci-layout", f"{root}@{subject['digest']}")
    assert res.rc == 0 and res.err == ""
    out = re.sub(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", "<TIME>", res.out)
    out = re.sub(r"[0-9a-f]{64}", "<HEX>", out)
    assert out == (
        "Inspecting all signatures for signed artifact\n"
        f"{root}@sha256:<HEX>\n"
        "└── application/vnd.cncf.notary.signature\n"
        "    └── sha256:<HEX>\n"
        "        ├── media type: application/jose+json\n"
        "        ├── signature algorithm: RSASSA-PSS-SHA-256\n"
        "        ├── signed attributes\n"
        "        │   ├── expiry: <TIME>\n"
        "        │   ├── signingScheme: notary.x509\n"
        "        │   └── signingTime: <TIME>\n"
        "        ├── user defined attributes\n"
        "        │   └── buildId: 7\n"
        "        ├── unsigned attributes\n"
        "        │   └── signingAgent: ocisign/0.1.0\n"
        "        ├── certificates\n"
        "        │   ├── SHA256 fingerprint: <HEX>\n"
        "        │   │   ├── issued to: CN=test-rsa2048-0,O=Notary,L=Seattle,ST=WA,C=US\n"
        "        │   │   ├── issued by: CN=test-rsa2048-0 root,O=Notary,L=Seattle,ST=WA,C=US\n"
        "        │   │   └── expiry: <TIME>\n"
        "        │   └── SHA256 fingerprint: <HEX>\n"
        "        │       ├── issued to: CN=test-rsa2048-0 root,O=Notary,L=Seattle,ST=WA,C=US\n"
        "        │       ├── issued by: CN=test-rsa2048-0 root,O=Notary,L=Seattle,ST=WA,C=US\n"
        "        │       └── expiry: <TIME>\n"
        "        └── signed artifact\n"
        "            ├── media type: application/vnd.oci.image.manifest.v1+json\n"
        "            ├── digest: sha256:<HEX>\n"
        f"            └── size: {subject['size']}\n"
    )
    assert sig["digest"] in res.out
    doc = json.loads(run_cli("inspect", "--oci-layout", f"{root}:v1", "-o", "json").out)
    [s] = doc["Signatures"]
    assert s["userDefinedAttributes"] == {"buildId": "7"}
    assert set(s["signedAttributes"]) == {"expiry", "signingScheme", "signingTime"}
    assert s["signedAttributes"]["signingTime"].endswith("Z")


def test_list_none_and_max_signatures(run_cli, make_layout, signed_layout) -> None:  # type: ignore[no-untyped-def]
    root = make_layout()
    digest = entries(root)[0]["digest"]
    res = run_cli("list", "--oci-layout", f"{root}:v1")
    assert res.out == f"{root}@{digest} has no associated signature\n"
    assert "Always list the artifact using digest(@sha256:...) rather than a tag(:v1)" in res.err
    assert run_cli("ls", "--oci-layout", f"{root}@{digest}").err == ""

    root = signed_layout(3)
    sigs = [e["digest"] for e in entries(root)[1:]]
    res = run_cli("list", "--oci-layout", f"{root}:v1", "--max-signatures", "2")
    assert res.rc == 0
    lines = res.out.splitlines()
    assert lines[2:] == [f"    ├── {sigs[0]}", f"    └── {sigs[1]}",
                         "Warning: exceeded configured limit of max signatures 2 to examine"]
    res = run_cli("inspect", "--oci-layout", f"{root}:v1", "--max-signatures", "2", "-o", "json")
    assert len(json.loads(res.out)["Signatures"]) == 2 and "exceeded configured limit" in res.err
    for n in ("0", "-1"):
        res = run_cli("list", "--oci-layout", f"{root}:v1", "--max-signatures", n)
        assert res.rc == 2 and "must be a positive number" in res.err
    res = run_cli("list", "--oci-layout", f"{root}:v1", "-o", "json")
    doc = json.loads(res.out)
    assert [s["digest"] for s in doc["signatures"]] == sigs and doc["truncated"] is False


def _add_manifest(root: Path, manifest: dict[str, Any], media_type: str = MT_MANIFEST) -> str:
    data = canonical_json(manifest)
    digest = sha256_digest(data)
    (root / "blobs/sha256" / digest.split(":")[1]).write_bytes(data)
    (root / "blobs/sha256" / EMPTY_JSON_DIGEST.split(":")[1]).write_bytes(b"{}")
    index = json.loads((root / "index.json").read_bytes())
    index["manifests"].append({"mediaType": media_type, "digest": digest, "size": len(data)})
    (root / "index.json").write_bytes(canonical_json(index))
    return digest


def test_all_signature_forms_are_read_and_others_ignored(run_cli, signed_layout) -> None:  # type: ignore[no-untyped-def]
    root = signed_layout(1)
    subject, sig = entries(root)
    legacy = json.loads((root / "blobs/sha256" / sig["digest"].split(":")[1]).read_bytes())
    layer = legacy["layers"][0]
    plain_subject = {k: subject[k] for k in ("mediaType", "digest", "size")}
    new_form = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": MT_NOTARY_SIGNATURE,
                "config": {"mediaType": MT_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2, "data": "e30="},
                "layers": [layer], "subject": plain_subject, "annotations": legacy["annotations"]}
    artifact = {"mediaType": MT_ARTIFACT_MANIFEST, "artifactType": MT_NOTARY_SIGNATURE, "blobs": [layer],
                "subject": plain_subject}
    sbom = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": "application/spdx+json",
            "config": {"mediaType": MT_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
            "layers": [layer], "subject": plain_subject}
    wrong_config = dict(new_form, config={"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": EMPTY_JSON_DIGEST, "size": 2})
    other_subject = dict(legacy, subject=dict(plain_subject, digest="sha256:" + "1" * 64))
    d_new = _add_manifest(root, new_form)
    d_art = _add_manifest(root, artifact, MT_ARTIFACT_MANIFEST)
    for m in (sbom, wrong_config, other_subject):
        _add_manifest(root, m)
    res = run_cli("list", "--oci-layout", f"{root}:v1")
    listed = [line[8:] for line in res.out.splitlines()[2:]]
    assert listed == [sig["digest"], d_new, d_art]
    res = run_cli("inspect", "--oci-layout", f"{root}:v1", "-o", "json")
    assert res.rc == 0, res.err
    assert [s["digest"] for s in json.loads(res.out)["Signatures"]] == [sig["digest"], d_new, d_art]


def test_inspect_skips_unreadable_signature_and_fails(run_cli, signed_layout) -> None:  # type: ignore[no-untyped-def]
    root = signed_layout(2)
    _, jws_sig, cose_sig = entries(root)
    m = json.loads((root / "blobs/sha256" / cose_sig["digest"].split(":")[1]).read_bytes())
    env_path = root / "blobs/sha256" / m["layers"][0]["digest"].split(":")[1]
    env_path.write_bytes(env_path.read_bytes()[:-1] + b"\x00")  # digest no longer matches
    res = run_cli("inspect", "--oci-layout", f"{root}:v1")
    assert res.rc == 1
    assert f"Warning: Skipping signature {cose_sig['digest']} because of error:" in res.err
    assert "at least one signature was skipped" in res.err
    assert jws_sig["digest"] in res.out and cose_sig["digest"] not in res.out
    assert run_cli("list", "--oci-layout", f"{root}:v1").rc == 0  # list does not read envelopes


def test_list_and_inspect_never_write(run_cli, signed_layout, copy_conformance_layout, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    roots = [signed_layout(2), copy_conformance_layout("e2e-valid-multiple-signatures")]
    for root in roots:
        before = snapshot(root)
        for args in (["list"], ["inspect"], ["inspect", "-o", "json"], ["list", "-o", "json"]):
            assert run_cli(*args, "--oci-layout", f"{root}:v1").rc == 0
        assert snapshot(root) == before
    # a directory that is not a layout stays untouched too
    plain = tmp_path / "not-a-layout"
    plain.mkdir()
    for cmd in ("list", "inspect"):
        res = run_cli(cmd, "--oci-layout", f"{plain}:v1")
        assert res.rc == 1 and "oci-layout" in res.err
    assert list(plain.iterdir()) == []
    assert run_cli("list", "--oci-layout", f"{tmp_path / 'missing'}:v1").rc == 1
    assert not (tmp_path / "missing").exists()


def test_inspect_reads_notation_cose_and_jws_mock_layouts(run_cli, conformance: Path) -> None:  # type: ignore[no-untyped-def]
    root = conformance / LAYOUTS / "e2e-valid-multiple-signatures"
    res = run_cli("inspect", "--oci-layout", f"{root}:v1", "-o", "json")
    assert res.rc == 0, res.err
    agents = sorted(s["unsignedAttributes"]["signingAgent"] for s in json.loads(res.out)["Signatures"])
    assert agents == ["Notation/1.0.0", "notation-go/1.3.0+unreleased"]


def test_inspect_shows_an_unparsable_timestamp_as_an_error(run_cli, conformance: Path) -> None:  # type: ignore[no-untyped-def]
    root = conformance / LAYOUTS / "e2e-with-invalid-timestamped-signature"
    res = run_cli("inspect", "--oci-layout", f"{root}:v1")
    assert res.rc == 0, res.err
    lines = res.out.splitlines()
    at = lines.index("        │   └── timestamp signature")
    assert lines[at + 1].startswith("        │       └── error: failed to parse timestamp countersignature: ")
    doc = json.loads(run_cli("inspect", "--oci-layout", f"{root}:v1", "-o", "json").out)
    assert set(doc["Signatures"][0]["unsignedAttributes"]["timestampSignature"]) == {"error"}
