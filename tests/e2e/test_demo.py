"""`ocisign demo` end to end: a real docker-registry, every step, a throw-away config dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocisign.testing.registry import find_registry_binary, free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.registry]

EXPECTED = [
    "build ./hello-world (OCI image layout, tag v1)",
    "ocisign cert generate-test --default ocisign-demo",
    "ocisign sign --oci-layout ./hello-world:v1",
    "ocisign list --oci-layout ./hello-world:v1",
    "ocisign inspect --oci-layout ./hello-world:v1",
    "write ./trustpolicy.json (trust the demo certificate for the demo scopes, the KMS certificate for "
    "local/kms/hello-world)",
    "ocisign policy import ./trustpolicy.json",
    "ocisign policy show",
    "ocisign verify --oci-layout ./hello-world:v1 --scope local/hello-world",
    "build ./hello-world-unsigned (the same image without a signature)",
    "ocisign verify --oci-layout ./hello-world-unsigned:v1 --scope local/hello-world",
    "write ./kms (a stand-in KMS: its key, its certificate ocisign-demo-kms, the plugin ./kms/notation-kms)",
    "ocisign plugin install --file ./kms/notation-kms",
    "ocisign cert add --type ca --store ocisign-demo-kms ./kms/ocisign-demo-kms.crt",
    "ocisign key add kms --plugin kms --id alias/ocisign-demo",
    "ocisign sign --key kms --oci-layout ./hello-world:v1",
    "ocisign list --oci-layout ./hello-world:v1",
    "ocisign verify --oci-layout ./hello-world:v1 --scope local/kms/hello-world",
    "ocisign cp -r --from-oci-layout ./hello-world:v1 {reg}/hello-world:v1",
    "ocisign list {reg}/hello-world:v1",
    "ocisign verify {reg}/hello-world:v1",
]


def demo(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "ocisign", "demo", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300)


def in_order(text: str, needles: list[str]) -> list[int]:
    """Where each needle occurs in ``text``, each searched after the previous one (-1: not there)."""
    positions, at = [], 0
    for needle in needles:
        found = text.find(needle, at)
        positions.append(found)
        if found >= 0:
            at = found + len(needle)
    return positions


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_demo_starts_docker_registry_and_every_step_passes(tmp_path: Path, config_dir: Path) -> None:
    if find_registry_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("docker-registry is required in CI")
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    (config_dir / "sentinel").write_text("the user's config dir")
    before = tree(config_dir)
    port = free_port()
    res = demo("--registry-port", str(port), cwd=tmp_path)
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    reg = f"localhost:{port}"
    # every command is printed before it runs, in order
    positions = in_order(out, ["$ " + line.format(reg=reg) if line.startswith("ocisign") else line
                               for line in EXPECTED])
    assert all(p >= 0 for p in positions), list(zip(EXPECTED, positions, strict=True))
    assert "Successfully installed plugin kms, version 1.2.3" in out
    assert out.count("Successfully signed ./hello-world@sha256:") == 2
    assert out.count("Successfully verified signature for ./hello-world@sha256:") == 2
    assert f"starting {find_registry_binary()} on 127.0.0.1:{port}" in out
    assert "Successfully signed ./hello-world@sha256:" in out
    assert "Successfully verified signature for ./hello-world@sha256:" in out
    assert f"Successfully verified signature for {reg}/hello-world@sha256:" in out
    assert "application/vnd.cncf.notary.signature" in out
    assert "demo finished: every step ended as expected" in out
    summary = out[out.index("Summary"):]
    assert summary.count(" ok ") + summary.count(" ok (exit 1, as expected)") >= len(EXPECTED) - 1
    assert "FAILED" not in summary and "skipped" not in summary
    # the user's config dir was not touched, nothing left behind in the cwd, the registry was stopped
    assert tree(config_dir) == before
    assert list(tmp_path.iterdir()) == []
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def registry(registry_plain) -> str:  # type: ignore[no-untyped-def]
    """``127.0.0.1:PORT`` of the session's docker-registry."""
    return str(registry_plain.host)


def test_demo_json_against_a_running_registry_keeps_its_work(tmp_path: Path, registry: str) -> None:
    keep = tmp_path / "kept"
    res = demo("--keep", str(keep), "--registry", registry, "-o", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["ok"] is True and report["registry"] == registry and report["workDir"] == str(keep)
    steps = report["steps"]
    assert [s["command"] for s in steps] == [line.format(reg=registry) for line in EXPECTED]
    assert all(s["ok"] for s in steps)
    assert [s["exitCode"] for s in steps if s["expectedExitCode"] == 1] == [1]
    # the kept work: a signed layout and the throw-away config dir with the demo key and policy
    assert (keep / "config" / "localkeys" / "ocisign-demo.key").is_file()
    env = dict(os.environ, OCISIGN_CONFIG_DIR=str(keep / "config"), OCISIGN_PROJECT_CONFIG="none")
    check = subprocess.run([sys.executable, "-m", "ocisign", "verify", f"{registry}/hello-world:v1", "-o", "json"],
                           env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    listed = subprocess.run([sys.executable, "-m", "ocisign", "list", "--oci-layout", "-o", "json",
                             f"{keep}/hello-world:v1"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["signatures"]) == 2  # demo key + KMS key
    remote = subprocess.run([sys.executable, "-m", "ocisign", "list", "-o", "json", f"{registry}/hello-world:v1"],
                            env=env, capture_output=True, text=True)
    assert remote.returncode == 0 and len(json.loads(remote.stdout)["signatures"]) == 2
    # the KMS key is the plugin's: installed in the kept config dir, the key record names the plugin
    assert (keep / "config" / "plugins" / "kms" / "notation-kms").is_file()
    keys = json.loads((keep / "config" / "signingkeys.json").read_text())
    kms = next(k for k in keys["keys"] if k["name"] == "kms")
    assert kms["id"] == "alias/ocisign-demo" and kms["pluginName"] == "kms"
    # the KMS scope trusts only the KMS certificate: an image signed by the demo key alone is refused
    unsigned = f"{keep}/hello-world-unsigned:v1"
    assert subprocess.run([sys.executable, "-m", "ocisign", "sign", "--oci-layout", unsigned], env=env,
                          capture_output=True, text=True).returncode == 0
    kms_only = subprocess.run([sys.executable, "-m", "ocisign", "verify", "--oci-layout", unsigned,
                               "--scope", "local/kms/hello-world"], env=env, capture_output=True, text=True)
    assert kms_only.returncode == 1, kms_only.stdout + kms_only.stderr
    demo_scope = subprocess.run([sys.executable, "-m", "ocisign", "verify", "--oci-layout", unsigned,
                                 "--scope", "local/hello-world"], env=env, capture_output=True, text=True)
    assert demo_scope.returncode == 0, demo_scope.stderr
    # --keep refuses a non-empty directory
    again = demo("--keep", str(keep), "--registry", registry, cwd=tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_demo_without_docker_registry_says_how_to_get_it(tmp_path: Path) -> None:
    # an empty PATH entry first and /usr/bin hidden: simulate a machine without docker-registry
    env = {"PATH": str(tmp_path / "empty-bin")}
    (tmp_path / "empty-bin").mkdir()
    code = (
        "import ocisign.cli.demo as d, sys; d.find_registry_binary = lambda: None; "
        "from ocisign.cli.app import main; sys.exit(main(['demo']))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ, **env),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "apt-get install docker-registry" in res.stdout
    assert "(skipped: docker-registry is not installed)" in res.stdout
    assert "3 registry step(s) skipped" in res.stdout
    # the KMS steps are local: they run without a registry
    summary = res.stdout[res.stdout.index("Summary"):].splitlines()
    for command in ("ocisign plugin install --file ./kms/notation-kms",
                    "ocisign key add kms --plugin kms --id alias/ocisign-demo",
                    "ocisign sign --key kms --oci-layout ./hello-world:v1",
                    "ocisign verify --oci-layout ./hello-world:v1 --scope local/kms/hello-world"):
        [row] = [r for r in summary if r.endswith(command)]
        assert row.split()[1] == "ok", row


def test_local_registry_that_does_not_start_is_a_usage_error(tmp_path: Path) -> None:
    from ocisign.cli.demo import local_registry
    from ocisign.errors import UsageError

    port = free_port()
    with pytest.raises(UsageError, match=f"docker-registry exited with code 1 on 127.0.0.1:{port}"), \
            local_registry(tmp_path / "registry", port, "/bin/false"):
        pass  # pragma: no cover - never entered
    assert (tmp_path / "registry" / "config.yml").is_file()
