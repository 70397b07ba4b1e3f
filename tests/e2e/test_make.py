"""examples/make: real `make` signs, verifies and pushes a layout with incremental (stamp-file) rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "make"

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.registry]


@pytest.fixture
def registry(registry_plain, repo_name: str) -> str:  # type: ignore[no-untyped-def]
    """``HOST:PORT/<unique prefix>`` on the session's docker-registry (the Makefile's REGISTRY)."""
    return f"{registry_plain.host}/{repo_name}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of examples/make (in its own git root, so no outer project config applies)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    dst = tmp_path / "project"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("build", ".ocisign"))
    (dst / ".git").mkdir()
    return dst


def make(project: Path, registry: str, *targets: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, REGISTRY=registry, OCISIGN=f"{sys.executable} -m ocisign", PYTHON=sys.executable)
    env.pop("OCISIGN_PROJECT_CONFIG", None)
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "--no-print-directory", *targets], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


def ocisign(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("OCISIGN_PROJECT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "ocisign", *args], cwd=project, env=env,
                          capture_output=True, text=True)


def ran(res: subprocess.CompletedProcess[str], what: str) -> bool:
    """True when make echoed a recipe line running ``what``."""
    return any(what in line for line in res.stdout.splitlines())


def test_make_signs_verifies_and_pushes_incrementally(project: Path, registry: str) -> None:
    first = make(project, registry)
    assert first.returncode == 0, first.stdout + first.stderr
    for step in ("cert generate-test", "policy import", "write_image_layout", "sign --oci-layout",
                 "layout check", "verify --oci-layout", "hook ocisign-push"):
        assert ran(first, step), f"{step} did not run:\n{first.stdout}"
    stamps = project / "build" / ".stamps"
    assert {p.name for p in stamps.iterdir()} == {"built", "signed", "policy", "verified", "pushed"}
    # one process signed and one verified both images (batches)
    assert "2 of 2 references signed, 0 failed" in first.stdout
    assert "2 of 2 references verified, 0 failed" in first.stdout
    # the project config dir was used, not $OCISIGN_CONFIG_DIR
    assert (project / ".ocisign" / "signingkeys.json").is_file()

    # the registry holds the image and its signature
    remote = f"{registry}/examples/hello-world:v1"
    listed = ocisign(project, "list", "-o", "json", remote)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["signatures"]) == 1
    layout_digest = json.loads((project / "build/hello-world/index.json").read_text())["manifests"][0]["digest"]
    assert json.loads(listed.stdout)["reference"].endswith("@" + layout_digest)

    # nothing changed: nothing runs
    again = make(project, registry)
    assert again.returncode == 0 and "ocisign" not in again.stdout, again.stdout
    assert make(project, registry, "-q", "all").returncode in (0, 1)  # phony 'all' may report "not up to date"
    assert make(project, registry, "-q", "build/.stamps/pushed").returncode == 0

    # a changed policy re-verifies and re-pushes, but does not rebuild or re-sign
    os.utime(project / "trustpolicy.json")
    pol = make(project, registry)
    assert pol.returncode == 0, pol.stdout + pol.stderr
    assert ran(pol, "policy import") and ran(pol, "verify --oci-layout") and ran(pol, "hook ocisign-push")
    assert not ran(pol, "write_image_layout") and not ran(pol, "sign --oci-layout")

    # changed image sources rebuild, re-sign, verify and push; the key is not generated again
    os.utime(project / "image.txt")
    src = make(project, registry)
    assert src.returncode == 0, src.stdout + src.stderr
    for step in ("write_image_layout", "sign --oci-layout", "verify --oci-layout", "hook ocisign-push"):
        assert ran(src, step)
    assert not ran(src, "cert generate-test") and not ran(src, "policy import")


def test_make_stops_on_an_unsigned_layout(project: Path, registry: str) -> None:
    assert make(project, registry, ".ocisign/signingkeys.json", "build").returncode == 0
    # pretend it was signed: the stamp says so, the layout has no signature
    assert make(project, registry, "-t", "build/.stamps/signed").returncode == 0
    res = make(project, registry)
    assert res.returncode != 0
    assert "no signature is associated with" in res.stderr, res.stdout + res.stderr
    stamps = project / "build" / ".stamps"
    assert not (stamps / "verified").exists() and not (stamps / "pushed").exists()
    # nothing reached the registry
    assert ocisign(project, "list", f"{registry}/examples/hello-world:v1").returncode != 0


def test_make_stops_on_a_tampered_blob(project: Path, registry: str) -> None:
    assert make(project, registry, "sign").returncode == 0
    blobs = sorted((project / "build/hello-world/blobs/sha256").iterdir(), key=lambda p: p.stat().st_size)
    layer = blobs[-1]  # the largest blob is the gzip layer
    layer.write_bytes(layer.read_bytes()[:-1] + b"\0")
    res = make(project, registry)
    assert res.returncode != 0
    assert "problem found" in res.stdout + res.stderr and "layout check build/hello-world" in res.stdout
    assert not (project / "build/.stamps/verified").exists()
