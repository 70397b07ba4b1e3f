"""Test helpers (pytest-free): a real ``docker-registry`` on a free loopback port, a token
server for its Bearer auth, a generated CA, htpasswd files, and a fault-injecting proxy.

Used by ``tests/``, ``bench/`` and ``ocisign demo`` (which starts its local registry with
:class:`RegistryProcess`); nothing else in the product imports it. Everything listens on
loopback only. ``cryptography`` is imported inside the functions that need it.

* :class:`RegistryProcess` writes a config (``version: 0.1``, filesystem storage in a temp dir,
  ``http.addr 127.0.0.1:PORT``, optional TLS, ``htpasswd`` or ``token`` auth, deletes enabled)
  and runs ``docker-registry serve CONFIG`` until :meth:`RegistryProcess.stop`.
* :class:`TokenServer` issues RS256 JWTs with ``x5c`` that docker-registry's ``auth.token``
  accepts (its certificate is the registry's ``rootcertbundle``); knobs for lifetime, expired
  tokens and refusals; it records requests.
* :class:`~ocisign.testing.fault_proxy.FaultProxy` (its own module; re-exported here) puts
  scripted faults between a client and the registry.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import http.client
import http.server
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ocisign.testing.fault_proxy import Action, FaultProxy, ProxyRequest, Rule
from ocisign.testing.loopback import QuietHandler, QuietHTTPServer

__all__ = [
    "REGISTRY_BINARY",
    "Action",
    "FaultProxy",
    "ProxyRequest",
    "QuietHTTPServer",
    "RegistryProcess",
    "RegistryStartError",
    "Rule",
    "TLSFiles",
    "TokenServer",
    "add_signature_like",
    "bcrypt_hash",
    "find_registry_binary",
    "free_port",
    "make_tls",
    "registry",
    "registry_available",
    "write_htpasswd",
]

REGISTRY_BINARY = os.environ.get("OCISIGN_TEST_REGISTRY", "/usr/bin/docker-registry")


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_registry_binary() -> str | None:
    """Path of ``docker-registry``: ``$OCISIGN_TEST_REGISTRY`` (default /usr/bin/docker-registry)
    when executable, else the first on ``PATH``; None when it is not installed."""
    if os.access(REGISTRY_BINARY, os.X_OK) and os.path.isfile(REGISTRY_BINARY):
        return REGISTRY_BINARY
    return shutil.which("docker-registry")


def registry_available() -> bool:
    """True when the docker-registry binary is installed."""
    return find_registry_binary() is not None


class RegistryStartError(RuntimeError):
    """docker-registry exited or did not answer while starting (the message says which, with its log)."""


# --- certificates ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TLSFiles:
    """PEM files of a generated CA and a server certificate it signed."""

    ca_cert: Path
    cert: Path
    key: Path


def make_tls(directory: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TLSFiles:
    """Generate a CA and a server certificate for ``hosts`` (IPs and DNS names) in ``directory``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocisign test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash (``$2b$``) of ``password``, as docker-registry's htpasswd auth needs."""
    try:
        import bcrypt  # type: ignore[import-not-found, unused-ignore]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode())
    except ImportError:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # type: ignore[import-not-found, unused-ignore]

        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)
        out = crypt.crypt(password, salt)
        if not out or not out.startswith("$2"):
            raise RuntimeError("no bcrypt implementation (pip install bcrypt)") from None
        return str(out)


def write_htpasswd(path: Path, users: Mapping[str, str]) -> Path:
    """An htpasswd file with bcrypt entries."""
    path.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, p in users.items()))
    return path


# --- token server ----------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenServer:
    """A distribution token server for docker-registry's ``auth.token`` (loopback only).

    ``users`` maps user names to passwords (Basic auth on the token request); anonymous requests
    get tokens only when ``anonymous`` is true. Granted actions are what was asked for, limited
    to ``allowed_actions``. ``expires_in`` sets the advertised and real lifetime; with
    ``issue_expired`` every token is already expired (the registry refuses it).
    """

    def __init__(
        self,
        directory: Path,
        *,
        users: Mapping[str, str] | None = None,
        service: str = "ocisign-test",
        issuer: str = "ocisign-test-issuer",
        host: str = "127.0.0.1",
        anonymous: bool = True,
        expires_in: int = 300,
        allowed_actions: tuple[str, ...] = ("pull", "push", "delete"),
    ) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.anonymous = anonymous
        self.expires_in = expires_in
        self.allowed_actions = allowed_actions
        self.issue_expired = False
        #: refresh (identity) tokens accepted by the OAuth2 POST flow -> user name
        self.refresh_tokens: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocisign token signer")])
        self._cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-signer.crt"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()
        server = self
        self._server = QuietHTTPServer((host, 0), self._handler_class(server))
        self.port = self._server.port
        self.realm = f"http://{host}:{self.port}/token"
        self._server.start("test-token-server")

    def _handler_class(self, server: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

        return Handler

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        auth = h.headers.get("Authorization", "")
        self.requests.append({"method": h.command, "path": h.path, "headers": dict(h.headers.items())})
        user = ""
        if h.command == "POST":  # OAuth2 refresh-token grant (identity tokens)
            length = int(h.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(h.rfile.read(length).decode())
            query = {"scope": [s for v in form.get("scope", []) for s in v.split(" ")]}
            refresh = (form.get("refresh_token") or [""])[0]
            user = self.refresh_tokens.get(refresh, "")
            if form.get("grant_type") != ["refresh_token"] or not user:
                self._reply(h, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad refresh token"}]})
                return
        elif auth.startswith("Basic "):
            raw = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            user, _, password = raw.partition(":")
            if self.users.get(user) != password:
                self._reply(h, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
        elif not self.anonymous:
            self._reply(h, 401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]})
            return
        access = []
        for scope in query.get("scope", []):
            for item in scope.split(" "):
                parts = item.split(":")
                if len(parts) < 3:
                    continue
                kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1]
                granted = [a for a in actions.split(",") if a in self.allowed_actions and (user or a == "pull")]
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        exp = now - 3600 if self.issue_expired else now + self.expires_in
        claims = {
            "iss": self.issuer, "sub": user, "aud": self.service, "exp": exp, "nbf": now - 3600 * 2 if
            self.issue_expired else now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access,
        }
        token = self.sign(claims)
        self._reply(h, 200, {"token": token, "access_token": token, "expires_in": self.expires_in,
                             "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()})

    def sign(self, claims: Mapping[str, Any]) -> str:
        """An RS256 JWT with ``x5c`` over ``claims``."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        sig = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64url(sig)

    @staticmethod
    def _reply(h: http.server.BaseHTTPRequestHandler, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self) -> None:
        """Stop serving."""
        self._server.stop()


# --- docker-registry process -----------------------------------------------------------------
class RegistryProcess:
    """A real docker-registry on ``127.0.0.1:<free port>`` with its own storage directory."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        tls: TLSFiles | None = None,
        htpasswd: Path | None = None,
        token: TokenServer | None = None,
        delete: bool = True,
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        """Write the config and start ``binary`` (default :func:`find_registry_binary`) on
        127.0.0.1:``port`` (default a free port); :class:`RegistryStartError` when it does not
        come up. With ``directory`` the storage is kept there, else in a temporary directory
        removed by :meth:`stop`."""
        self._own_dir = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="ocisign-registry-")) if directory is None else directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        lines = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.directory / 'data'}",
            "  delete:",
            f"    enabled: {'true' if delete else 'false'}",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {secrets.token_hex(16)}",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls.cert}", f"    key: {tls.key}"]
        if htpasswd:
            lines += ["auth:", "  htpasswd:", "    realm: basic-realm", f"    path: {htpasswd}"]
        elif token:
            lines += ["auth:", "  token:", f"    realm: {token.realm}", f"    service: {token.service}",
                      f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_path}"]
        self.config = self.directory / "config.yml"
        self.config.write_text("\n".join(lines) + "\n")
        self._log = open(self.directory / "registry.log", "wb")  # noqa: SIM115 - closed in stop()
        binary = binary or find_registry_binary() or "docker-registry"
        self.binary = binary
        self._proc = subprocess.Popen(
            [binary, "serve", str(self.config)], stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{self.scheme}://{self.host}"

    def _wait_ready(self, timeout: float = 15.0) -> None:
        log = self.directory / "registry.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:].strip()
                raise RegistryStartError(
                    f"docker-registry exited with code {self._proc.returncode} on {self.host}: {tail}")
            try:
                conn: http.client.HTTPConnection
                if self.tls:
                    ctx = ssl.create_default_context(cafile=str(self.tls.ca_cert))
                    conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=1, context=ctx)
                else:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RegistryStartError(f"docker-registry did not answer on {self.host} within {timeout:.0f}s (log: {log})")

    def stop(self) -> None:
        """Stop the registry and remove its storage (when this object created it)."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RegistryProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def registry(**kwargs: Any) -> Iterator[RegistryProcess]:
    """Context manager around :class:`RegistryProcess` (the demo's local registry uses it too)."""
    proc = RegistryProcess(**kwargs)
    try:
        yield proc
    finally:
        proc.stop()


def add_signature_like(target: Any, subject: Any, *, payload: bytes = b"not-a-real-jws", legacy: bool = True) -> Any:
    """Store a Notary-signature-shaped referrer of ``subject`` in ``target`` (any Target).

    Config ``application/vnd.cncf.notary.signature`` (legacy form) or artifactType + empty
    config, one ``application/jose+json`` layer holding ``payload``, ``subject`` = the plain
    descriptor. The copy engine does not verify signatures, so the bytes need not be real.
    Returns the manifest descriptor (with artifactType and annotations, as listed in a layout).
    """
    from ocisign.oci.model import (
        EMPTY_JSON,
        EMPTY_JSON_DIGEST,
        MT_EMPTY,
        MT_JWS,
        MT_MANIFEST,
        MT_NOTARY_SIGNATURE,
        Descriptor,
        canonical_json,
        sha256_digest,
    )

    config = Descriptor(media_type=MT_NOTARY_SIGNATURE if legacy else MT_EMPTY, digest=EMPTY_JSON_DIGEST, size=2)
    layer = Descriptor(media_type=MT_JWS, digest=sha256_digest(payload), size=len(payload))
    annotations = {
        "io.cncf.notary.x509chain.thumbprint#S256": json.dumps([secrets.token_hex(32)], separators=(",", ":")),
        "org.opencontainers.image.created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    obj: dict[str, Any] = {"schemaVersion": 2, "mediaType": MT_MANIFEST}
    if not legacy:
        obj["artifactType"] = MT_NOTARY_SIGNATURE
    obj["config"] = config.to_json()
    obj["layers"] = [layer.to_json()]
    obj["subject"] = subject.plain().to_json()
    obj["annotations"] = annotations
    data = canonical_json(obj)
    desc = Descriptor(media_type=MT_MANIFEST, digest=sha256_digest(data), size=len(data),
                      artifact_type=MT_NOTARY_SIGNATURE, annotations=annotations)
    with target.writer() as w:
        w.push_blob(config, EMPTY_JSON)
        w.push_blob(layer, payload)
        w.push_manifest(desc, data, listed=True)
    return desc
