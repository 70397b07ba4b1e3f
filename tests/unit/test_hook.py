"""``ocisign hook``: file names → layout roots, each root once, every failure reported, exit 1."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from ocisign.hooks.files import group_layout_roots, layout_root_of

from ocisign.testing.sample_image import write_image_layout


def policy(scopes: list[str], store: str = "hook-test") -> dict[str, object]:
    return {"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": scopes, "signatureVerification": {"level": "strict"},
        "trustStores": [f"ca:{store}"], "trustedIdentities": ["*"],
    }]}


def tamper_layer(root: Path) -> Path:
    """Change the layer blob of the image tagged v1 (digest no longer matches)."""
    index = json.loads((root / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((root / "blobs" / "sha256" / manifest_digest).read_text())
    layer: Path = root / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    data = layer.read_bytes()
    layer.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    return layer


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = a fresh project root (its own .git, so no outer project config)."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def signer(run_cli, config_dir: Path) -> Callable[[str], None]:  # type: ignore[no-untyped-def]
    """Generate the default test key once; returns a function that signs ``PATH:v1``."""
    assert run_cli("cert", "generate-test", "--default", "hook-test").rc == 0
    (config_dir / "trustpolicy.json").write_text(json.dumps(policy(["local/img", "local/other"])))

    def sign(root: str) -> None:
        res = run_cli("sign", "--oci-layout", f"{root}:v1")
        assert res.rc == 0, res.err

    return sign


def test_file_names_map_to_layout_roots(work: Path) -> None:
    write_image_layout(work / "img")
    write_image_layout(work / "a" / "b" / "deep")
    (work / "web").mkdir()
    (work / "web" / "index.json").write_text("{}")
    blob = next((work / "img" / "blobs" / "sha256").iterdir())
    assert layout_root_of("img/index.json") == "img"
    assert layout_root_of("img/oci-layout") == "img"
    assert layout_root_of(f"img/blobs/sha256/{blob.name}") == "img"
    assert layout_root_of("a/b/deep/blobs/sha512/" + "f" * 128) == "a/b/deep"
    assert layout_root_of("blobs/sha256/abc") == "."
    assert layout_root_of("x.tar") == "x.tar"
    assert layout_root_of("dist/app.oci.tar") == "dist/app.oci.tar"
    assert layout_root_of("web/index.json") is None  # an unrelated index.json is not a layout
    assert layout_root_of("README.md") is None
    assert layout_root_of("img") == "img"  # a directory given directly (make rules)
    files = ["img/index.json", "x.tar", f"img/blobs/sha256/{blob.name}", "img/oci-layout", "./img/index.json",
             "README.md", "x.tar", "a/b/deep/index.json"]
    assert group_layout_roots(files) == (["img", "x.tar", "a/b/deep"], ["README.md"])


def test_check_layout_reports_every_broken_root_once(run_cli, work: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("good", "bad1", "bad2"):
        write_image_layout(work / name)
    for name in ("bad1", "bad2"):
        tamper_layer(work / name)
    files = [str(p.relative_to(work)) for p in sorted(work.rglob("*")) if p.is_file() and ".git" not in p.parts]
    res = run_cli("hook", "ocisign-check-layout", *files)
    assert res.rc == 1
    lines = res.out.strip().splitlines()
    failures = [ln for ln in lines if "FAILED" in ln and not ln.startswith(" ")]
    assert [ln.split(":")[0] for ln in failures] == ["bad1", "bad2"], res.out
    assert all("layout check FAILED" in ln for ln in failures)
    # the checker's own details follow, indented: the digest of the bad blob
    for name in ("bad1", "bad2"):
        block = res.out.split(f"{name}: layout check FAILED", 1)[1].split("\n")[1]
        assert block.startswith("    ") and "sha256:" in block, res.out
    assert lines[-1] == "ocisign-check-layout: 2 of 3 check(s) failed"
    ok = run_cli("hook", "-v", "ocisign-check-layout", "good/index.json", "good/oci-layout")
    assert ok.rc == 0 and ok.out.count("good: layout is intact") == 1


def test_options_may_come_between_and_after_file_names(run_cli, work: Path) -> None:  # type: ignore[no-untyped-def]
    write_image_layout(work / "a")
    write_image_layout(work / "b")
    res = run_cli("hook", "ocisign-check-layout", "a/index.json", "--tag", "v1", "b/oci-layout", "-o", "json")
    assert res.rc == 0, res.out + res.err
    report = json.loads(res.out)
    assert report["hook"] == "ocisign-check-layout" and report["ok"] is True
    assert [r["item"] for r in report["results"]] == ["a", "b"]


def test_sign_then_verify(run_cli, work: Path, signer, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    write_image_layout(work / "img")
    write_image_layout(work / "other")
    res = run_cli("hook", "ocisign-verify", "--scope", "local/img", "img/index.json", "other/index.json")
    assert res.rc == 1
    assert "img:v1: verify FAILED" in res.out and "other:v1: verify FAILED" in res.out
    assert "ocisign-verify: 2 of 2 check(s) failed" in res.out

    res = run_cli("hook", "ocisign-sign", "img/index.json", "img/oci-layout")
    assert res.rc == 0, res.out + res.err

    def count(root: str) -> int:
        out = run_cli("list", "--oci-layout", "-o", "json", f"{root}:v1").out
        return len(json.loads(out)["signatures"])

    assert count("img") == 1 and count("other") == 0
    again = run_cli("hook", "ocisign-sign", "img/index.json")
    assert again.rc == 0 and "img:v1: already signed (1 signature(s)); skipped" in again.out
    assert count("img") == 1
    assert run_cli("hook", "ocisign-sign", "--force", "img").rc == 0
    assert count("img") == 2

    res = run_cli("hook", "ocisign-verify", "--scope", "local/img", "img/index.json", "other/index.json")
    assert res.rc == 1
    assert "img:v1" not in res.out
    assert "other:v1: verify FAILED" in res.out and "signature" in res.out
    assert "ocisign-verify: 1 of 2 check(s) failed" in res.out


def test_verify_scope_comes_from_project_config(run_cli, work: Path, signer) -> None:  # type: ignore[no-untyped-def]
    write_image_layout(work / "images" / "img")
    write_image_layout(work / "elsewhere" / "img")
    signer("images/img")
    signer("elsewhere/img")
    (work / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.ocisign.layouts."images/*"]
        scope = "local/{name}"
    """))
    res = run_cli("hook", "-v", "ocisign-verify", "images/img/index.json", "elsewhere/img/index.json")
    assert res.rc == 1
    assert "images/img:v1: signature verified (scope local/img)" in res.out
    assert "elsewhere/img: verify FAILED: no trust-policy scope for this layout" in res.out
    assert str(work / "pyproject.toml") in res.out
    # with no file names, the configured layouts are verified
    res = run_cli("hook", "ocisign-verify", "-o", "json")
    assert res.rc == 0, res.out
    assert [r["item"] for r in json.loads(res.out)["results"]] == ["images/img:v1"]


def test_lint_policy(run_cli, work: Path) -> None:  # type: ignore[no-untyped-def]
    (work / "good").mkdir()
    (work / "good" / "trustpolicy.json").write_text(json.dumps(policy(["local/img"])))
    bad = policy(["local/img"])
    bad["trustPolicies"][0]["signatureVerification"] = {"level": "strictest"}  # type: ignore[index]
    (work / "bad").mkdir()
    (work / "bad" / "trustpolicy.json").write_text(json.dumps(bad))
    (work / "bad" / "trustpolicy.oci.json").write_text("{not json")
    res = run_cli("hook", "ocisign-lint-policy", "good/trustpolicy.json", "bad/trustpolicy.json",
                  "bad/trustpolicy.oci.json")
    assert res.rc == 1
    assert "good/trustpolicy.json" not in res.out
    assert "bad/trustpolicy.json: trust policy FAILED:" in res.out and "strictest" in res.out
    assert "bad/trustpolicy.oci.json: trust policy FAILED:" in res.out and "malformed" in res.out
    assert "2 of 3 check(s) failed" in res.out
    # without file names: the project's trust-policy file
    (work / "ocisign.toml").write_text('trust-policy = "bad/trustpolicy.json"\n')
    res = run_cli("hook", "ocisign-lint-policy")
    assert res.rc == 1 and "bad/trustpolicy.json: trust policy FAILED" in res.out


def test_nothing_to_do_and_missing_settings(run_cli, work: Path) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("hook", "ocisign-verify")
    assert res.rc == 2 and "no layouts given and none found through the project config" in res.err
    write_image_layout(work / "img")
    res = run_cli("hook", "ocisign-push", "img/index.json")
    assert res.rc == 1 and "img: push FAILED: no push target for this layout" in res.out
    res = run_cli("hook", "ocisign-check-layout", "gone/index.json", "gone.tar", "img/index.json")
    assert res.rc == 1
    assert "gone.tar: layout check FAILED" in res.out
    assert "2 of 2 check(s) failed" in res.out or "2 of 3 check(s) failed" in res.out
    res = run_cli("hook", "ocisign-nope", "x")
    assert res.rc == 2


def test_push_refuses_unsigned_layouts(run_cli, work: Path, signer) -> None:  # type: ignore[no-untyped-def]
    write_image_layout(work / "img")
    res = run_cli("hook", "ocisign-push", "--to", "localhost:1/x/img", "img")
    assert res.rc == 1 and "img:v1: push FAILED: not signed: refusing to push an unsigned image" in res.out
    res = run_cli("hook", "ocisign-push", "--to", "localhost:1/x/img", "--scope", "local/img", "img")
    assert res.rc == 1 and "img:v1: verify before push FAILED" in res.out


DIGEST = r"sha256:[0-9a-f]{64}"


def signature_digests(run_cli, ref: str) -> list[str]:  # type: ignore[no-untyped-def]
    res = run_cli("list", "--oci-layout", "-o", "json", ref)
    assert res.rc == 0, res.err
    return [s["digest"] for s in json.loads(res.out)["signatures"]]


def test_sign_prints_what_it_signed_without_verbose(run_cli, work: Path, signer) -> None:  # type: ignore[no-untyped-def]
    import re

    write_image_layout(work / "img")
    subject = json.loads((work / "img" / "index.json").read_text())["manifests"][0]["digest"]
    res = run_cli("hook", "ocisign-sign", "img/index.json", "img/oci-layout")
    assert res.rc == 0, res.out + res.err
    lines = res.out.splitlines()
    assert len(lines) == 1, res.out
    m = re.fullmatch(rf"img:v1: signed ({DIGEST}) \(signature ({DIGEST}) stored in img\)", lines[0])
    assert m, lines[0]
    assert m.group(1) == subject
    assert signature_digests(run_cli, "img:v1") == [m.group(2)]
    assert "Traceback" not in res.err

    # -o json carries the same facts as fields
    res = run_cli("hook", "ocisign-sign", "--force", "-o", "json", "img")
    assert res.rc == 0, res.out + res.err
    [record] = json.loads(res.out)["results"]
    assert record["ok"] is True and record["skipped"] is False
    assert record["digest"] == subject
    assert record["signature"] != m.group(2)
    assert sorted(signature_digests(run_cli, "img:v1")) == sorted([m.group(2), record["signature"]])
    # a skipped layout has nothing signed
    res = run_cli("hook", "ocisign-sign", "-o", "json", "img")
    [record] = json.loads(res.out)["results"]
    assert record["skipped"] is True and "signature" not in record


def test_sign_hook_returns_structured_outcomes(work: Path, signer, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """The hook modules are a library: they record Outcome objects, they do not re-enter the CLI."""
    import argparse

    from ocisign.hooks import sign as sign_hook
    from ocisign.hooks.report import HookOptions, HookRun

    import ocisign.cli.app
    from ocisign.cli.context import CliContext

    write_image_layout(work / "img")

    def no_cli(*_: object) -> int:
        raise AssertionError("a hook re-entered the CLI")

    ocisign_main = ocisign.cli.app.main
    ocisign.cli.app.main = no_cli  # type: ignore[assignment]
    try:
        ctx = CliContext.from_args(argparse.Namespace(project_config="none", config_dir=str(config_dir)))
        run = HookRun(ctx, HookOptions(hook_id="ocisign-sign", files=("img",), output="json"))
        sign_hook.handle(run, "img")
        sign_hook.handle(run, "img")
        ctx.close()
    finally:
        ocisign.cli.app.main = ocisign_main
    first, second = run.outcomes
    assert first.ok and first.changed and first.item == "img:v1" and first.signature and first.digest
    assert second.ok and second.skipped and second.signature is None
    assert run.finish() == 0


def test_errors_are_reported_per_root_without_traceback(  # type: ignore[no-untyped-def]
    run_cli, work: Path, signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        write_image_layout(work / name)
    # a project key that does not exist: every root fails with the key error, exit 1
    (work / "ocisign.toml").write_text('key = "nokey"\n')
    res = run_cli("hook", "ocisign-sign", "a", "b")
    assert res.rc == 1
    for name in ("a", "b"):
        assert f"{name}:v1: sign FAILED: signing key 'nokey' not found" in res.out, res.out
    assert res.out.splitlines()[-1] == "ocisign-sign: 2 of 2 check(s) failed"
    assert "Traceback" not in res.out + res.err and res.err == ""
    # a broken trust policy: each reference fails with the policy error, every problem on its line
    bad = policy(["local/a"])
    bad["trustPolicies"][0]["signatureVerification"] = {"level": "strictest"}  # type: ignore[index]
    bad["trustPolicies"][0]["trustStores"] = ["nope"]  # type: ignore[index]
    (work / "bad.json").write_text(json.dumps(bad))
    (work / "ocisign.toml").write_text('trust-policy = "bad.json"\n')
    res = run_cli("hook", "ocisign-verify", "--scope", "local/a", "a", "b")
    assert res.rc == 1
    failures = [ln for ln in res.out.splitlines() if "FAILED" in ln]
    assert [ln.split(":")[0] for ln in failures] == ["a", "b"], res.out
    assert all("invalid trust policy" in ln and "strictest" in ln and '"nope"' in ln for ln in failures)
    assert "Traceback" not in res.out + res.err

    # a bug in the library (not an OcisignError) fails that root only, as an internal error (exit 4)
    import ocisign.oci.layout_tools

    real = ocisign.oci.layout_tools.check_layout

    def broken(target, **kw):  # type: ignore[no-untyped-def]
        if str(target.location).endswith("a"):
            raise RuntimeError("boom")
        return real(target, **kw)

    monkeypatch.setattr(ocisign.oci.layout_tools, "check_layout", broken)
    res = run_cli("hook", "-v", "ocisign-check-layout", "a", "b")
    assert res.rc == 4
    assert "a: layout check FAILED: internal error: RuntimeError: boom" in res.out
    assert "b: layout is intact" in res.out
    assert "Traceback" not in res.out + res.err
    res = run_cli("hook", "--debug", "ocisign-check-layout", "a", "b")
    assert res.rc == 4 and "Traceback" in res.err and "RuntimeError: boom" in res.err
