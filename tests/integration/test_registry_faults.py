"""Fault injection (reliability B8, fault rows 7–13): a loopback proxy in front of the real
docker-registry cuts uploads, answers 429/5xx, expires tokens, redirects to another origin.

Every failure must be a clear one-line error with exit 1, no manifest may be pushed before its
blobs, a re-run must complete, and credentials must never reach another origin. Retries sleep
through ``ocisign.registry.transport._sleep``, which the tests record instead of waiting.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocisign.errors import ContentError, RegistryError
from ocisign.oci.model import MT_INDEX, MT_MANIFEST, MT_NOTARY_SIGNATURE, Descriptor, canonical_json, sha256_digest
from ocisign.oci.referrers_tag import referrers_tag
from ocisign.registry import client as registry_client
from ocisign.registry import uploads as registry_uploads
from ocisign.registry.target import RegistryTarget
from ocisign.testing.fault_proxy import Action, FaultProxy, ProxyRequest
from ocisign.testing.sample_image import write_image_layout
from ocisign.types import RemoteOptions

pytestmark = pytest.mark.registry

USER, PASSWORD = "alice", "wonderland-Pa55"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()








def _manifest_puts(p: FaultProxy) -> list[ProxyRequest]:
    return p.seen("PUT", "/manifests/")


def _is_big_upload(r: ProxyRequest) -> bool:
    return r.method == "PUT" and "/blobs/uploads/" in r.path and int(r.header("Content-Length") or 0) > 1_000_000


def _assert_order(p: FaultProxy) -> None:
    """Blobs before manifests, the referrers index after the signature, the tag last."""
    reqs = [r for r in p.requests if r.method in ("PUT", "POST")]
    first_manifest = next(i for i, r in enumerate(reqs) if "/manifests/" in r.path)
    assert all("/manifests/" in r.path for r in reqs[first_manifest:]), [r.path for r in reqs]
    manifest_paths = [r.path for r in reqs[first_manifest:]]
    assert manifest_paths[-1].endswith("/manifests/v1")
    tag_index = next(i for i, x in enumerate(manifest_paths) if "/manifests/sha256-" in x)
    assert tag_index == len(manifest_paths) - 2


def test_push_order_blobs_manifests_referrers_index_tag(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor], repo_name: str
) -> None:
    layout, subject, sig = signed_layout
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    _assert_order(proxy)
    puts = [x.path.rsplit("/", 1)[-1] for x in _manifest_puts(proxy)]
    assert puts == [subject.digest, sig.digest, referrers_tag(subject.digest), "v1"]


def test_repush_with_the_tag_in_place_is_one_read_and_writes_nothing(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str
) -> None:
    layout = make_layout()
    dst = f"{proxy.host}/{repo_name}:v1"
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", dst).rc == 0
    proxy.clear()
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", dst)
    assert r.rc == 0, r.err
    # the tag already names the root: no HEAD of the root or its blobs, no upload, no tag PUT
    assert [(x.method, x.path.rsplit("/", 1)[-1]) for x in proxy.requests if x.path != "/v2/"] == [("GET", "v1")]


def test_a_tag_naming_another_manifest_is_moved_after_the_existence_checks(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str
) -> None:
    first, other = make_layout(), make_layout(layer_sizes=(1234,))
    dst = f"{proxy.host}/{repo_name}:v1"
    assert run_cli("cp", "--from-oci-layout", f"{other}:v1", dst).rc == 0
    proxy.clear()
    r = run_cli("cp", "--from-oci-layout", f"{first}:v1", dst)
    assert r.rc == 0, r.err
    digest = r.out.split("Digest: ", 1)[1].split()[0]
    assert proxy.seen("HEAD", f"/manifests/{digest}"), "the root was not checked"
    assert [x.path.rsplit("/", 1)[-1] for x in _manifest_puts(proxy)] == [digest, "v1"]
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    try:
        assert target.resolve("v1").digest == digest
    finally:
        target.close()


def test_cut_blob_upload_fails_cleanly_and_rerun_completes(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, sleeps: list[float],
) -> None:
    layout, subject, _ = signed_layout
    proxy.rule = lambda r: Action(cut_after=300_000) if _is_big_upload(r) else None
    dst = f"{proxy.host}/{repo_name}:v1"
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst)
    assert r.rc == 1
    assert "connection reset or closed" in r.err and "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert _manifest_puts(proxy) == []  # no manifest before its blobs
    assert len([x for x in proxy.requests if _is_big_upload(x)]) == registry_client.UPLOAD_ATTEMPTS
    proxy.rule = None
    proxy.clear()
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst, "-o", "json")
    assert r.rc == 0, r.err
    summary = json.loads(r.out)
    assert {d["size"] for d in summary["pushed"] if d["action"] == "uploaded"} >= {2_000_000}
    assert RegistryTarget(proxy.host, repo_name, RemoteOptions()).resolve("v1") == subject.plain()


def test_cut_once_is_retried_from_a_fresh_upload(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, sleeps: list[float],
) -> None:
    layout, _, _ = signed_layout
    cuts: list[int] = []

    def rule(r: ProxyRequest) -> Action | None:
        if _is_big_upload(r) and not cuts:
            cuts.append(1)
            return Action(cut_after=100_000)
        return None

    proxy.rule = rule
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert len([x for x in proxy.requests if _is_big_upload(x)]) == 2
    assert len(proxy.seen("POST", "/blobs/uploads/")) >= 3  # the retry opened a new session


def test_429_with_huge_retry_after_waits_capped_then_succeeds(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    sleeps: list[float],
) -> None:
    layout = make_layout()
    left = [2]

    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "HEAD" and left[0] > 0:
            left[0] -= 1
            return Action(status=429, headers={"Retry-After": "3600"})
        return None

    proxy.rule = rule
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert sleeps == [registry_client.MAX_RETRY_AFTER] * 2


def test_permanent_429_fails_after_the_retry_budget(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    sleeps: list[float],
) -> None:
    layout = make_layout()
    proxy.rule = lambda r: Action(status=429, headers={"Retry-After": "soon"})
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 1 and "too many requests" in r.err
    assert len(sleeps) == registry_client.MAX_RETRIES
    assert all(0.2 <= s <= 3.0 for s in sleeps)
    assert _manifest_puts(proxy) == []


def test_503_storm_on_manifest_put_then_ok(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    sleeps: list[float],
) -> None:
    layout = make_layout()
    left = [3]

    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "PUT" and "/manifests/" in r.path and left[0] > 0:
            left[0] -= 1
            return Action(status=503)
        return None

    proxy.rule = rule
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert len(sleeps) == 3


def test_500_on_upload_post_is_a_clear_error(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    sleeps: list[float],
) -> None:
    layout = make_layout()
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "storage on fire"}]}).encode()
    proxy.rule = lambda r: Action(status=500, body=body) if r.method == "POST" else None
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 1
    assert "internal server error" in r.err and "storage on fire" in r.err
    assert _manifest_puts(proxy) == []


def test_referrers_index_failure_reports_and_rerun_repairs(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, sleeps: list[float],
) -> None:
    layout, subject, sig = signed_layout
    proxy.rule = lambda r: Action(status=500) if r.method == "PUT" and "/manifests/sha256-" in r.path else None
    dst = f"{proxy.host}/{repo_name}:v1"
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst)
    assert r.rc == 1
    assert "referrer manifests were pushed, but updating the referrers index" in r.err
    assert not any(x.path.endswith("/manifests/v1") for x in _manifest_puts(proxy))  # tag last: not moved
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    assert target.exists(sig) and target.referrers(subject) == []
    proxy.rule = None
    proxy.clear()
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", dst)
    assert r.rc == 0, r.err
    assert [d.digest for d in target.referrers(subject)] == [sig.digest]
    assert not any(x.path.endswith("/manifests/" + sig.digest) for x in proxy.seen("PUT"))  # not re-pushed


def test_phantom_child_manifest_is_pushed_again(
    run_cli: Callable[..., Any], proxy: FaultProxy, tmp_path: Path, repo_name: str,
) -> None:
    root = tmp_path / "multi"
    kids = [write_image_layout(root, tag=None), write_image_layout(root, tag=None, layer_sizes=(5000,))]
    children = [Descriptor(media_type=MT_MANIFEST, digest=str(k["digest"]), size=int(str(k["size"]))) for k in kids]
    index = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [c.to_json() for c in children]})
    digest = sha256_digest(index)
    (root / "blobs" / "sha256" / digest[7:]).write_bytes(index)
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
        {"mediaType": MT_INDEX, "digest": digest, "size": len(index),
         "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    phantom = children[1]

    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "HEAD" and r.path.endswith(f"/manifests/{phantom.digest}"):
            return Action(status=200, headers={"Docker-Content-Digest": phantom.digest, "Content-Type": MT_MANIFEST})
        return None

    proxy.rule = rule
    r = run_cli("cp", "--from-oci-layout", f"{root}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert "pushing its successors again" in r.err
    proxy.rule = None
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    assert target.exists(phantom) and target.resolve("v1").digest == digest


def test_token_expiry_mid_operation_reauthenticates_once(
    run_cli: Callable[..., Any], token_registry: Any, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str,
) -> None:
    reg, tokens = token_registry
    layout, _, _ = signed_layout
    uses: dict[str, int] = {}
    challenge = f'Bearer realm="{tokens.realm}",service="{tokens.service}",scope="repository:{repo_name}:pull,push"'

    def rule(r: ProxyRequest) -> Action | None:
        auth = r.header("Authorization") or ""
        if auth.startswith("Bearer "):
            uses[auth] = uses.get(auth, 0) + 1
            if uses[auth] > 5:  # every token "expires" after five requests
                return Action(status=401, headers={"WWW-Authenticate": challenge})
        return None

    before = len(tokens.requests)
    with FaultProxy(reg.url, rule=rule) as p:
        r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{p.host}/{repo_name}:v1",
                    "-u", USER, "-P", PASSWORD)
        assert r.rc == 0, r.err
        assert len(tokens.requests) - before >= 3  # fetched again after each expiry
        assert len(p.seen("PUT", "/manifests/")) == 4


def test_expired_tokens_fail_with_unauthorized(
    run_cli: Callable[..., Any], token_registry: Any, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    reg, tokens = token_registry
    layout = make_layout()
    tokens.issue_expired = True
    try:
        r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{reg.host}/{repo_name}:v1",
                    "-u", USER, "-P", PASSWORD)
    finally:
        tokens.issue_expired = False
    assert r.rc == 1 and "unauthorized" in r.err and PASSWORD not in r.err


@pytest.fixture
def basic_pair(registry_basic: Any) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """(registry-origin proxy on 127.0.0.1, foreign-origin proxy on 127.0.0.2 that adds its own auth)."""
    with FaultProxy(registry_basic.url) as home, FaultProxy(
        registry_basic.url, host="127.0.0.2", inject_authorization=BASIC
    ) as foreign:
        yield home, foreign


def _leaked(p: FaultProxy) -> list[ProxyRequest]:
    return [r for r in p.requests if r.header("Authorization")]


def test_blob_redirect_to_another_origin_drops_credentials(
    run_cli: Callable[..., Any], basic_pair: tuple[FaultProxy, FaultProxy],
    signed_layout: tuple[Path, Descriptor, Descriptor], repo_name: str, tmp_path: Path,
) -> None:
    home, foreign = basic_pair
    layout, _, _ = signed_layout
    ref = f"{home.host}/{repo_name}:v1"
    assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref, "-u", USER, "-P", PASSWORD).rc == 0
    home.rule = lambda r: (Action(status=307, headers={"Location": foreign.origin + r.path})
                           if r.method == "GET" and "/blobs/" in r.path else None)
    out = tmp_path / "pulled"
    r = run_cli("cp", "-r", "--to-oci-layout", ref, f"{out}:v1", "-u", USER, "-P", PASSWORD)
    assert r.rc == 0, r.err
    assert foreign.seen("GET", "/blobs/"), "the redirect was not followed"
    assert _leaked(foreign) == []


def test_upload_location_on_another_origin_is_refused(
    run_cli: Callable[..., Any], basic_pair: tuple[FaultProxy, FaultProxy], make_layout: Callable[..., Path],
    repo_name: str,
) -> None:
    home, foreign = basic_pair
    layout = make_layout()
    home.rule = lambda r: (Action(rewrite_location=lambda v: v.replace(home.origin, foreign.origin))
                           if r.method == "POST" else None)
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{home.host}/{repo_name}:v1", "-u", USER, "-P", PASSWORD)
    assert r.rc == 1 and "refusing upload Location on another origin" in r.err
    assert foreign.requests == []
    assert _manifest_puts(home) == []


@pytest.mark.parametrize("realm", ["foreign", "http://169.254.169.254/token", "file:///etc/passwd"])
def test_bearer_realm_on_another_origin_gets_no_credentials(
    run_cli: Callable[..., Any], basic_pair: tuple[FaultProxy, FaultProxy], make_layout: Callable[..., Path],
    repo_name: str, realm: str,
) -> None:
    home, foreign = basic_pair
    url = foreign.origin + "/token" if realm == "foreign" else realm
    home.rule = lambda r: Action(status=401, headers={"WWW-Authenticate": f'Bearer realm="{url}",service="x"'})
    layout = make_layout()
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{home.host}/{repo_name}:v1", "-u", USER, "-P", PASSWORD)
    assert r.rc == 1 and "refusing" in r.err and PASSWORD not in r.err
    assert foreign.requests == []


def test_referrers_link_to_another_origin_is_refused(
    basic_pair: tuple[FaultProxy, FaultProxy], repo_name: str,
) -> None:
    home, foreign = basic_pair
    body = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})
    home.rule = lambda r: (Action(status=200, body=body, headers={
        "Content-Type": MT_INDEX, "Link": f'<{foreign.origin}/v2/{repo_name}/referrers/x?n=1>; rel="next"'})
        if "/referrers/" in r.path else None)
    target = RegistryTarget(home.host, repo_name, RemoteOptions(username=USER, password=PASSWORD))
    subject = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(b"s"), size=1)
    with pytest.raises(RegistryError, match="another origin"):
        target.referrers(subject)
    assert foreign.requests == []


def test_endless_and_lying_manifest_bodies_are_bounded(proxy: FaultProxy, repo_name: str) -> None:
    proxy.rule = lambda r: Action(status=200, endless=True, headers={"Content-Type": MT_MANIFEST})
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    with pytest.raises(ContentError, match="limit"):
        target.resolve("v1")
    proxy.rule = lambda r: Action(status=200, body=b"{}", headers={"Content-Type": MT_MANIFEST,
                                                                  "X-Ignored": "1"})
    with pytest.raises(ContentError):
        target.resolve("v1")  # an empty object is not a manifest


def test_docker_content_digest_mismatch_is_rejected(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    layout = make_layout()
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1").rc == 0
    proxy.rule = lambda r: (Action(response_headers={"Docker-Content-Digest": "sha256:" + "0" * 64})
                            if r.method == "GET" and "/manifests/" in r.path else None)
    with pytest.raises(ContentError, match="Docker-Content-Digest"):
        RegistryTarget(proxy.host, repo_name, RemoteOptions()).resolve("v1")


def test_registry_with_referrers_api_gets_no_fallback_tag(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str,
) -> None:
    """A registry answering ``OCI-Subject`` (and serving the referrers API) needs no sha256-<hex> index."""
    layout, subject, sig = signed_layout
    other = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(b"sbom"), size=4,
                       artifact_type="application/sbom")
    listing = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX,
                              "manifests": [sig.to_json(), other.to_json(), sig.to_json()]})

    def rule(r: ProxyRequest) -> Action | None:
        if "/referrers/" in r.path:
            return Action(status=200, body=listing, headers={"Content-Type": MT_INDEX})
        if r.method == "PUT" and r.path.endswith("/manifests/" + sig.digest):
            return Action(response_headers={"OCI-Subject": subject.digest})
        return None

    proxy.rule = rule
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert not any("/manifests/sha256-" in x.path for x in proxy.seen("PUT"))
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    assert [d.digest for d in target.referrers(subject, artifact_type=MT_NOTARY_SIGNATURE)] == [sig.digest]
    assert [d.digest for d in target.referrers(subject)] == [sig.digest, other.digest]  # duplicates dropped
    assert target.referrers_api is True


def test_413_on_monolithic_upload_falls_back_to_chunked(
    proxy: FaultProxy, repo_name: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    monkeypatch.setattr(registry_uploads, "CHUNK_SIZE", 700_000)
    data = bytes(range(256)) * 8000  # 2 048 000 bytes
    desc = Descriptor(media_type="application/octet-stream", digest=sha256_digest(data), size=len(data))
    proxy.rule = lambda r: (Action(status=413) if r.method == "PUT" and int(r.header("Content-Length") or 0) > 1_000_000
                            else None)
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    with target.writer() as w:
        w.push_blob(desc, io.BytesIO(data))
    patches = proxy.seen("PATCH", "/blobs/uploads/")
    assert [p.header("Content-Range") for p in patches] == ["0-699999", "700000-1399999", "1400000-2047999"]
    with target.open_blob(desc) as fh:
        assert fh.read() == data


def test_copy_between_registries_keeps_each_sides_credentials(
    run_cli: Callable[..., Any], basic_pair: tuple[FaultProxy, FaultProxy], proxy: FaultProxy,
    make_layout: Callable[..., Path], repo_name: str,
) -> None:
    home, _ = basic_pair
    layout = make_layout()
    src = f"{home.host}/{repo_name}:v1"
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", src, "-u", USER, "-P", PASSWORD).rc == 0
    dst = f"{proxy.host}/{repo_name}:v1"
    r = run_cli("cp", src, dst, "-u", USER, "-P", PASSWORD)
    assert r.rc == 2 and "--from-username" in r.err
    r = run_cli("cp", src, dst, "--from-username", USER, "--from-password", PASSWORD)
    assert r.rc == 0, r.err
    assert _leaked(proxy) == []  # the other registry never saw the source's credentials
    assert any(x.header("Authorization") for x in home.requests)


def test_endless_error_bodies_are_not_read(
    proxy: FaultProxy, repo_name: str, sleeps: list[float],
) -> None:
    proxy.rule = lambda r: Action(status=503, endless=True, headers={"Content-Type": "text/plain"})
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    with pytest.raises(RegistryError, match="service unavailable"):
        target.resolve("v1")  # GET: each endless 503 body is cut, not read to its end
    assert len(sleeps) == registry_client.MAX_RETRIES
