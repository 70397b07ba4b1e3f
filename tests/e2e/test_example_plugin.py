"""The example in-house plugin (examples/ocisign-acme), installed with pip and found through its entry point."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ocisign-acme"

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install --target`` of a copy of the example (the example dir itself stays clean)."""
    work = tmp_path_factory.mktemp("acme")
    src = work / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    site = work / "site"
    # build offline with the setuptools at hand; without one, pip fetches it (build isolation)
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
         "--target", str(site), str(src)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "ocisign_acme" / "plugin.py").is_file()
    return site


def ocisign(
    *args: str, site: Path | None, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ocisign ARGS`` in a subprocess, with the plugin's site dir on PYTHONPATH."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("OCISIGN_DISABLE_PLUGIN_AUTOLOAD", None)
    full_env["OCISIGN_PROJECT_CONFIG"] = "none"
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join([str(site), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "ocisign", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True)


def test_plugin_list_shows_the_entry_point_plugin(acme_site: Path, tmp_path: Path) -> None:
    res = ocisign("plugin", "list", "-o", "json", site=acme_site, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    plugins = {p["name"]: p for p in json.loads(res.stdout)}
    acme = plugins["acme"]
    assert acme["distribution"] == "ocisign-acme"
    assert acme["version"] == "0.1.0"
    assert acme["module"] == "ocisign_acme.plugin"
    assert acme["builtin"] is False
    assert acme["hooks"] == ["ocisign_evaluate_policy", "ocisign_signature_created"]
    text = ocisign("plugin", "list", site=acme_site, cwd=tmp_path).stdout
    assert any(line.split()[:3] == ["acme", "ocisign-acme", "0.1.0"] for line in text.splitlines())
    # without the package on the path there is no such plugin; -p no:acme blocks it
    assert "acme" not in {p["name"] for p in json.loads(ocisign("plugin", "list", "-o", "json", site=None,
                                                                 cwd=tmp_path).stdout)}
    res = ocisign("-p", "no:acme", "plugin", "list", "-o", "json", site=acme_site, cwd=tmp_path)
    assert "acme" not in {p["name"] for p in json.loads(res.stdout)}


def _policy(scopes: list[str]) -> dict[str, object]:
    return {"version": "1.0", "trustPolicies": [{
        "name": "acme", "registryScopes": scopes, "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme-test"], "trustedIdentities": ["*"],
    }]}


def test_veto_changes_the_verify_result(acme_site: Path, tmp_path: Path,
                                        make_layout: Callable[..., Path]) -> None:
    layout = make_layout("hello-world")
    audit = tmp_path / "audit.jsonl"
    env = {"ACME_AUDIT_LOG": str(audit)}

    def run(*args: str, site: Path | None = acme_site) -> subprocess.CompletedProcess[str]:
        return ocisign(*args, site=site, cwd=tmp_path, env=env)

    assert run("cert", "generate-test", "--default", "acme-test").returncode == 0
    res = run("sign", "--oci-layout", "./hello-world:v1")
    assert res.returncode == 0, res.stderr
    # ocisign_signature_created wrote one audit record naming the subject and the signature
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(records) == 1
    digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert records[0]["subject"] == digest and records[0]["signature"].startswith("sha256:")

    scopes = ["local/hello-world", "local/quarantine/hello-world", "acme.io/release/hello-world"]
    (tmp_path / "policy.json").write_text(json.dumps(_policy(scopes)))
    assert run("policy", "import", "./policy.json").returncode == 0

    ref = ("verify", "--oci-layout", "./hello-world:v1", "--scope")
    ok = run(*ref, "local/hello-world")
    assert ok.returncode == 0, ok.stderr
    # the same signature, a quarantined scope: the trust policy passes, acme's veto denies
    denied = run(*ref, "local/quarantine/hello-world")
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "quarantined by Acme policy" in denied.stdout + denied.stderr
    assert run(*ref, "local/quarantine/hello-world", site=None).returncode == 0
    assert run("-p", "no:acme", *ref, "local/quarantine/hello-world").returncode == 0
    # settings through --plugin-config: nothing quarantined any more
    assert run(*ref, "local/quarantine/hello-world", "--plugin-config", "acme.denied-scopes=none/*").returncode == 0
    # provenance rule: release scopes need the source annotation, which the sample image lacks
    rel = run(*ref, "acme.io/release/hello-world")
    assert rel.returncode == 1
    assert "org.opencontainers.image.source" in rel.stdout + rel.stderr
