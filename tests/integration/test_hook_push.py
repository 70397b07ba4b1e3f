"""``ocisign hook ocisign-push`` against a real docker-registry: what was pushed is printed without ``-v``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ocisign.testing.sample_image import write_image_layout

pytestmark = pytest.mark.registry

DIGEST = r"sha256:[0-9a-f]{64}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any, config_dir: Path) -> Path:
    """cwd = a project (own .git) with a test key, a trust policy for local/img and a signed layout ``img``."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    assert run_cli("cert", "generate-test", "--default", "hook-push").rc == 0
    (config_dir / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": ["local/img"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:hook-push"], "trustedIdentities": ["*"],
    }]}))
    write_image_layout(root / "img")
    write_image_layout(root / "unsigned")
    assert run_cli("sign", "--oci-layout", "img:v1").rc == 0
    return root


def test_push_prints_what_it_pushed(run_cli: Any, project: Path, registry_plain: Any, repo_name: str) -> None:
    dest = f"{registry_plain.host}/{repo_name}"
    subject = json.loads((project / "img" / "index.json").read_text())["manifests"][0]["digest"]
    res = run_cli("hook", "ocisign-push", "--to", dest, "--scope", "local/img", "img/index.json")
    assert res.rc == 0, res.out + res.err
    assert res.out.splitlines() == [f"img:v1: pushed {subject} to {dest}:v1 with 1 referrer(s)"]
    listed = run_cli("list", "-o", "json", f"{dest}:v1")
    assert listed.rc == 0, listed.err
    assert len(json.loads(listed.out)["signatures"]) == 1

    # -o json: the destination and digest as fields; a pinned digest target is pushed by digest
    res = run_cli("hook", "ocisign-push", "-o", "json", "--to", f"{dest}@{subject}", "img")
    assert res.rc == 0, res.out + res.err
    [record] = json.loads(res.out)["results"]
    assert record["digest"] == subject and record["destination"] == f"{dest}@{subject}"
    assert re.fullmatch(rf"pushed {DIGEST} to .+ with 1 referrer\(s\)", record["message"])


def test_push_from_project_config_handles_every_root(
    run_cli: Any, project: Path, registry_plain: Any, repo_name: str
) -> None:
    (project / "ocisign.toml").write_text(textwrap.dedent(f"""\
        [layouts."*"]
        push = "{registry_plain.host}/{repo_name}/{{name}}"
    """))
    res = run_cli("hook", "ocisign-push", "unsigned/index.json", "img/index.json")
    assert res.rc == 1
    lines = res.out.splitlines()
    assert lines[0].startswith("unsigned:v1: push FAILED: not signed: refusing to push an unsigned image")
    assert re.fullmatch(rf"img:v1: pushed {DIGEST} to {registry_plain.host}/{repo_name}/img:v1 with 1 referrer\(s\)",
                        lines[1]), res.out
    assert lines[2] == "ocisign-push: 1 of 2 check(s) failed"
    assert "Traceback" not in res.out + res.err
    assert run_cli("list", f"{registry_plain.host}/{repo_name}/unsigned:v1").rc != 0


def test_push_and_sign_hooks_notify_plugins(  # type: ignore[no-untyped-def]
    run_cli: Any, project: Path, registry_plain: Any, repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hooks call the library, so ``ocisign_signature_created`` and ``ocisign_push_finished`` still fire."""
    plugdir = tmp_path / "plug"
    plugdir.mkdir()
    (plugdir / "hook_push_events.py").write_text(textwrap.dedent("""\
        import ocisign

        EVENTS = []

        @ocisign.hookimpl
        def ocisign_signature_created(target, subject, signature):
            EVENTS.append(("signed", subject.digest, signature.digest))

        @ocisign.hookimpl
        def ocisign_push_finished(source, destination, pushed):
            EVENTS.append(("pushed", source, destination, len(pushed)))
    """))
    monkeypatch.syspath_prepend(str(plugdir))
    import hook_push_events  # type: ignore[import-not-found]

    events: list[tuple[object, ...]] = hook_push_events.EVENTS

    dest = f"{registry_plain.host}/{repo_name}"
    res = run_cli("hook", "-p", "hook_push_events", "-o", "json", "ocisign-sign", "unsigned")
    assert res.rc == 0, res.out + res.err
    [record] = json.loads(res.out)["results"]
    assert events == [("signed", record["digest"], record["signature"])]
    res = run_cli("hook", "-p", "hook_push_events", "ocisign-push", "--to", dest, "unsigned")
    assert res.rc == 0, res.out + res.err
    source, destination, pushed = events[-1][1:]
    assert (source, destination) == ("unsigned:v1", f"{dest}:v1")
    assert isinstance(pushed, int) and pushed >= 4  # config, layer, manifest, signature
