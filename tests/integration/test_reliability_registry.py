"""Reliability rows B8 (registry responses), B9 (CLI/env) and faults 12–16 of the reliability record
that no other test exercised, against the real docker-registry behind the fault proxy.

Each test is named after its row (``test_b8_4_…``, ``test_fault_16_…``). Rows already covered
elsewhere are listed in the module's report, not repeated here. Every failure must be one clear
line with exit 1, no traceback, no credentials off-origin, no manifest before its blobs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys
from ocisign.errors import ContentError, RegistryError
from ocisign.oci.model import MT_INDEX, MT_MANIFEST, MT_NOTARY_SIGNATURE, Descriptor, canonical_json, sha256_digest
from ocisign.oci.referrers_tag import referrers_tag
from ocisign.registry import client as registry_client
from ocisign.registry import transport as registry_transport
from ocisign.registry.auth import Origin, RegistryAuth
from ocisign.registry.target import RegistryTarget
from ocisign.testing.fault_proxy import Action, FaultProxy, ProxyRequest
from ocisign.testing.registry import add_signature_like
from ocisign.types import Credentials, RemoteOptions

pytestmark = pytest.mark.registry

USER, PASSWORD = "alice", "wonderland-Pa55"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REPO_ROOT = Path(__file__).resolve().parents[2]








@pytest.fixture
def signing_key(config_dir: Path, make_keypair: Callable[..., Any]) -> Any:
    """A default EC P-256 signing key registered in the test's config dir."""
    kp = make_keypair("ec256")
    with edit_signing_keys(ConfigDir(config_dir)) as keys:
        keys.add(KeyRecord(name="k", key_path=str(kp.key_path), cert_path=str(kp.cert_path)), make_default=True)
    return kp


def _pushed(run_cli: Callable[..., Any], layout: Path, proxy: FaultProxy, repo: str) -> Descriptor:
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo}:v1")
    assert r.rc == 0, r.err
    proxy.clear()
    return RegistryTarget(proxy.host, repo, RemoteOptions()).resolve("v1")


def _one_line(err: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def _writes(p: FaultProxy) -> list[ProxyRequest]:
    return [r for r in p.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")]


@contextlib.contextmanager
def raw_server(respond: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback TCP server answering each connection with ``respond(sock)``; yields ``host:port``."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    def _answer(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            buf = b""
            while b"\r\n\r\n" not in buf:
                piece = conn.recv(4096)
                if not piece:
                    return
                buf += piece
            respond(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join(2)
        srv.close()


# --- B8: registry responses ------------------------------------------------------------------------
def test_b8_1_manifest_body_not_matching_the_requested_digest(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    desc = _pushed(run_cli, make_layout(), proxy, repo_name)
    other = canonical_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}"), "size": 2}, "layers": []})
    proxy.rule = lambda r: (Action(status=200, body=other, headers={"Content-Type": MT_MANIFEST})
                            if r.method == "GET" and r.path.endswith(desc.digest) else None)
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    with pytest.raises(ContentError, match="does not match the reference"):
        target.resolve(desc.digest)
    r = run_cli("list", f"{proxy.host}/{repo_name}@{desc.digest}")
    assert r.rc == 1 and "does not match the reference" in r.err
    _one_line(r.err)


def test_b8_2_head_digest_lie_never_decides_what_is_signed(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    signing_key: Any,
) -> None:
    """HEAD says X, GET returns content hashing to Y: sign by tag signs Y (the hashed bytes)."""
    desc = _pushed(run_cli, make_layout(), proxy, repo_name)
    lie = "sha256:" + "ab" * 32
    proxy.rule = lambda r: (Action(response_headers={"Docker-Content-Digest": lie})
                            if r.method == "HEAD" and "/manifests/" in r.path else None)
    r = run_cli("sign", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert desc.digest in r.out and lie not in r.out
    assert "Always sign the artifact using digest" in r.err
    proxy.rule = None
    refs = RegistryTarget(proxy.host, repo_name, RemoteOptions()).referrers(desc, artifact_type=MT_NOTARY_SIGNATURE)
    assert len(refs) == 1
    assert not any(lie in x.path for x in proxy.requests)


@pytest.mark.parametrize("case", ["index-content-type", "docker-content-type"])
def test_b8_3_content_type_differs_from_media_type(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str, case: str,
) -> None:
    _pushed(run_cli, make_layout(), proxy, repo_name)
    ctype = {"index-content-type": MT_INDEX,
             "docker-content-type": "application/vnd.docker.distribution.manifest.v2+json"}[case]
    proxy.rule = lambda r: (Action(response_headers={"Content-Type": ctype})
                            if r.method == "GET" and "/manifests/" in r.path else None)
    with pytest.raises(ContentError, match=r"mediaType|media type"):
        RegistryTarget(proxy.host, repo_name, RemoteOptions()).resolve("v1")
    r = run_cli("list", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 1
    _one_line(r.err)


def test_b8_3_non_manifest_content_type_defers_to_the_body_media_type(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    """Deliberate: a Content-Type that names no manifest type (``text/plain``) is not a conflicting
    claim; the body's own ``mediaType`` decides, and a body without one is refused."""
    desc = _pushed(run_cli, make_layout(), proxy, repo_name)
    proxy.rule = lambda r: (Action(response_headers={"Content-Type": "text/plain"})
                            if r.method == "GET" and "/manifests/" in r.path else None)
    assert RegistryTarget(proxy.host, repo_name, RemoteOptions()).resolve("v1") == desc
    bare = canonical_json({"schemaVersion": 2, "layers": []})
    proxy.rule = lambda r: (Action(status=200, body=bare, headers={"Content-Type": "text/plain"})
                            if r.method == "GET" and "/manifests/" in r.path else None)
    with pytest.raises(ContentError, match="media type"):
        RegistryTarget(proxy.host, repo_name, RemoteOptions()).resolve("v1")


def _manifest_response(body: bytes, declared: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + MT_MANIFEST.encode() + b"\r\nContent-Length: "
            + str(declared).encode() + b"\r\nConnection: close\r\n\r\n" + body)


@pytest.mark.parametrize("case", ["longer-than-body", "shorter-than-body"])
def test_b8_4_content_length_lies(case: str, sleeps: list[float]) -> None:
    body = canonical_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "layers": []})
    declared = len(body) + 500 if case == "longer-than-body" else len(body) // 2

    def respond(conn: socket.socket) -> None:
        conn.sendall(_manifest_response(body, declared))

    with raw_server(respond) as host:
        target = RegistryTarget(host, "r", RemoteOptions(timeout=2))
        with pytest.raises((RegistryError, ContentError)) as info:
            target.resolve("v1")
    assert "\n" not in str(info.value)


def test_b8_4_slowloris_manifest_body_meets_the_deadline(sleeps: list[float]) -> None:
    """One byte every 0.2 s stays under the per-read timeout; the overall deadline must still cut it."""
    body = b" " * 200

    def respond(conn: socket.socket) -> None:
        conn.sendall(_manifest_response(b"", len(body)))
        for b in body:
            conn.sendall(bytes([b]))
            time.sleep(0.2)

    with raw_server(respond) as host:
        target = RegistryTarget(host, "r", RemoteOptions(timeout=1))
        target.client._deadline = 1.5
        start = time.monotonic()
        with pytest.raises(RegistryError, match="too slow"):
            target.resolve("v1")
        assert time.monotonic() - start < 5  # not the 40 s the whole trickle takes


def test_b8_4_slowloris_leftover_body_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short body the client only discards (here after ``GET /v2/``) is cut after a deadline."""
    monkeypatch.setattr(registry_transport, "DRAIN_DEADLINE", 0.5)

    def respond(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
        for _ in range(200):
            conn.sendall(b" ")
            time.sleep(0.2)

    with raw_server(respond) as host:
        client = registry_client.RegistryClient(host, RemoteOptions(timeout=1))
        start = time.monotonic()
        client.ping()
        assert time.monotonic() - start < 3


def test_b8_6_dns_failure_is_a_clear_error(
    run_cli: Callable[..., Any], make_layout: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float],
) -> None:
    real = socket.getaddrinfo

    def fake(host: Any, *a: Any, **k: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *a, **k)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    r = run_cli("cp", "--from-oci-layout", f"{make_layout()}:v1", "registry.invalid:5000/x:v1", "--plain-http")
    assert r.rc == 1
    _one_line(r.err)
    assert "registry.invalid" in r.err


def test_b8_8_relative_upload_location_is_resolved(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    import urllib.parse

    def relative(v: str) -> str:
        p = urllib.parse.urlsplit(v)
        return p.path + ("?" + p.query if p.query else "")

    proxy.rule = lambda r: Action(rewrite_location=relative) if r.method == "POST" else None
    r = run_cli("cp", "--from-oci-layout", f"{make_layout()}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert proxy.seen("PUT", "/blobs/uploads/")


@pytest.mark.parametrize("location", ["http://reg.example/v2/r/blobs/uploads/u?_state=s",
                                      "https://reg.example:8443/v2/r/blobs/uploads/u",
                                      "https://evil.example/v2/r/blobs/uploads/u"])
def test_b8_8_upload_location_downgrade_or_other_origin_is_refused(location: str) -> None:
    client = registry_client.RegistryClient("reg.example", RemoteOptions())
    assert client.scheme == "https"

    class Resp:
        headers: ClassVar[dict[str, str]] = {"Location": location}

    with pytest.raises(RegistryError, match="another origin") as info:
        client._upload_location(Resp(), client.url("/v2/r/blobs/uploads/"), "upload")  # type: ignore[arg-type]
    assert "_state" not in str(info.value)


def test_b8_9_redirect_to_same_host_other_port_drops_credentials(
    run_cli: Callable[..., Any], registry_basic: Any, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, tmp_path: Path,
) -> None:
    layout, _, _ = signed_layout
    with FaultProxy(registry_basic.url) as home, FaultProxy(registry_basic.url, inject_authorization=BASIC) as other:
        assert home.origin.split(":")[1] == other.origin.split(":")[1]  # same host, other port
        ref = f"{home.host}/{repo_name}:v1"
        assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref, "-u", USER, "-P", PASSWORD).rc == 0
        home.rule = lambda r: (Action(status=307, headers={"Location": other.origin + r.path})
                               if r.method == "GET" and ("/blobs/" in r.path or "/manifests/sha256:" in r.path)
                               else None)
        r = run_cli("cp", "-r", "--to-oci-layout", ref, f"{tmp_path / 'pulled'}:v1", "-u", USER, "-P", PASSWORD)
        assert r.rc == 0, r.err
        assert other.seen("GET", "/blobs/") and other.seen("GET", "/manifests/")
        assert [x for x in other.requests if x.header("Authorization")] == []


@pytest.mark.parametrize("case", ["self-link", "endless-pages"])
def test_b8_10_referrers_pagination_is_bounded(proxy: FaultProxy, repo_name: str, case: str) -> None:
    body = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []})
    pages: list[int] = []

    def rule(r: ProxyRequest) -> Action | None:
        if "/referrers/" not in r.path:
            return None
        pages.append(1)
        nxt = r.path if case == "self-link" else r.path.split("?")[0] + f"?n={len(pages)}"
        return Action(status=200, body=body, headers={"Content-Type": MT_INDEX, "Link": f'<{nxt}>; rel="next"'})

    proxy.rule = rule
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    subject = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(b"s"), size=1)
    with pytest.raises(RegistryError, match="loops" if case == "self-link" else "pages"):
        target.referrers(subject)
    assert len(pages) <= registry_client.MAX_PAGES


@pytest.mark.parametrize("case", ["image-manifest-at-tag", "subject-itself-at-tag"])
def test_b8_11_fallback_tag_that_is_not_a_referrers_index(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, case: str, sleeps: list[float],
) -> None:
    layout, subject, _ = signed_layout
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1").rc == 0
    tag = referrers_tag(subject.digest)
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    if case == "image-manifest-at-tag":  # a real tag holding an image (pushed by someone else)
        data = target.fetch(subject)
        target.client.put_manifest(repo_name, tag, data, MT_MANIFEST)
    else:  # GitLab-style: the registry answers sha256-<hex> with the subject itself (oras#2148)
        proxy.rule = lambda r: (Action(status=200, body=target.fetch(subject), headers={"Content-Type": MT_MANIFEST})
                                if r.method == "GET" and r.path.endswith("/manifests/" + tag) else None)
    proxy.clear()
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 1
    _one_line(r.err)
    assert "is not a referrers index" in r.err and "re-run" in r.err
    assert not any(x.path.endswith("/manifests/" + tag) for x in proxy.seen("PUT"))  # not overwritten
    r = run_cli("list", f"{proxy.host}/{repo_name}@{subject.digest}")
    assert r.rc == 1 and "is not a referrers index" in r.err


def _referrers_body(case: str, subject: Descriptor) -> Action:
    if case == "invalid-json":
        return Action(status=200, body=b'{"manifests": [', headers={"Content-Type": MT_INDEX})
    if case == "wrong-media-type":
        body = canonical_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "manifests": []})
        return Action(status=200, body=body, headers={"Content-Type": MT_INDEX})
    if case == "bad-digest-entry":
        body = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [
            {"mediaType": MT_MANIFEST, "digest": "sha256:../../../etc/passwd", "size": 10}]})
        return Action(status=200, body=body, headers={"Content-Type": MT_INDEX})
    if case == "manifests-null":
        body = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": None})
        return Action(status=200, body=body, headers={"Content-Type": MT_INDEX})
    assert case == "50mb-endless"
    return Action(status=200, endless=True, headers={"Content-Type": MT_INDEX})


@pytest.mark.parametrize("case", ["invalid-json", "wrong-media-type", "bad-digest-entry", "manifests-null",
                                  "50mb-endless"])
def test_b8_12_bad_referrers_api_response(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str, case: str,
) -> None:
    desc = _pushed(run_cli, make_layout(), proxy, repo_name)
    proxy.rule = lambda r: _referrers_body(case, desc) if "/referrers/" in r.path else None
    with pytest.raises(ContentError):
        RegistryTarget(proxy.host, repo_name, RemoteOptions()).referrers(desc)
    start = time.monotonic()
    r = run_cli("list", f"{proxy.host}/{repo_name}@{desc.digest}")
    assert r.rc == 1
    _one_line(r.err)
    assert time.monotonic() - start < 10


def test_b8_13_blob_head_false_positive_is_pushed_again(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str,
) -> None:
    """HEAD says the big layer exists but it does not: the manifest PUT is refused, the layer re-pushed once."""
    layout, subject, _ = signed_layout
    proxy.rule = lambda r: (Action(status=200, headers={"Docker-Content-Digest": r.path.rsplit("/", 1)[-1]})
                            if r.method == "HEAD" and "/blobs/" in r.path else None)
    r = run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert "pushing its successors again" in r.err
    proxy.rule = None
    target = RegistryTarget(proxy.host, repo_name, RemoteOptions())
    manifest = json.loads(target.fetch(subject))
    for layer in manifest["layers"]:
        assert target.blob_exists(Descriptor(media_type=layer["mediaType"], digest=layer["digest"], size=layer["size"]))


@pytest.mark.parametrize(("status", "code", "needle"), [
    (413, "SIZE_INVALID", "request too large"),
    (403, "DENIED", "denied"),
    (400, "MANIFEST_INVALID", "bad request"),
])
def test_b8_14_manifest_push_errors_are_clear_and_distinct(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    status: int, code: str, needle: str,
) -> None:
    body = json.dumps({"errors": [{"code": code, "message": "refused by test"}]}).encode()
    proxy.rule = lambda r: (Action(status=status, body=body, headers={"Content-Type": "application/json"})
                            if r.method == "PUT" and "/manifests/" in r.path else None)
    r = run_cli("cp", "--from-oci-layout", f"{make_layout()}:v1", f"{proxy.host}/{repo_name}:v1")
    assert r.rc == 1
    _one_line(r.err)
    assert needle in r.err and code in r.err and "push manifest" in r.err


def test_b8_14_unauthorized_after_a_successful_token_fetch(
    run_cli: Callable[..., Any], token_registry: Any, make_layout: Callable[..., Path], repo_name: str,
) -> None:
    reg, tokens = token_registry
    challenge = f'Bearer realm="{tokens.realm}",service="{tokens.service}",scope="repository:{repo_name}:pull,push"'
    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "PUT" and "/manifests/" in r.path:
            return Action(status=401, headers={"WWW-Authenticate": challenge})
        return None

    before = len(tokens.requests)
    with FaultProxy(reg.url, rule=rule) as p:
        r = run_cli("cp", "--from-oci-layout", f"{make_layout()}:v1", f"{p.host}/{repo_name}:v1",
                    "-u", USER, "-P", PASSWORD)
        assert r.rc == 1
        assert "unauthorized" in r.err and "push manifest" in r.err and PASSWORD not in r.err
        assert len(p.seen("PUT", "/manifests/")) == 2  # re-authenticated exactly once
    assert len(tokens.requests) > before


@pytest.mark.parametrize("field", ["token", "access_token"])
def test_b8_15_token_and_access_token_fields(field: str) -> None:
    def fetch(method: str, url: str, headers: Any, body: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {}, json.dumps({field: "tok-" + field, "expires_in": 300}).encode()

    auth = RegistryAuth(Origin.of("https://reg.example"), lambda: Credentials(username="u", password="p"), fetch)
    auth.on_unauthorized(['Bearer realm="https://reg.example/token",service="s"'], ["repository:r:pull"], None)
    assert auth.authorization(["repository:r:pull"]) == f"Bearer tok-{field}"


# --- B9: CLI, environment ---------------------------------------------------------------------------
def test_b9_2_sign_registry_digest_that_resolves_elsewhere(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    signing_key: Any, tmp_path: Path,
) -> None:
    """``repo@sha256:A`` answered with manifest B: sign and verify fail, nothing is pushed."""
    a = _pushed(run_cli, make_layout(), proxy, repo_name)
    other_layout = make_layout(layer_sizes=(3000,))
    r = run_cli("cp", "--from-oci-layout", f"{other_layout}:v1", f"{proxy.host}/{repo_name}:other")
    assert r.rc == 0, r.err
    b_data = RegistryTarget(proxy.host, repo_name, RemoteOptions()).client.get_manifest(repo_name, "other")[1]
    proxy.rule = lambda r: (Action(status=200, body=b_data, headers={"Content-Type": MT_MANIFEST})
                            if r.method == "GET" and r.path.endswith("/manifests/" + a.digest) else None)
    proxy.clear()
    r = run_cli("sign", f"{proxy.host}/{repo_name}@{a.digest}")
    assert r.rc == 1 and "does not match" in r.err
    _one_line(r.err)
    assert _writes(proxy) == []


def test_b9_5_no_home_directory_gives_a_deterministic_config_dir(
    run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """HOME and XDG_CONFIG_HOME unset and no passwd entry: ./.ocisign, never an internal error."""
    for name in ("OCISIGN_CONFIG_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "HOME", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)

    import pwd

    def no_passwd_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    # what os.path.expanduser (and so Path.home) consults when HOME is unset
    monkeypatch.setattr(pwd, "getpwuid", no_passwd_entry)
    monkeypatch.chdir(tmp_path)
    r = run_cli("cert", "list")
    assert r.rc == 0, r.err
    r = run_cli("policy", "show")
    assert r.rc == 2 and str(tmp_path / ".ocisign") in r.err and "internal error" not in r.err
    r = run_cli("list", "127.0.0.1:1/x:v1")  # credential lookup (docker config) must not crash either
    assert r.rc == 1 and "internal error" not in r.err
    from ocisign.config.configdir import default_config_dir

    assert default_config_dir() == tmp_path / ".ocisign"


def test_b9_6_debug_output_has_no_secrets(
    run_cli: Callable[..., Any], token_registry: Any, registry_basic: Any, make_layout: Callable[..., Path],
    repo_name: str,
) -> None:
    reg, tokens = token_registry
    layout = make_layout()
    seen: list[str] = []
    outputs: list[str] = []
    for host in (reg.host, registry_basic.host):
        ref = f"{host}/{repo_name}:v1"
        for password in (PASSWORD, "Wrong-Secret-123"):
            r = run_cli("-d", "-v", "cp", "--from-oci-layout", f"{layout}:v1", ref, "-u", USER, "-P", password)
            outputs.append(r.out + r.err)
            r = run_cli("--debug", "list", ref, "-u", USER, "-P", password)
            outputs.append(r.out + r.err)
    seen = [t["headers"].get("Authorization", "") for t in tokens.requests]
    secrets_ = [PASSWORD, "Wrong-Secret-123", BASIC.split()[1],
                base64.b64encode(f"{USER}:Wrong-Secret-123".encode()).decode()]
    text = "\n".join(outputs)
    for s in secrets_:
        assert s not in text
    assert "Bearer " not in text and "eyJ" not in text  # no token (JWT) printed
    assert any(seen)


# --- (c) faults -------------------------------------------------------------------------------------
def test_fault_12_concurrent_signers_without_referrers_api(
    proxy: FaultProxy, make_layout: Callable[..., Path], run_cli: Callable[..., Any], repo_name: str,
) -> None:
    """Four writers add a referrer to the same subject at once: all four end up listed."""
    subject = _pushed(run_cli, make_layout(), proxy, repo_name)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    added: list[str] = []
    lock = threading.Lock()

    def sign(i: int) -> None:
        try:
            target = RegistryTarget(proxy.host, repo_name, RemoteOptions(), warn=lambda _t: None)
            barrier.wait(10)
            desc = add_signature_like(target, subject, payload=f"sig-{i}".encode())
            with lock:
                added.append(desc.digest)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # each writer either landed or failed with the clear "concurrent writers" error: never silent loss
    assert all(isinstance(e, RegistryError) and "concurrent" in str(e) for e in errors), errors
    listed = {d.digest for d in RegistryTarget(proxy.host, repo_name, RemoteOptions()).referrers(subject)}
    assert set(added) <= listed and len(added) + len(errors) == 4 and added


def test_fault_13_insecure_does_not_leak_to_later_calls(
    run_cli: Callable[..., Any], registry_tls: Any, make_layout: Callable[..., Path], repo_name: str,
    tmp_path: Path,
) -> None:
    from ocisign.testing.registry import make_tls

    layout = make_layout()
    ref = f"{registry_tls.host}/{repo_name}:v1"
    assert run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "--insecure").rc == 0
    other_ca = make_tls(tmp_path / "other").ca_cert
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", ref, "--ca-file", str(other_ca))
    assert r.rc == 1 and "TLS" in r.err  # the MITM-like certificate is refused again
    _one_line(r.err)
    r = run_cli("list", ref, "--ca-file", str(other_ca))
    assert r.rc == 1 and "TLS" in r.err


def test_fault_14_hanging_registry_times_out(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    sleeps: list[float],
) -> None:
    release = threading.Event()

    def rule(r: ProxyRequest) -> Action | None:
        release.wait(3)
        return None

    proxy.rule = rule
    start = time.monotonic()
    try:
        r = run_cli("cp", "--from-oci-layout", f"{make_layout()}:v1", f"{proxy.host}/{repo_name}:v1",
                    "--timeout", "0.3")
    finally:
        release.set()
    assert r.rc == 1
    _one_line(r.err)
    assert "timed out" in r.err
    assert time.monotonic() - start < 3 * (registry_client.MAX_RETRIES + 1)
    assert proxy.seen("PUT", "/manifests/") == []


_SIGINT_SCRIPT = """
import sys
from ocisign.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def test_fault_16_sigint_during_cp_to_registry(
    proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor], repo_name: str, config_dir: Path,
) -> None:
    layout, _, _ = signed_layout
    started = threading.Event()
    release = threading.Event()

    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "PUT" and "/blobs/uploads/" in r.path and int(r.header("Content-Length") or 0) > 1_000_000:
            started.set()
            release.wait(20)
        return None

    proxy.rule = rule
    env = {**os.environ, "OCISIGN_CONFIG_DIR": str(config_dir), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_SCRIPT, "cp", "-r", "--from-oci-layout", f"{layout}:v1",
                             f"{proxy.host}/{repo_name}:v1", "--timeout", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert started.wait(30), "the upload never started"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert elapsed < 10  # an upload in flight is abandoned within --timeout, not waited for
    assert proxy.seen("PUT", "/manifests/") == []  # nothing referencing the unfinished blob


def test_fault_16_ctrl_c_during_cp_to_an_existing_tar(
    run_cli: Callable[..., Any], proxy: FaultProxy, signed_layout: tuple[Path, Descriptor, Descriptor],
    repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_layout: Callable[..., Path],
) -> None:
    layout, _, _ = signed_layout
    ref = f"{proxy.host}/{repo_name}:v1"
    assert run_cli("cp", "-r", "--from-oci-layout", f"{layout}:v1", ref).rc == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    tar = out_dir / "x.tar"
    assert run_cli("layout", "pack", str(make_layout("small")), str(tar)).rc == 0
    before = tar.read_bytes()
    real = registry_client.RegistryClient.open_blob

    @contextlib.contextmanager
    def interrupted(self: Any, repo: str, desc: Descriptor) -> Iterator[Any]:
        if desc.size > 1_000_000:
            raise KeyboardInterrupt
        with real(self, repo, desc) as fh:
            yield fh

    monkeypatch.setattr(registry_client.RegistryClient, "open_blob", interrupted)
    r = run_cli("cp", "-r", "--to-oci-layout", ref, f"{tar}:new")
    assert r.rc == 130 and "interrupted" in r.err
    assert tar.read_bytes() == before
    assert sorted(p.name for p in out_dir.iterdir()) == ["x.tar"] or all(
        p.name == "x.tar" or p.name.endswith(".lock") for p in out_dir.iterdir())


# --- (a) B/D rows ------------------------------------------------------------------------------------
def test_a_ghsa_8xwf_cp_into_layout_with_symlinked_blobs_dir(
    run_cli: Callable[..., Any], proxy: FaultProxy, make_layout: Callable[..., Path], repo_name: str,
    tmp_path: Path,
) -> None:
    """A pre-created ``layout/blobs -> elsewhere`` is never written through by ``cp --to-oci-layout``."""
    _pushed(run_cli, make_layout(), proxy, repo_name)
    dest = make_layout("dest", tag="old")
    outside = tmp_path / "outside"
    (dest / "blobs").rename(outside)
    (dest / "blobs").symlink_to(outside)
    before = sorted(p.name for p in outside.rglob("*"))
    r = run_cli("cp", "--to-oci-layout", f"{proxy.host}/{repo_name}:v1", f"{dest}:v1")
    assert r.rc == 1 and "symbolic link" in r.err
    _one_line(r.err)
    assert sorted(p.name for p in outside.rglob("*")) == before
