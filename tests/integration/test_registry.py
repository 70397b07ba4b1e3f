"""The registry client and Target against real docker-registry 2.8.2 instances: plain HTTP, HTTPS
with a generated CA, htpasswd Basic auth and Bearer token auth; the referrers tag schema."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.errors import AuthError, ContentError, NotFoundError, RegistryError
from ocisign.oci.model import MT_INDEX, MT_NOTARY_SIGNATURE, Descriptor, sha256_digest
from ocisign.oci.referrers_tag import build_index, merge, referrers_tag
from ocisign.registry.auth import Origin, check_realm, parse_challenges
from ocisign.registry.client import RegistryClient, is_loopback_host, retry_after, use_plain_http
from ocisign.registry.target import RegistryTarget
from ocisign.testing.registry import add_signature_like
from ocisign.types import Credentials, RemoteOptions

REG_USER = ("alice", "wonderland-Pa55")


# --- pure parts ------------------------------------------------------------------------------
def test_parse_challenges_with_quoted_commas() -> None:
    [c] = parse_challenges(['Bearer realm="https://a/token",service="reg",scope="repository:x/y:pull,push"'])
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://a/token", "service": "reg", "scope": "repository:x/y:pull,push"}
    b = parse_challenges(['Basic realm="basic-realm"'])
    assert [(x.scheme, dict(x.params)) for x in b] == [("basic", {"realm": "basic-realm"})]


@pytest.mark.parametrize(
    ("realm", "creds", "ok"),
    [
        ("https://reg.example/token", True, True),
        ("http://reg.example/token", True, False),  # downgrade on an https registry
        ("https://auth.other.example/token", True, False),  # credentials to another host
        ("https://auth.other.example/token", False, True),  # anonymous token from a public host is fine
        ("http://169.254.169.254/latest", False, False),
        ("https://10.0.0.1/token", False, False),
        ("file:///etc/passwd", False, False),
        ("ftp://reg.example/x", True, False),
    ],
)
def test_realm_rules(realm: str, creds: bool, ok: bool) -> None:
    registry = Origin.of("https://reg.example")
    if ok:
        assert check_realm(realm, registry, with_credentials=creds) == realm
    else:
        with pytest.raises(AuthError):
            check_realm(realm, registry, with_credentials=creds)


def test_plain_http_defaults() -> None:
    assert is_loopback_host("localhost:5001") and is_loopback_host("127.0.0.1:5000") and is_loopback_host("[::1]:80")
    assert not is_loopback_host("registry.example:5000")
    assert use_plain_http("localhost:5001", RemoteOptions())
    assert not use_plain_http("localhost:5001", RemoteOptions(ca_file="/x"))
    assert not use_plain_http("localhost:5001", RemoteOptions(insecure=True))
    assert not use_plain_http("registry.example", RemoteOptions())
    assert use_plain_http("registry.example", RemoteOptions(plain_http=True))


def test_retry_after_is_capped() -> None:
    assert retry_after("3600") == 3.0
    assert retry_after("1") == 1.0
    assert retry_after("garbage") is None
    assert retry_after("Wed, 21 Oct 2099 07:28:00 GMT") == 3.0


def test_referrers_index_merge_dedupes_and_completes_entries() -> None:
    a = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json", digest=sha256_digest(b"a"), size=1)
    b = Descriptor(media_type=a.media_type, digest=sha256_digest(b"b"), size=1)
    a_full = Descriptor(media_type=a.media_type, digest=a.digest, size=1, artifact_type=MT_NOTARY_SIGNATURE,
                        annotations={"k": "v"})
    merged = merge([a, a, b], [a_full])
    assert merged == [a_full, b]
    assert merge(merged, [], remove=[b.digest]) == [a_full]
    assert json.loads(build_index([]))["manifests"] == []
    assert referrers_tag(a.digest) == "sha256-" + a.digest.split(":")[1]


# --- against docker-registry -----------------------------------------------------------------
pytest_registry = pytest.mark.registry


def _push_image(target: RegistryTarget, pm: Any, make_layout: Callable[..., Path]) -> Descriptor:
    from ocisign.registry.copy import copy

    layout = pm.open_layout(make_layout())
    try:
        return copy(layout, "v1", target, tag="v1").root
    finally:
        layout.close()


@pytest_registry
def test_blob_upload_head_and_streamed_fetch(registry_plain: Any, repo_name: str) -> None:
    target = RegistryTarget(registry_plain.host, repo_name, RemoteOptions())
    data = b"x" * (3 * 1024 * 1024 + 17)
    desc = Descriptor(media_type="application/octet-stream", digest=sha256_digest(data), size=len(data))
    assert not target.exists(desc)
    with target.writer() as w:
        w.push_blob(desc, io.BytesIO(data))
    assert target.exists(desc)
    with target.open_blob(desc) as fh:
        assert fh.read() == data
    assert target.fetch(desc, max_size=len(data)) == data
    with pytest.raises(ContentError):
        target.fetch(desc, max_size=1024)
    # content that does not match its descriptor is refused before the registry commits it
    bad = Descriptor(media_type=desc.media_type, digest=sha256_digest(b"other"), size=len(data))
    with pytest.raises(ContentError), target.writer() as w:
        w.push_blob(bad, io.BytesIO(data))
    assert not target.exists(bad)
    target.close()


@pytest_registry
def test_resolve_hashes_manifest_and_accept_headers(
    registry_plain: Any, repo_name: str, pm: Any, make_layout: Callable[..., Path]
) -> None:
    target = RegistryTarget(registry_plain.host, repo_name, RemoteOptions())
    root = _push_image(target, pm, make_layout)
    assert target.resolve("v1") == root
    assert target.resolve(root.digest) == root
    with pytest.raises(NotFoundError):
        target.resolve("nope")
    # HEAD needs OCI Accept types on 2.8.2; exists() sends them
    assert target.exists(root)
    target.close()


@pytest_registry
def test_referrers_tag_index_update_prune_and_gc(
    registry_plain: Any, repo_name: str, pm: Any, make_layout: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = RegistryTarget(registry_plain.host, repo_name, RemoteOptions())
    root = _push_image(target, pm, make_layout)
    s1 = add_signature_like(target, root, payload=b"one")
    s2 = add_signature_like(target, root, payload=b"two", legacy=False)
    assert target.referrers_api is False  # docker-registry 2.8.2 has no referrers API
    refs = target.referrers(root)
    assert [(d.digest, d.artifact_type) for d in refs] == [(s1.digest, MT_NOTARY_SIGNATURE),
                                                            (s2.digest, MT_NOTARY_SIGNATURE)]
    assert target.referrers(root, artifact_type="application/other") == []
    client = target.client
    tag = referrers_tag(root.digest)
    first_index, _ = client.get_manifest(repo_name, tag, accept=MT_INDEX)

    # a stale entry (its manifest deleted) is pruned on the next update
    client.delete_manifest(repo_name, s1.digest)
    s3 = add_signature_like(target, root, payload=b"three")
    assert [d.digest for d in target.referrers(root)] == [s2.digest, s3.digest]
    assert "pruning 1 entries" in capsys.readouterr().err
    # the superseded index was deleted (delete is enabled on this registry)
    assert client.head_manifest(repo_name, first_index.digest) is None

    # the tag resolving to something that is not an index is reported, not trusted
    client.put_manifest(repo_name, tag, target.fetch(root), root.media_type)
    with pytest.raises(ContentError, match="not a referrers index"):
        target.referrers(root)
    target.close()


@pytest_registry
def test_failed_old_index_delete_is_only_a_warning(
    tmp_path: Path, pm: Any, make_layout: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from ocisign.testing.registry import RegistryProcess

    with RegistryProcess(tmp_path / "nodelete", delete=False) as reg:
        target = RegistryTarget(reg.host, "r/x", RemoteOptions())
        root = _push_image(target, pm, make_layout)
        add_signature_like(target, root, payload=b"1")
        s2 = add_signature_like(target, root, payload=b"2")
        assert s2.digest in [d.digest for d in target.referrers(root)]
        err = capsys.readouterr().err
        assert "removal of the outdated referrers index" in err and "garbage collection" in err
        target.close()


@pytest_registry
def test_tls_verified_by_default_and_ca_file(
    registry_tls: Any, repo_name: str, run_cli: Callable[..., Any], make_layout: Callable[..., Path]
) -> None:
    layout = make_layout()
    ref = f"{registry_tls.host}/{repo_name}:v1"
    # with --ca-file TLS is used and verified
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "--ca-file", str(registry_tls.tls.ca_cert))
    assert r.rc == 0, r.err
    # with --insecure (TLS without verification) it works too
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "--insecure")
    assert r.rc == 0, r.err
    # an unusable --ca-file is a clear error
    with pytest.raises(RegistryError, match="cannot load CA"):
        RegistryClient(registry_tls.host, RemoteOptions(ca_file="/dev/null"))
    # 127.0.0.1 is plain HTTP by default: against a TLS port that fails clearly, exit 1
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref)
    assert r.rc == 1 and "Traceback" not in r.err


@pytest_registry
def test_tls_without_trusted_ca_fails(registry_tls: Any, tmp_path: Path) -> None:
    from ocisign.testing.registry import make_tls

    other_ca = make_tls(tmp_path / "other").ca_cert
    client = RegistryClient(registry_tls.host, RemoteOptions(ca_file=str(other_ca)))
    with pytest.raises(RegistryError, match="TLS"):
        client.ping()
    ok = RegistryClient(registry_tls.host, RemoteOptions(ca_file=str(registry_tls.tls.ca_cert)))
    ok.ping()


@pytest_registry
def test_basic_auth(registry_basic: Any, repo_name: str, run_cli: Callable[..., Any],
                    make_layout: Callable[..., Path]) -> None:
    layout = make_layout()
    ref = f"{registry_basic.host}/{repo_name}:v1"
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref)
    assert r.rc == 1 and "authentication required" in r.err
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "-u", REG_USER[0], "-P", "wrong")
    assert r.rc == 1 and "unauthorized" in r.err and "wrong" not in r.err
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "-u", REG_USER[0], "-P", REG_USER[1])
    assert r.rc == 0, r.err
    assert "insecure" in r.err  # the --password warning
    target = RegistryTarget(registry_basic.host, repo_name, RemoteOptions(),
                            lambda: Credentials(username=REG_USER[0], password=REG_USER[1]))
    assert target.resolve("v1").size > 0
    assert target.client.auth.scheme == "basic"


@pytest_registry
def test_token_auth_scopes_and_anonymous_pull(token_registry: Any, repo_name: str, pm: Any,
                                              make_layout: Callable[..., Path]) -> None:
    reg, tokens = token_registry
    creds = Credentials(username=REG_USER[0], password=REG_USER[1])
    target = RegistryTarget(reg.host, repo_name, RemoteOptions(), lambda: creds)
    root = _push_image(target, pm, make_layout)
    add_signature_like(target, root)
    assert target.client.auth.scheme == "bearer"
    scopes = [r["path"] for r in tokens.requests]
    assert any(f"repository%3A{repo_name.replace('/', '%2F')}%3Apull%2Cpush" in p for p in scopes), scopes
    assert all(r["headers"].get("Authorization", "").startswith("Basic ") for r in tokens.requests)
    # anonymous: pull-only tokens; reading works, pushing is refused clearly
    anon = RegistryTarget(reg.host, repo_name, RemoteOptions())
    assert anon.resolve("v1") == root
    with pytest.raises(AuthError), anon.writer() as w:
        w.push_manifest(root, anon.fetch(root), tag="v2")
    bad = RegistryTarget(reg.host, repo_name, RemoteOptions(),
                         lambda: Credentials(username=REG_USER[0], password="nope"))
    with pytest.raises(AuthError, match="token server refused"):
        bad.resolve("v1")


@pytest_registry
def test_identity_token_uses_the_oauth2_refresh_grant(token_registry: Any, repo_name: str, pm: Any,
                                                      make_layout: Callable[..., Path]) -> None:
    reg, tokens = token_registry
    tokens.refresh_tokens["refresh-abc"] = REG_USER[0]
    target = RegistryTarget(reg.host, repo_name, RemoteOptions(), lambda: Credentials(identity_token="refresh-abc"))
    root = _push_image(target, pm, make_layout)
    assert target.resolve("v1") == root
    posts = [r for r in tokens.requests if r["method"] == "POST"]
    assert posts and all("Authorization" not in r["headers"] for r in posts)
    bad = RegistryTarget(reg.host, repo_name, RemoteOptions(), lambda: Credentials(identity_token="stolen"))
    with pytest.raises(AuthError):
        bad.resolve("v1")


def test_progress_lines_on_a_terminal() -> None:
    from ocisign.registry.copy import Progress

    out = io.StringIO()
    p = Progress(out, enabled=True)
    d = Descriptor(media_type="application/vnd.oci.image.layer.v1.tar", digest=sha256_digest(b"x"), size=2_000_000)
    p.add_total(d.size)
    p.status("Copying", d)
    p.on_bytes(2_000_000)
    p.status("Copied", d)
    p.finish()
    text = out.getvalue()
    assert f"Copying {d.digest[7:19]} {d.media_type}\n" in text
    assert "2.0 MB / 2.0 MB" in text and "/s" in text
    silent = io.StringIO()
    q = Progress(silent, enabled=False)
    q.status("Copied", d)
    q.on_bytes(5)
    assert silent.getvalue() == ""
