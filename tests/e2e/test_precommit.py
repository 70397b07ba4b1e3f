"""Real pre-commit runs of this repository's hooks (``pre-commit try-repo`` and a pre-push install).

A temporary git repository ("the project") holds signed, unsigned, tampered and corrupt OCI
layouts (directories and a tar), an unrelated ``index.json``, a good and a broken trust policy,
and an ``ocisign.toml``. pre-commit installs ocisign from a committed snapshot of this working
tree (try-repo would only see committed and modified-tracked files of /work/main, not new ones)
into a virtualenv under a session-wide ``PRE_COMMIT_HOME``, with pip and PyPI as usual.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ocisign.oci.model import canonical_json, sha256_digest
from ocisign.testing.sample_image import write_image_layout

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_PLUGIN = REPO / "examples" / "ocisign-acme"

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

GIT_ID = ["-c", "user.name=ocisign tests", "-c", "user.email=tests@ocisign.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def commit_all(cwd: Path, message: str) -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A committed snapshot of this working tree (tracked and untracked, minus ignored files)."""
    if shutil.which("git") is None or (shutil.which("pre-commit") is None and not _has_pre_commit_module()):
        pytest.skip("git and pre-commit are needed")
    dst = tmp_path_factory.mktemp("hook-repo") / "ocisign"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True)
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.split("\0")):
            src = REPO / name
            if src.is_file():
                (dst / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / name)
    else:  # not a git checkout (an sdist): copy the tree
        shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(
            ".git", ".tox", "*.egg-info", "__pycache__", "build", "dist", ".*_cache", ".venv"))
    git(dst, "init", "-q")
    return dst, commit_all(dst, "snapshot for pre-commit tests")


def _has_pre_commit_module() -> bool:
    import importlib.util

    return importlib.util.find_spec("pre_commit") is not None


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PRE_COMMIT_HOME per test session: the hook virtualenv is built once."""
    return tmp_path_factory.mktemp("pre-commit-home")


def pre_commit_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PRE_COMMIT_COLOR="never", **extra)
    for var in ("OCISIGN_CONFIG_DIR", "OCISIGN_PROJECT_CONFIG", "OCISIGN_DISABLE_PLUGIN_AUTOLOAD",
                "PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(var, None)
    return env


def pre_commit(*args: str, cwd: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pre_commit"] if _has_pre_commit_module() else ["pre-commit"]
    return subprocess.run([*cmd, *args], cwd=cwd, env=pre_commit_env(home, **env), capture_output=True,
                          text=True, timeout=900)


def ocisign_in(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ocisign under test (not the hook env's) inside ``project``."""
    env = dict(os.environ)
    env.pop("OCISIGN_CONFIG_DIR", None)
    env.pop("OCISIGN_PROJECT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "ocisign", *args], cwd=project, env=env,
                          capture_output=True, text=True)


# --- the project under test --------------------------------------------------------------------
POLICY = {
    "version": "1.0",
    "trustPolicies": [{
        "name": "project",
        "registryScopes": ["local/signed", "local/unsigned", "local/tampered", "local/corrupt",
                           "local/quarantine/held"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:precommit-test"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=precommit-test"],
    }],
}

PROJECT_CONFIG = """\
    config-dir = ".ocisign"
    key = "precommit-test"
    trust-policy = "policy/trustpolicy.json"

    [layouts."images/signed"]
    scope = "local/signed"
    push = "${OCISIGN_TEST_REGISTRY:-localhost:1}/precommit/signed"

    [layouts."images/unsigned"]
    scope = "local/unsigned"
    push = "${OCISIGN_TEST_REGISTRY:-localhost:1}/precommit/unsigned"

    [layouts."images/quarantine/*"]
    scope = "local/quarantine/{name}"

    [layouts."images/*"]
    scope = "local/{name}"
"""


def retag_with_new_config(root: Path) -> None:
    """Change the image (its config) and point tag v1 at the new manifest; the old signature stays."""
    blobs = root / "blobs" / "sha256"
    index = json.loads((root / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == "v1")
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    config["config"]["Cmd"] = ["/bin/sh", "-c", "echo pwned"]
    cdata = canonical_json(config)
    (blobs / sha256_digest(cdata).split(":")[1]).write_bytes(cdata)
    manifest["config"].update(digest=sha256_digest(cdata), size=len(cdata))
    mdata = canonical_json(manifest)
    (blobs / sha256_digest(mdata).split(":")[1]).write_bytes(mdata)
    entry.update(digest=sha256_digest(mdata), size=len(mdata))
    (root / "index.json").write_bytes(canonical_json(index))


def corrupt_layer(root: Path) -> None:
    """Flip a bit of the layer blob (its digest no longer matches; the signature still does)."""
    blobs = root / "blobs" / "sha256"
    entry = json.loads((root / "index.json").read_text())["manifests"][0]
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_bytes())
    layer = blobs / manifest["layers"][0]["digest"].split(":")[1]
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0x01
    layer.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, built once per module; tests that change it work on a copy."""
    proj = tmp_path_factory.mktemp("precommit-project") / "project"
    proj.mkdir()
    git(proj, "init", "-q")
    (proj / "ocisign.toml").write_text(textwrap.dedent(PROJECT_CONFIG))
    (proj / "policy").mkdir()
    (proj / "policy" / "trustpolicy.json").write_text(json.dumps(POLICY, indent=2))
    broken = json.loads(json.dumps(POLICY))
    broken["trustPolicies"].append(dict(broken["trustPolicies"][0], name="again"))  # scopes in two statements
    (proj / "policy" / "broken").mkdir()
    (proj / "policy" / "broken" / "trustpolicy.json").write_text(json.dumps(broken, indent=2))
    (proj / "web").mkdir()
    (proj / "web" / "index.json").write_text('{"title": "not an OCI layout"}\n')
    res = ocisign_in(proj, "cert", "generate-test", "--default", "precommit-test")
    assert res.returncode == 0, res.stderr
    for name in ("signed", "unsigned", "tampered", "corrupt", "quarantine/held"):
        write_image_layout(proj / "images" / name)
    for name in ("signed", "tampered", "corrupt", "quarantine/held"):
        res = ocisign_in(proj, "sign", "--oci-layout", f"images/{name}:v1")
        assert res.returncode == 0, res.stderr
    res = ocisign_in(proj, "layout", "pack", "images/signed", "images/signed.tar")
    assert res.returncode == 0, res.stderr
    retag_with_new_config(proj / "images" / "tampered")
    corrupt_layer(proj / "images" / "corrupt")
    commit_all(proj, "layouts")
    return proj


@pytest.fixture
def project(project_template: Path, tmp_path: Path) -> Path:
    """A private copy of the project (pre-commit hooks may change files)."""
    dst = tmp_path / "project"
    shutil.copytree(project_template, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def hooks_config(hook_repo: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pre-commit config (outside the project) with every hook of the snapshot, as a user writes it."""
    repo, rev = hook_repo
    ids = [h["id"] for h in _manifest(repo)]
    path = tmp_path_factory.mktemp("pre-commit-config") / "pre-commit-config.yaml"
    lines = ["repos:", f"-   repo: {repo}", f"    rev: {rev}", "    hooks:"] + [f"    -   id: {i}" for i in ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def _manifest(repo: Path) -> list[dict[str, object]]:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # pre-commit depends on PyYAML

    hooks: list[dict[str, object]] = yaml.safe_load((repo / ".pre-commit-hooks.yaml").read_text())
    return hooks


@pytest.fixture
def run_hook(hooks_config: Path, pre_commit_home: Path,
             project_template: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``pre-commit run -c CONFIG HOOK-ID ARGS…`` in a project (the shared one by default).

    Unlike ``try-repo`` (which builds a new virtualenv in a temporary store every time), ``run``
    keeps the hook environment in PRE_COMMIT_HOME, so it is built once per session.
    """

    def run(hook_id: str, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return pre_commit("run", "-c", str(hooks_config), hook_id, *args,
                          cwd=cwd or project_template, home=pre_commit_home, **env)

    return run


def hook_failed(res: subprocess.CompletedProcess[str]) -> bool:
    return res.returncode == 1 and "Failed" in res.stdout and "- exit code: 1" in res.stdout


def hook_passed(res: subprocess.CompletedProcess[str]) -> bool:
    return res.returncode == 0 and "Passed" in res.stdout


def failure_lines(res: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in res.stdout.splitlines() if " FAILED" in ln and not ln.startswith(" ")]


# --- tests -------------------------------------------------------------------------------------
def test_try_repo_verify_fails_for_unsigned_and_tampered_layouts(
    hook_repo: tuple[Path, str], pre_commit_home: Path, project_template: Path
) -> None:
    repo, rev = hook_repo
    res = pre_commit("try-repo", str(repo), "ocisign-verify", "--ref", rev, "--all-files",
                     cwd=project_template, home=pre_commit_home)
    assert hook_failed(res), res.stdout + res.stderr
    assert "- hook id: ocisign-verify" in res.stdout
    fails = failure_lines(res)
    assert sorted(ln.split(": verify FAILED")[0] for ln in fails) == ["images/tampered:v1", "images/unsigned:v1"]
    assert all("signature" in ln for ln in fails), fails
    # each layout once, although pre-commit passed index.json, oci-layout and every blob of it
    assert res.stdout.count("images/unsigned:v1: verify FAILED") == 1
    # signed dir and tar, the corrupt layer (signature covers the manifest) and the quarantine image pass;
    # the unrelated web/index.json is not a layout
    assert "ocisign-verify: 2 of 6 check(s) failed" in res.stdout
    assert "web/" not in res.stdout


def test_verify_hook_passes_for_signed_layouts(run_hook, project_template: Path) -> None:  # type: ignore[no-untyped-def]
    blob = next((project_template / "images" / "signed" / "blobs" / "sha256").iterdir())
    res = run_hook("ocisign-verify", "--files", "images/signed/index.json", "images/signed/oci-layout",
                   str(blob.relative_to(project_template)), "images/signed.tar", "web/index.json")
    assert hook_passed(res), res.stdout + res.stderr


def test_check_layout_hook_finds_the_corrupt_blob(run_hook) -> None:  # type: ignore[no-untyped-def]
    res = run_hook("ocisign-check-layout", "--all-files")
    assert hook_failed(res), res.stdout + res.stderr
    fails = failure_lines(res)
    assert [ln.split(": layout check FAILED")[0] for ln in fails] == ["images/corrupt"], res.stdout
    after = res.stdout.split("images/corrupt: layout check FAILED", 1)[1]
    assert "sha256:" in after and ("digest" in after or "does not match" in after)
    assert "ocisign-check-layout: 1 of 6 check(s) failed" in res.stdout


def test_lint_policy_hook(run_hook) -> None:  # type: ignore[no-untyped-def]
    res = run_hook("ocisign-lint-policy", "--all-files")
    assert hook_failed(res), res.stdout + res.stderr
    fails = failure_lines(res)
    assert len(fails) == 1 and fails[0].startswith("policy/broken/trustpolicy.json: trust policy FAILED:")
    assert "local/signed" in fails[0]  # the scope that appears in two statements is named
    assert hook_passed(run_hook("ocisign-lint-policy", "--files", "policy/trustpolicy.json"))


def test_manual_sign_hook_signs_then_verify_passes(run_hook, project: Path) -> None:  # type: ignore[no-untyped-def]
    files = ["images/unsigned/index.json", "images/unsigned/oci-layout", "images/signed/index.json"]
    assert hook_failed(run_hook("ocisign-verify", "--files", *files, cwd=project))
    # the sign hook is in the manual stage only: it is not part of a normal (pre-commit stage) run
    res = run_hook("ocisign-sign", "--files", *files, cwd=project)
    assert "No hook with id `ocisign-sign` in stage `pre-commit`" in res.stdout, res.stdout
    res = run_hook("ocisign-sign", "--hook-stage", "manual", "--files", *files, cwd=project)
    # like a formatter, signing changes tracked files (index.json), which pre-commit reports
    assert res.returncode == 1 and "files were modified by this hook" in res.stdout, res.stdout + res.stderr
    git(project, "add", "-A")
    assert hook_passed(run_hook("ocisign-verify", "--files", *files, cwd=project))
    res = run_hook("ocisign-sign", "--hook-stage", "manual", "--files", *files, "--verbose", cwd=project)
    assert hook_passed(res), res.stdout
    assert "images/unsigned:v1: already signed (1 signature(s)); skipped" in res.stdout


@pytest.mark.registry
def test_push_hook_pushes_signed_and_refuses_unsigned(run_hook, project: Path,  # type: ignore[no-untyped-def]
                                                      registry_plain) -> None:
    host = registry_plain.host
    res = run_hook("ocisign-push", "--hook-stage", "manual", "--all-files", cwd=project, OCISIGN_TEST_REGISTRY=host)
    assert hook_failed(res), res.stdout + res.stderr
    fails = failure_lines(res)
    assert len(fails) == 1 and fails[0].startswith("images/unsigned:v1: verify before push FAILED"), res.stdout
    listed = ocisign_in(project, "list", "-o", "json", f"{host}/precommit/signed:v1")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["signatures"]) == 1
    assert ocisign_in(project, "list", f"{host}/precommit/unsigned:v1").returncode != 0
    verified = ocisign_in(project, "verify", "--oci-layout", "images/signed:v1", "--scope", "local/signed")
    assert verified.returncode == 0, verified.stderr


@pytest.mark.registry
def test_pre_push_stage_with_an_installed_config(  # type: ignore[no-untyped-def]
    hook_repo: tuple[Path, str], pre_commit_home: Path, project: Path, tmp_path: Path, registry_plain
) -> None:
    repo, rev = hook_repo
    host = registry_plain.host
    # only the signed layout is in this project's commits: remove the others
    for name in ("unsigned", "tampered", "corrupt"):
        shutil.rmtree(project / "images" / name)
    (project / ".pre-commit-config.yaml").write_text(textwrap.dedent(f"""\
        repos:
        -   repo: {repo}
            rev: {rev}
            hooks:
            -   id: ocisign-push
    """))
    commit_all(project, "only signed layouts")
    res = pre_commit("install", "--hook-type", "pre-push", cwd=project, home=pre_commit_home)
    assert res.returncode == 0, res.stderr
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(project, "remote", "add", "origin", str(remote))
    push = subprocess.run(["git", *GIT_ID, "push", "-q", "origin", "HEAD:refs/heads/main"], cwd=project,
                          env=pre_commit_env(pre_commit_home, OCISIGN_TEST_REGISTRY=host),
                          capture_output=True, text=True, timeout=900)
    assert push.returncode == 0, push.stdout + push.stderr
    assert "push signed OCI layouts" in push.stdout + push.stderr
    listed = ocisign_in(project, "list", "-o", "json", f"{host}/precommit/signed:v1")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["signatures"]) >= 1, listed.stderr


def test_third_party_plugin_through_additional_dependencies(
    hook_repo: tuple[Path, str], pre_commit_home: Path, project: Path, tmp_path: Path
) -> None:
    repo, rev = hook_repo
    plugin_src = tmp_path / "ocisign-acme"
    shutil.copytree(EXAMPLE_PLUGIN, plugin_src, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    files = ["images/quarantine/held/index.json", "images/signed/index.json"]
    # without the plugin the quarantined image verifies
    base_cfg = f"""\
        repos:
        -   repo: {repo}
            rev: {rev}
            hooks:
            -   id: ocisign-verify
    """
    (project / ".pre-commit-config.yaml").write_text(textwrap.dedent(base_cfg))
    res = pre_commit("run", "ocisign-verify", "--files", *files, cwd=project, home=pre_commit_home)
    assert res.returncode == 0, res.stdout + res.stderr
    # with ocisign-acme in additional_dependencies its veto (entry point 'acme') denies it
    (project / ".pre-commit-config.yaml").write_text(
        textwrap.dedent(base_cfg) + f"        additional_dependencies: ['{plugin_src}']\n")
    res = pre_commit("run", "ocisign-verify", "--files", *files, cwd=project, home=pre_commit_home)
    assert res.returncode == 1, res.stdout + res.stderr
    fails = failure_lines(res)
    assert len(fails) == 1 and fails[0].startswith("images/quarantine/held:v1: verify FAILED"), res.stdout
    assert "quarantined by Acme policy" in res.stdout
