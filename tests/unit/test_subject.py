"""The artifact itself must be intact: a corrupt or type-confused manifest is never signed or verified."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

POLICY = {
    "version": "1.0",
    "trustPolicies": [{
        "name": "p", "registryScopes": ["local/hello-world"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:subj"], "trustedIdentities": ["*"],
    }],
}


def files(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def signed(make_layout, run_cli, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = make_layout("hello-world")
    assert run_cli("cert", "generate-test", "subj", "--default").rc == 0
    assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 0
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    assert run_cli("policy", "import", str(policy)).rc == 0
    assert run_cli("verify", "--oci-layout", f"{root}:v1", "--scope", "local/hello-world").rc == 0
    index = json.loads((root / "index.json").read_text())
    digest = next(m["digest"] for m in index["manifests"] if m.get("annotations", {}).get(
        "org.opencontainers.image.ref.name") == "v1")
    return root, digest


def corrupt(root: Path, digest: str) -> None:
    blob = root / "blobs" / "sha256" / digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_corrupt_manifest_fails_verify_and_sign(signed, run_cli, by: str) -> None:  # type: ignore[no-untyped-def]
    root, digest = signed
    corrupt(root, digest)
    ref = f"{root}:v1" if by == "tag" else f"{root}@{digest}"
    res = run_cli("verify", "--oci-layout", ref, "--scope", "local/hello-world")
    assert res.rc == 1
    assert "does not match digest" in res.err and "Successfully verified" not in res.out
    before = files(root)
    res = run_cli("sign", "--oci-layout", ref)
    assert res.rc == 1 and "does not match digest" in res.err
    assert files(root) == before


def test_manifest_missing_from_blobs_fails_verify(signed, run_cli) -> None:  # type: ignore[no-untyped-def]
    root, digest = signed
    (root / "blobs" / "sha256" / digest.split(":")[1]).unlink()
    res = run_cli("verify", "--oci-layout", f"{root}@{digest}", "--scope", "local/hello-world")
    assert res.rc == 1 and "Successfully verified" not in res.out


def test_descriptor_type_confusion_is_refused(signed, run_cli) -> None:  # type: ignore[no-untyped-def]
    root, digest = signed
    index = json.loads((root / "index.json").read_text())
    for m in index["manifests"]:
        if m["digest"] == digest:
            m["mediaType"] = "application/vnd.oci.image.index.v1+json"
    (root / "index.json").write_text(json.dumps(index))
    res = run_cli("sign", "--oci-layout", f"{root}:v1")
    assert res.rc == 1 and "does not match descriptor" in res.err
