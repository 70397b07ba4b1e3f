"""A layout signed by ocisign stays readable by skopeo (``inspect`` and ``copy`` of the tagged image)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys

pytestmark = pytest.mark.skopeo


def skopeo_run(skopeo: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([skopeo, "--insecure-policy", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["rsa2048", "ec384"])
def test_skopeo_reads_and_copies_a_signed_layout(run_cli, skopeo: str, make_layout, make_keypair,  # type: ignore[no-untyped-def]
                                                 config_dir: Path, tmp_path: Path, kind: str) -> None:
    kp = make_keypair(kind, chain_len=2)
    with edit_signing_keys(ConfigDir(config_dir)) as keys:
        keys.add(KeyRecord(name="k", key_path=str(kp.key_path), cert_path=str(kp.cert_path)), make_default=True)
    root = make_layout("img")
    digest = json.loads((root / "index.json").read_bytes())["manifests"][0]["digest"]
    for fmt in ("jws", "cose"):
        assert run_cli("sign", "--oci-layout", f"{root}:v1", "--signature-format", fmt).rc == 0
    assert len(json.loads((root / "index.json").read_bytes())["manifests"]) == 3

    res = skopeo_run(skopeo, "inspect", f"oci:{root}:v1")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["Digest"] == digest and info["Os"] == "linux"

    other = tmp_path / "copy"
    res = skopeo_run(skopeo, "copy", f"oci:{root}:v1", f"oci:{other}:v1")
    assert res.returncode == 0, res.stderr
    copied = json.loads((other / "index.json").read_bytes())["manifests"]
    assert [(m["digest"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in copied] == [(digest, "v1")]
    res = skopeo_run(skopeo, "inspect", f"oci:{other}:v1")
    assert res.returncode == 0 and json.loads(res.stdout)["Digest"] == digest

    # our signatures stay listed after skopeo wrote another tag into the same layout
    res = skopeo_run(skopeo, "copy", f"oci:{root}:v1", f"oci:{root}:v2")
    assert res.returncode == 0, res.stderr
    listed = run_cli("list", "--oci-layout", f"{root}@{digest}")
    assert listed.rc == 0 and len(listed.out.splitlines()) == 4


def test_skopeo_reads_notation_signed_conformance_layout(skopeo: str, copy_conformance_layout) -> None:  # type: ignore[no-untyped-def]
    """Baseline: the notation-made layout is also fine for skopeo (same shape as ours)."""
    root = copy_conformance_layout("e2e-valid-multiple-signatures")
    res = skopeo_run(skopeo, "inspect", "--raw", f"oci:{root}:v1")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
