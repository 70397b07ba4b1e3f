"""``ocisign cp`` against a real docker-registry 2.8.2 (no referrers API: tag schema fallback)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.manager import OcisignPluginManager
from ocisign.oci.model import MT_INDEX, MT_MANIFEST, MT_NOTARY_SIGNATURE, Descriptor, canonical_json, sha256_digest
from ocisign.oci.referrers_tag import referrers_tag
from ocisign.registry.client import RegistryClient
from ocisign.testing.registry import add_signature_like
from ocisign.testing.sample_image import write_image_layout
from ocisign.types import RemoteOptions

pytestmark = pytest.mark.registry


def _client(reg: Any) -> RegistryClient:
    return RegistryClient(reg.host, RemoteOptions())


def _sign_layout(
    pm: OcisignPluginManager, layout: Path, tag: str = "v1", *, legacy: bool = True
) -> tuple[Descriptor, Descriptor]:
    target = pm.open_layout(layout)
    try:
        subject = target.resolve(tag)
        sig = add_signature_like(target, subject, legacy=legacy)
    finally:
        target.close()
    return subject, sig


def _tag_index(reg: Any, repo: str, subject: Descriptor) -> tuple[Descriptor, dict[str, Any]]:
    desc, data = _client(reg).get_manifest(repo, referrers_tag(subject.digest), accept=MT_INDEX)
    return desc, json.loads(data)


def test_cp_layout_to_registry_with_signature_and_rerun(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str, skopeo: str, tmp_path: Path,
) -> None:
    layout = make_layout()
    subject, sig = _sign_layout(pm, layout)
    dst = f"{registry_plain.host}/{repo_name}:v1"

    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst)
    assert r.rc == 0, r.err
    assert r.out.splitlines() == [f"Copied [oci-layout] {layout}:v1 => [registry] {dst}", f"Digest: {subject.digest}"]

    # skopeo reads the image back
    out = subprocess.run([skopeo, "inspect", "--tls-verify=false", f"docker://{dst}"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["Digest"] == subject.digest
    sk = tmp_path / "skopeo-out"
    subprocess.run([skopeo, "copy", "--src-tls-verify=false", f"docker://{dst}", f"oci:{sk}:v1"],
                   capture_output=True, check=True)
    sk_index = json.loads((sk / "index.json").read_text())
    assert sk_index["manifests"][0]["digest"] == subject.digest

    # the referrers tag schema index lists the signature with its full entry
    index_desc, index = _tag_index(registry_plain, repo_name, subject)
    assert index["mediaType"] == MT_INDEX
    assert index["manifests"] == [{
        "mediaType": MT_MANIFEST, "digest": sig.digest, "size": sig.size,
        "annotations": dict(sig.annotations or {}), "artifactType": MT_NOTARY_SIGNATURE,
    }]
    assert sorted(_client(registry_plain).list_tags(repo_name)) == sorted(["v1", referrers_tag(subject.digest)])

    # the registry Target lists it too (what list/verify use)
    target = pm.transport("registry").open(registry_plain.host, repo_name, RemoteOptions())
    try:
        assert [d.digest for d in target.referrers(subject, artifact_type=MT_NOTARY_SIGNATURE)] == [sig.digest]
        assert target.resolve("v1") == subject.plain()
    finally:
        target.close()

    # re-running is idempotent: nothing pushed, index unchanged, no duplicate entry
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst, "-o", "json")
    assert r.rc == 0, r.err
    summary = json.loads(r.out)
    assert summary["pushed"] == []
    assert {d["digest"] for d in summary["skipped"]} == {subject.digest, sig.digest}
    assert summary["referrers"][0]["artifactType"] == MT_NOTARY_SIGNATURE
    again_desc, again = _tag_index(registry_plain, repo_name, subject)
    assert again_desc.digest == index_desc.digest and again == index


def test_cp_without_recursive_copies_no_signature(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str,
) -> None:
    layout = make_layout()
    subject, sig = _sign_layout(pm, layout)
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_plain.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    client = _client(registry_plain)
    assert client.head_manifest(repo_name, subject.digest) is not None
    assert client.head_manifest(repo_name, sig.digest) is None
    assert client.list_tags(repo_name) == ["v1"]


def test_registry_to_layout_round_trip_keeps_signatures(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str, tmp_path: Path,
) -> None:
    layout = make_layout()
    subject, sig = _sign_layout(pm, layout, legacy=False)
    ref = f"{registry_plain.host}/{repo_name}:v1"
    assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref).rc == 0
    out = tmp_path / "offline"
    r = run_cli("cp", "-r", "--to-oci-layout", ref, f"{out}:v1")
    assert r.rc == 0, r.err
    assert r.out.splitlines()[0] == f"Copied [registry] {ref} => [oci-layout] {out}:v1"
    back = pm.open_layout(out)
    try:
        assert back.resolve("v1").digest == subject.digest
        refs = back.referrers(back.resolve("v1"))
        assert [(d.digest, d.artifact_type) for d in refs] == [(sig.digest, MT_NOTARY_SIGNATURE)]
        for entry in json.loads((out / "index.json").read_text())["manifests"]:
            if entry["digest"] == sig.digest:
                assert entry["artifactType"] == MT_NOTARY_SIGNATURE and "annotations" in entry
                assert "org.opencontainers.image.ref.name" not in entry["annotations"]
        manifest = json.loads(back.fetch(subject))
        for blob in [manifest["config"], *manifest["layers"]]:
            assert back.exists(Descriptor(media_type=blob["mediaType"], digest=blob["digest"], size=blob["size"]))
    finally:
        back.close()
    before = (out / "index.json").read_bytes()
    assert run_cli("cp", "-r", "--to-oci-layout", ref, f"{out}:v1").rc == 0
    assert (out / "index.json").read_bytes() == before


def test_registry_to_registry_mounts_blobs_and_copies_signature(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str,
) -> None:
    layout = make_layout()
    subject, sig = _sign_layout(pm, layout)
    src = f"{registry_plain.host}/{repo_name}:v1"
    dst = f"{registry_plain.host}/{repo_name}-mirror:v2"
    assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", src).rc == 0
    r = run_cli("cp", "-r", src, dst, "-o", "json")
    assert r.rc == 0, r.err
    summary = json.loads(r.out)
    actions = {d["digest"]: d["action"] for d in summary["pushed"]}
    assert actions[subject.digest] == "pushed" and actions[sig.digest] == "pushed"
    blob_actions = {a for d, a in actions.items() if d not in (subject.digest, sig.digest)}
    assert blob_actions == {"mounted"}
    _, index = _tag_index(registry_plain, f"{repo_name}-mirror", subject)
    assert [m["digest"] for m in index["manifests"]] == [sig.digest]
    assert summary["tag"] == "v2"


def _multi_platform_layout(root: Path) -> tuple[Descriptor, list[Descriptor]]:
    children = []
    for i, (arch, sizes) in enumerate((("amd64", ()), ("arm64", (4096,)))):
        d = write_image_layout(root, tag=None, layer_sizes=sizes)
        children.append(Descriptor(media_type=MT_MANIFEST, digest=str(d["digest"]), size=int(str(d["size"])),
                                   platform={"architecture": arch, "os": "linux"}))
        assert i == len(children) - 1
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [c.to_json() for c in children]})
    digest = sha256_digest(index)
    (root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(index)
    entry = {"mediaType": MT_INDEX, "digest": digest, "size": len(index),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}}
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry]}))
    return Descriptor(media_type=MT_INDEX, digest=digest, size=len(index)), children


def test_multi_platform_index_copies_whole_with_child_referrers(
    run_cli: Callable[..., Any], pm: OcisignPluginManager, registry_plain: Any, repo_name: str, tmp_path: Path,
) -> None:
    root = tmp_path / "multi"
    index, children = _multi_platform_layout(root)
    target = pm.open_layout(root)
    try:
        index_sig = add_signature_like(target, index)
        child_sig = add_signature_like(target, children[1].plain())
        sig_of_sig = add_signature_like(target, index_sig.plain(), payload=b"countersignature")
    finally:
        target.close()
    dst = f"{registry_plain.host}/{repo_name}:multi"
    r = run_cli("cp", "-r", "--from-oci-layout", f"{root}:multi", dst, "-o", "json", "--concurrency", "2")
    assert r.rc == 0, r.err
    summary = json.loads(r.out)
    assert {d["digest"] for d in summary["referrers"]} == {index_sig.digest, child_sig.digest, sig_of_sig.digest}
    client = _client(registry_plain)
    for child in children:
        assert client.head_manifest(repo_name, child.digest) is not None
    got, _ = client.get_manifest(repo_name, "multi")
    assert got.digest == index.digest and got.media_type == MT_INDEX
    assert [m["digest"] for m in _tag_index(registry_plain, repo_name, index)[1]["manifests"]] == [index_sig.digest]
    assert [m["digest"] for m in _tag_index(registry_plain, repo_name, children[1])[1]["manifests"]] == [
        child_sig.digest]
    assert [m["digest"] for m in _tag_index(registry_plain, repo_name, index_sig)[1]["manifests"]] == [
        sig_of_sig.digest]
    # order: every manifest PUT came after its blobs and children (the summary lists pushes in order)
    order = [d["digest"] for d in summary["pushed"]]
    assert order.index(children[0].digest) < order.index(index.digest) < order.index(index_sig.digest)
    assert order.index(index_sig.digest) < order.index(sig_of_sig.digest)


def test_cp_digest_destination_and_bad_references(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], registry_plain: Any, repo_name: str,
) -> None:
    layout = make_layout()
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_plain.host}/{repo_name}")
    assert r.rc == 0, r.err
    assert _client(registry_plain).list_tags(repo_name) == ["v1"]  # the source's tag
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", "./not-a-registry")
    assert r.rc == 2 and "--to-oci-layout" in r.err
    r = run_cli("cp", "--from-oci-layout", f"{layout}:nope", f"{registry_plain.host}/{repo_name}:x")
    assert r.rc == 1 and "nope" in r.err and "Traceback" not in r.err
    r = run_cli("cp", f"{registry_plain.host}/{repo_name}:missing", f"{registry_plain.host}/{repo_name}:y")
    assert r.rc == 1 and "not found" in r.err


def test_real_signatures_sign_list_verify_on_an_authenticated_registry(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], registry_basic: Any, repo_name: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's flow: sign a layout, ``cp -r`` it, then list/verify/sign on the registry reference."""
    import io
    import sys

    monkeypatch.setenv("OCISIGN_PROJECT_CONFIG", "none")
    host = registry_basic.host
    ref = f"{host}/{repo_name}:v1"
    assert run_cli("cert", "generate-test", "--default", "e2e-test").rc == 0
    policy = {"version": "1.0", "trustPolicies": [{
        "name": "e2e", "registryScopes": [f"{host}/{repo_name}", "local/e2e"],
        "signatureVerification": {"level": "strict"}, "trustStores": ["ca:e2e-test"],
        "trustedIdentities": ["*"]}]}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    assert run_cli("policy", "import", str(tmp_path / "policy.json")).rc == 0
    layout = make_layout()
    r = run_cli("sign", "--oci-layout", f"{layout}:v1")
    assert r.rc == 0, r.err
    monkeypatch.setattr(sys, "stdin", io.StringIO("wonderland-Pa55\n"))
    assert run_cli("login", "-u", "alice", "--password-stdin", host).rc == 0

    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref)
    assert r.rc == 0, r.err
    r = run_cli("list", ref)
    assert r.rc == 0, r.err
    assert MT_NOTARY_SIGNATURE in r.out and r.out.count("sha256:") == 2
    r = run_cli("verify", ref)
    assert r.rc == 0, r.err
    assert "Successfully verified signature" in r.out
    # signing on the registry adds a second signature through the referrers tag schema
    r = run_cli("sign", ref)
    assert r.rc == 0, r.err
    r = run_cli("list", ref, "-o", "json")
    assert r.rc == 0, r.err
    assert len(json.loads(r.out)["signatures"]) == 2
    # registry -> layout, then verify offline
    offline = tmp_path / "offline"
    assert run_cli("cp", "-r", "--to-oci-layout", ref, f"{offline}:v1").rc == 0
    r = run_cli("verify", "--oci-layout", f"{offline}:v1", "--scope", "local/e2e")
    assert r.rc == 0, r.err
    r = run_cli("list", "--oci-layout", f"{offline}:v1", "-o", "json")
    assert len(json.loads(r.out)["signatures"]) == 2


def test_registry_to_layout_tar_and_back(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str, tmp_path: Path,
) -> None:
    layout = make_layout()
    subject, sig = _sign_layout(pm, layout)
    ref = f"{registry_plain.host}/{repo_name}:v1"
    assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref).rc == 0
    archive = tmp_path / "image.tar"
    r = run_cli("cp", "-r", "--to-oci-layout", ref, f"{archive}:v1")
    assert r.rc == 0, r.err
    r = run_cli("cp", "-r", "--from-oci-layout", f"{archive}:v1", f"{registry_plain.host}/{repo_name}-again:v1",
                "-o", "json")
    assert r.rc == 0, r.err
    summary = json.loads(r.out)
    assert summary["digest"] == subject.digest
    assert [d["digest"] for d in summary["referrers"]] == [sig.digest]


def test_destination_by_digest_must_match(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str,
) -> None:
    layout = make_layout()
    subject = pm.open_layout(layout).resolve("v1")
    wrong = sha256_digest(b"something else")
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_plain.host}/{repo_name}@{wrong}")
    assert r.rc == 1 and "does not match" in r.err
    assert _client(registry_plain).head_manifest(repo_name, subject.digest) is None  # nothing written
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_plain.host}/{repo_name}@{subject.digest}")
    assert r.rc == 0, r.err
    assert r.out.splitlines()[0].endswith(f"[registry] {registry_plain.host}/{repo_name}@{subject.digest}")
    assert _client(registry_plain).list_tags(repo_name) == []


def test_missing_source_blob_fails_before_any_manifest(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], pm: OcisignPluginManager,
    registry_plain: Any, repo_name: str,
) -> None:
    layout = make_layout(layer_sizes=(3000,))
    target = pm.open_layout(layout)
    subject = target.resolve("v1")
    layer = json.loads(target.fetch(subject))["layers"][0]["digest"]
    target.close()
    (layout / "blobs" / "sha256" / layer.split(":")[1]).unlink()
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_plain.host}/{repo_name}:v1")
    assert r.rc == 1 and layer.split(":")[1] in r.err and "Traceback" not in r.err
    assert _client(registry_plain).head_manifest(repo_name, subject.digest) is None
