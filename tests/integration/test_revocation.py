"""Revocation checking (OCSP, then CRL) against a loopback OCSP/CRL server, through ``ocisign verify``.

A root CA, an intermediate CA and a leaf are generated at test time; the leaf and the
intermediate name OCSP (AIA) and CRL (CDP) URLs on a threaded ``http.server`` started by the
tests, which answers with OCSP responses built by ``OCSPResponseBuilder`` and CRLs built by
``CertificateRevocationListBuilder``. Each endpoint's behaviour (good, revoked, down, hanging,
badly signed …) is switched per test, and every request is recorded. Every other host is refused
(``network_guard``): the tests never leave loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import errno
import hashlib
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SCOPE = "local/revocation"
NOW = dt.datetime.now(dt.timezone.utc)


# --- a test PKI -----------------------------------------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Revocation Test"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
_LEAF_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def _urls(builder: x509.CertificateBuilder, ocsp_url: str | None, crl_url: str | None) -> x509.CertificateBuilder:
    if ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
    return builder


@dataclasses.dataclass
class Node:
    """A certificate with its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_cert(cn: str, issuer: Node | None, *, ca: bool, ocsp_url: str | None = None, crl_url: str | None = None,
              eku: list[x509.ObjectIdentifier] | None = None) -> Node:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=2))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(_CA_USAGE, critical=True)
    else:
        builder = builder.add_extension(_LEAF_USAGE, critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CODE_SIGNING]),
                                        critical=False)
    builder = _urls(builder, ocsp_url, crl_url)
    return Node(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


class PKI:
    """root → intermediate → leaf; leaf and intermediate name the server's OCSP and CRL URLs."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.root = make_cert("Revocation Root", None, ca=True)
        self.intermediate = make_cert("Revocation Intermediate", self.root, ca=True,
                                      ocsp_url=f"{base}/ocsp/intermediate", crl_url=f"{base}/crl/intermediate.crl")
        self.leaf = make_cert("Revocation Leaf", self.intermediate, ca=False,
                              ocsp_url=f"{base}/ocsp/leaf", crl_url=f"{base}/crl/leaf.crl")
        #: delegated OCSP responders for the leaf (issued by the intermediate), with and without the EKU
        self.responder = make_cert("Leaf OCSP Responder", self.intermediate, ca=False,
                                   eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
        self.responder_no_eku = make_cert("Leaf Bogus Responder", self.intermediate, ca=False)
        self.stranger = make_cert("Unrelated CA", None, ca=True)

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.leaf.cert, self.intermediate.cert, self.root.cert]

    def subject_and_issuer(self, name: str) -> tuple[Node, Node]:
        return (self.leaf, self.intermediate) if name == "leaf" else (self.intermediate, self.root)


# --- the OCSP/CRL server ----------------------------------------------------------------------------
class Responder:
    """Behaviour of each endpoint and the requests seen."""

    def __init__(self) -> None:
        self.pki: PKI | None = None
        self.ocsp: dict[str, str] = {}
        self.crl: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def reset(self) -> None:
        self.ocsp = {"leaf": "good", "intermediate": "good"}
        self.crl = {"leaf": "good", "intermediate": "good"}
        with self.lock:
            self.requests.clear()

    def seen(self, kind: str | None = None) -> list[tuple[str, str]]:
        with self.lock:
            return [r for r in self.requests if kind is None or r[1].startswith(f"/{kind}/")]

    # OCSP ------------------------------------------------------------------------------------
    def ocsp_response(self, name: str, request_der: bytes) -> bytes:
        assert self.pki is not None
        mode = self.ocsp[name]
        if mode == "malformed":
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER)
        req = ocsp.load_der_ocsp_request(request_der)
        subject, issuer = self.pki.subject_and_issuer(name)
        assert req.serial_number == subject.cert.serial_number
        status = {"revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}.get(
            mode, ocsp.OCSPCertStatus.GOOD)
        this_update, next_update = NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(hours=1)
        if mode == "expired":
            this_update, next_update = NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=subject.cert, issuer=issuer.cert, algorithm=req.hash_algorithm, cert_status=status,
            this_update=this_update, next_update=next_update,
            revocation_time=NOW - dt.timedelta(minutes=30) if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == ocsp.OCSPCertStatus.REVOKED else None,
        )
        signer = issuer
        if mode == "badsig":
            signer = self.pki.stranger
        elif mode in ("delegated", "delegated-no-eku"):
            signer = self.pki.responder if mode == "delegated" else self.pki.responder_no_eku
            builder = builder.certificates([signer.cert])
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
        return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    # CRL -------------------------------------------------------------------------------------
    def crl_bytes(self, name: str) -> bytes:
        assert self.pki is not None
        mode = self.crl[name]
        subject, issuer = self.pki.subject_and_issuer(name)
        last, nxt = NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(hours=1)
        if mode == "expired":
            last, nxt = NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
                   .last_update(last).next_update(nxt))
        # an unrelated entry, so a "good" CRL is not empty
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(12345).revocation_date(NOW - dt.timedelta(days=1)).build())
        if mode.startswith("revoked"):
            entry = (x509.RevokedCertificateBuilder().serial_number(subject.cert.serial_number)
                     .revocation_date(NOW - dt.timedelta(minutes=30)))
            if mode == "revoked-invalid-from-future":
                entry = entry.add_extension(x509.InvalidityDate((NOW + dt.timedelta(minutes=10)).replace(tzinfo=None)),
                                            critical=False)
            elif mode == "revoked-invalid-from-past":
                entry = entry.add_extension(x509.InvalidityDate((NOW - dt.timedelta(hours=1)).replace(tzinfo=None)),
                                            critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        if mode == "delta":
            builder = builder.add_extension(x509.FreshestCRL([x509.DistributionPoint(
                [x509.UniformResourceIdentifier(f"{self.pki.base}/crl/delta.crl")], None, None, None)]), critical=False)
        if mode == "critical-ext":
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
                                                                       b"\x05\x00"), critical=True)
        signer = self.pki.stranger if mode == "wrongkey" else issuer
        return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _handler(state: Responder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", ctype: str = "application/octet-stream",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _common(self, mode: str) -> bool:
            """Modes shared by both endpoints; True when the request was answered."""
            if mode == "down":
                self._send(503, b"unavailable")
            elif mode == "hang":
                state.release.wait(30)
                self.close_connection = True
            elif mode == "drip":
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    if state.release.wait(0.2):
                        break
                    self.wfile.write(b"0")
                    self.wfile.flush()
                self.close_connection = True
            elif mode == "204":
                self.send_response(204)
                self.end_headers()
            elif mode == "huge":
                self.send_response(200)
                self.send_header("Content-Length", str(64 * 1024 * 1024))
                self.end_headers()
                self.close_connection = True
            elif mode == "redirect-ftp":
                self._send(302, headers={"Location": "ftp://127.0.0.1/x.crl"})
            else:
                return False
            return True

        def _route(self, body: bytes | None) -> None:
            with state.lock:
                state.requests.append((self.command, self.path))
            parts = self.path.strip("/").split("/")
            if parts[0] == "ocsp" and len(parts) >= 2 and parts[1] in state.ocsp:
                if self._common(state.ocsp[parts[1]]):
                    return
                if body is None:
                    if len(parts) != 3:
                        return self._send(400)
                    body = base64.b64decode(urllib.parse.unquote(parts[2]))
                return self._send(200, state.ocsp_response(parts[1], body), "application/ocsp-response")
            if parts[0] == "crl" and len(parts) == 2:
                name = parts[1].removesuffix(".crl")
                if name.startswith("moved-"):
                    return self._send(302, headers={"Location": f"/crl/{name.removeprefix('moved-')}.crl"})
                if name not in state.crl:
                    return self._send(404)
                if self._common(state.crl[name]):
                    return
                return self._send(200, state.crl_bytes(name), "application/pkix-crl")
            self._send(404)

        def do_GET(self) -> None:
            self._route(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._route(self.rfile.read(length))

    return Handler


@dataclasses.dataclass
class Server:
    state: Responder
    pki: PKI
    base: str


@pytest.fixture(scope="module")
def server_module() -> Iterator[Server]:
    state = Responder()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    state.pki = PKI(base)
    try:
        yield Server(state, state.pki, base)
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(server_module: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The shared server, reset to all-good; non-loopback hosts are refused."""
    import ocisign.verify.revocation_http

    def loopback_only(host: str) -> str | None:
        return None if host in ("127.0.0.1", "localhost", "::1") else f"test refuses network access to {host}"

    monkeypatch.setattr(ocisign.verify.revocation_http, "network_guard", loopback_only)
    monkeypatch.delenv("OCISIGN_CRL_CACHE", raising=False)
    server_module.state.reset()
    return server_module


# --- signing and verifying through the CLI ----------------------------------------------------------
class Signed:
    """A layout signed with the PKI's leaf, its CA trusted, and a policy."""

    def __init__(self, run: Callable[..., Any], server: Server, layout: Path, tmp: Path) -> None:
        self.run = run
        self.server = server
        self.layout = layout
        self.tmp = tmp
        pem = serialization.Encoding.PEM
        key_file = tmp / "leaf.key"
        key_file.write_bytes(server.pki.leaf.key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                serialization.NoEncryption()))
        cert_file = tmp / "chain.pem"
        cert_file.write_bytes(b"".join(c.public_bytes(pem) for c in server.pki.chain))
        root_file = tmp / "root.pem"
        root_file.write_bytes(server.pki.root.cert.public_bytes(pem))
        for args in (("key", "add", "revo", "--key-file", str(key_file), "--cert-file", str(cert_file), "--default"),
                     ("cert", "add", "-t", "ca", "-s", "revo-ca", str(root_file))):
            res = run(*args)
            assert res.rc == 0, res.err
        self.policy()
        res = run("sign", "--oci-layout", f"{layout}:v1")
        assert res.rc == 0, res.err
        server.state.reset()  # signing contacts nothing; start every test from a clean log

    def policy(self, level: str = "strict", override: dict[str, str] | None = None,
               store: str = "ca:revo-ca") -> None:
        sv: dict[str, Any] = {"level": level}
        if override:
            sv["override"] = override
        doc = {"version": "1.0", "trustPolicies": [{
            "name": "revocation", "registryScopes": [SCOPE], "signatureVerification": sv,
            "trustStores": [store], "trustedIdentities": ["*"]}]}
        path = self.tmp / "policy.json"
        path.write_text(json.dumps(doc))
        res = self.run("policy", "import", str(path), "--force")
        assert res.rc == 0, res.err

    def verify(self, *extra: str) -> Any:
        return self.run("verify", "--oci-layout", f"{self.layout}:v1", "--scope", SCOPE, *extra)

    def verify_json(self) -> tuple[int, dict[str, Any]]:
        res = self.verify("-o", "json")
        return res.rc, json.loads(res.out)


@pytest.fixture
def signed(run_cli: Callable[..., Any], server: Server, make_layout: Callable[..., Path], tmp_path: Path) -> Signed:
    return Signed(run_cli, server, make_layout(), tmp_path)


def _revocation_check(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["signatures"][-1]["checks"] if c["check"] == "revocation")


LEAF = '"CN=Revocation Leaf,O=Revocation Test,ST=WA,C=US"'
INTERMEDIATE = '"CN=Revocation Intermediate,O=Revocation Test,ST=WA,C=US"'


# --- verify: outcomes -------------------------------------------------------------------------------
def test_good_chain_passes_after_asking_ocsp_for_leaf_and_intermediate(signed: Signed) -> None:
    res = signed.verify()
    assert res.rc == 0, res.err
    assert "Successfully verified signature" in res.out and "revocation" not in res.err
    paths = sorted(p.split("/")[2] for _, p in signed.server.state.seen("ocsp"))
    assert paths == ["intermediate", "leaf"]
    assert signed.server.state.seen("crl") == []  # OCSP answered: no CRL fallback
    assert all(method == "GET" for method, _ in signed.server.state.seen())

    rc, report = signed.verify_json()
    assert rc == 0
    check = _revocation_check(report)
    assert check["result"] == "pass"
    certs = check["details"]["certificates"]
    assert [(c["result"], c["method"]) for c in certs] == [("ok", "OCSP"), ("ok", "OCSP"), ("nonRevocable", "root")]


def test_leaf_revoked_by_ocsp_fails_at_revocation(signed: Signed) -> None:
    signed.server.state.ocsp["leaf"] = "revoked"
    res = signed.verify()
    assert res.rc == 1
    assert "failed check: revocation (enforced)" in res.err
    assert f"signing certificate with subject {LEAF} is revoked" in res.err
    rc, report = signed.verify_json()
    assert rc == 1 and report["verified"] is False and report["failedCheck"] == "revocation"
    check = _revocation_check(report)
    assert check["result"] == "fail" and check["details"]["result"] == "revoked"
    assert check["details"]["certificates"][0]["servers"][0]["method"] == "OCSP"
    assert signed.server.state.seen("crl") == []  # a definite OCSP answer needs no CRL


def test_ocsp_down_crl_revoked_fails(signed: Signed) -> None:
    signed.server.state.ocsp.update(leaf="down", intermediate="down")
    signed.server.state.crl["leaf"] = "revoked"
    rc, report = signed.verify_json()
    assert rc == 1 and report["failedCheck"] == "revocation"
    check = _revocation_check(report)
    assert check["message"].startswith(f"signing certificate with subject {LEAF} is revoked")
    leaf = check["details"]["certificates"][0]
    assert leaf["method"] == "OCSPFallbackCRL" and [s["method"] for s in leaf["servers"]] == ["OCSP", "CRL"]
    assert "HTTP status 503" in leaf["servers"][0]["reason"]


def test_intermediate_revoked_by_crl_is_named(signed: Signed) -> None:
    signed.server.state.ocsp["intermediate"] = "down"
    signed.server.state.crl["intermediate"] = "revoked"
    res = signed.verify()
    assert res.rc == 1 and f"signing certificate with subject {INTERMEDIATE} is revoked" in res.err


def test_a_revoked_certificate_outranks_an_unknown_one(signed: Signed) -> None:
    state = signed.server.state
    state.ocsp["leaf"] = "down"
    state.crl["leaf"] = "down"
    state.ocsp["intermediate"] = "revoked"
    rc, report = signed.verify_json()
    assert rc == 1
    check = _revocation_check(report)
    assert check["message"].startswith(f"signing certificate with subject {INTERMEDIATE} is revoked")
    assert [c["result"] for c in check["details"]["certificates"]] == ["unknown", "revoked", "nonRevocable"]


def test_an_internal_error_fails_even_when_revocation_is_only_logged(
        signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocisign.verify.revocation import RevocationChecker

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(RevocationChecker, "check_certificate", boom)
    signed.policy("permissive")
    rc, report = signed.verify_json()
    assert rc == 1 and report["failedCheck"] == "revocation"
    check = _revocation_check(report)
    assert check["action"] == "enforce" and "injected fault" in check["message"]


def test_ocsp_down_crl_good_passes(signed: Signed) -> None:
    signed.server.state.ocsp.update(leaf="down", intermediate="down")
    res = signed.verify()
    assert res.rc == 0, res.err
    assert sorted(p for _, p in signed.server.state.seen("crl")) == ["/crl/intermediate.crl", "/crl/leaf.crl"]


def test_ocsp_status_unknown_falls_back_to_crl(signed: Signed) -> None:
    signed.server.state.ocsp["leaf"] = "unknown"
    rc, report = signed.verify_json()
    assert rc == 0
    leaf = _revocation_check(report)["details"]["certificates"][0]
    assert leaf["method"] == "OCSPFallbackCRL" and leaf["result"] == "ok"
    signed.server.state.crl["leaf"] = "down"
    res = signed.verify()
    assert res.rc == 1 and "revocation status is unknown" in res.err and "status unknown" in res.err


def test_both_down_is_unknown_strict_fails_permissive_warns(signed: Signed) -> None:
    state = signed.server.state
    state.ocsp.update(leaf="down", intermediate="down")
    state.crl.update(leaf="down", intermediate="down")
    res = signed.verify()
    assert res.rc == 1
    assert f"signing certificate with subject {LEAF} revocation status is unknown" in res.err

    signed.policy("permissive")
    res = signed.verify()
    assert res.rc == 0, res.err
    assert "Successfully verified signature" in res.out
    assert (f'Warning: revocation was set to "log" and failed with error: signing certificate with subject {LEAF} '
            "revocation status is unknown") in res.err
    rc, report = signed.verify_json()
    assert rc == 0 and report["signatures"][-1]["loggedFailures"] == ["revocation"]

    signed.policy("strict", override={"revocation": "log"})
    assert signed.verify().rc == 0


def test_override_skip_never_contacts_the_network(signed: Signed) -> None:
    state = signed.server.state
    state.ocsp.update(leaf="revoked", intermediate="down")
    state.crl.update(leaf="revoked", intermediate="down")
    signed.policy("strict", override={"revocation": "skip"})
    res = signed.verify()
    assert res.rc == 0, res.err
    rc, report = signed.verify_json()
    assert rc == 0 and _revocation_check(report)["result"] == "skipped"
    assert state.seen() == []


def test_untrusted_chain_is_not_looked_up_under_audit(signed: Signed, run_cli: Callable[..., Any]) -> None:
    other = signed.tmp / "other.pem"
    other.write_bytes(signed.server.pki.stranger.cert.public_bytes(serialization.Encoding.PEM))
    assert run_cli("cert", "add", "-t", "ca", "-s", "other", str(other)).rc == 0
    signed.policy("audit", store="ca:other")
    rc, report = signed.verify_json()
    assert rc == 0  # audit only logs authenticity and revocation
    check = _revocation_check(report)
    assert check["result"] == "fail" and check["action"] == "log"
    assert "not looked up" in check["message"]
    assert signed.server.state.seen() == []


def test_bad_ocsp_signature_is_not_trusted(signed: Signed) -> None:
    state = signed.server.state
    state.ocsp["leaf"] = "badsig"
    state.crl["leaf"] = "down"
    rc, report = signed.verify_json()
    assert rc == 1 and report["failedCheck"] == "revocation"
    check = _revocation_check(report)
    assert "revocation status is unknown" in check["message"]
    assert "not signed by the issuer" in check["details"]["certificates"][0]["servers"][0]["reason"]
    state.crl["leaf"] = "good"  # the CRL is the fallback for an untrustworthy OCSP answer
    assert signed.verify().rc == 0


def test_delegated_responder_needs_the_ocsp_signing_eku(signed: Signed) -> None:
    state = signed.server.state
    state.crl["leaf"] = "down"
    state.ocsp["leaf"] = "delegated"
    res = signed.verify()
    assert res.rc == 0, res.err
    state.ocsp["leaf"] = "delegated-no-eku"
    res = signed.verify()
    assert res.rc == 1 and "revocation status is unknown" in res.err


@pytest.mark.parametrize(("ocsp_mode", "crl_mode", "reason"), [
    ("expired", "down", "expired OCSP response"),
    ("malformed", "down", "malformed request"),
    ("down", "expired", "expired CRL"),
    ("down", "wrongkey", "signature does not verify"),
    ("down", "204", "HTTP status 204"),
    ("down", "huge", "exceeds the"),
    ("down", "delta", "delta CRL is not supported"),
    ("down", "critical-ext", "unsupported critical extension found in CRL: 1.3.6.1.4.1.55555.1"),
    ("down", "redirect-ftp", "refusing to fetch a ftp URL"),
])
def test_untrustworthy_answers_are_unknown(signed: Signed, ocsp_mode: str, crl_mode: str, reason: str) -> None:
    state = signed.server.state
    state.ocsp["leaf"] = ocsp_mode
    state.crl["leaf"] = crl_mode
    rc, report = signed.verify_json()
    assert rc == 1 and report["failedCheck"] == "revocation"
    check = _revocation_check(report)
    assert check["details"]["result"] == "unknown"
    assert reason in check["message"], check["message"]


def test_hanging_ocsp_responder_times_out_in_two_seconds(signed: Signed) -> None:
    state = signed.server.state
    state.ocsp.update(leaf="hang", intermediate="hang")
    start = time.monotonic()
    res = signed.verify()
    elapsed = time.monotonic() - start
    assert res.rc == 0, res.err  # OCSP timed out, the CRLs answered
    assert elapsed < 5, elapsed
    state.crl["leaf"] = "down"
    start = time.monotonic()
    rc, report = signed.verify_json()
    assert rc == 1 and time.monotonic() - start < 5
    servers = _revocation_check(report)["details"]["certificates"][0]["servers"]
    assert "timed out" in servers[0]["reason"]


def test_hanging_and_dribbling_servers_hit_the_hard_deadline(server: Server) -> None:
    from ocisign.verify.revocation import RevocationChecker

    state = server.state
    for mode in ("hang", "drip"):
        state.ocsp.update(leaf=mode, intermediate=mode)
        state.crl.update(leaf=mode, intermediate=mode)
        checker = RevocationChecker(ocsp_timeout=0.5, crl_timeout=0.5)
        start = time.monotonic()
        result = checker.check_chain(server.pki.chain)
        elapsed = time.monotonic() - start
        assert result.final()[0] == "unknown", mode
        assert elapsed < 2.5, (mode, elapsed)


def test_post_is_used_for_long_requests(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    import ocisign.verify.revocation

    monkeypatch.setattr(ocisign.verify.revocation, "OCSP_GET_LIMIT", 0)
    assert signed.verify().rc == 0
    assert {m for m, _ in signed.server.state.seen("ocsp")} == {"POST"}


def test_crl_redirect_within_http_is_followed(server: Server) -> None:
    from ocisign.verify.revocation import RevocationChecker

    pki = server.pki
    leaf = make_cert("Moved CRL Leaf", pki.intermediate, ca=False, crl_url=f"{server.base}/crl/moved-leaf.crl")
    # the served CRL lists the PKI leaf's serial, not this one: "good" either way; the redirect is what counts
    result = RevocationChecker().check_chain([leaf.cert, pki.intermediate.cert, pki.root.cert])
    assert result.ok, result.message()
    assert ("GET", "/crl/moved-leaf.crl") in server.state.seen() and ("GET", "/crl/leaf.crl") in server.state.seen()


def test_only_http_urls_are_used_and_other_hosts_are_refused(server: Server) -> None:
    from ocisign.verify.revocation import RevocationChecker

    pki = server.pki
    https_leaf = make_cert("HTTPS OCSP Leaf", pki.intermediate, ca=False,
                           ocsp_url="https://127.0.0.1:1/ocsp", crl_url="ldap://127.0.0.1/cn=crl")
    result = RevocationChecker().check_chain([https_leaf.cert, pki.intermediate.cert, pki.root.cert])
    verdict, cert = result.final()
    assert verdict == "unknown" and cert is not None and cert.index == 0
    assert "protocol https is not supported" in cert.reason and "protocol ldap is not supported" in cert.reason
    remote = make_cert("Remote Leaf", pki.intermediate, ca=False, ocsp_url="http://ocsp.example.com/")
    result = RevocationChecker().check_chain([remote.cert, pki.intermediate.cert, pki.root.cert])
    assert result.final()[0] == "unknown" and "refuses network access" in result.message()
    # only the (good) intermediate was looked up, once per chain
    assert [p.split("/")[2] for _, p in server.state.seen()] == ["intermediate", "intermediate"]


def test_signing_authority_time_vs_invalidity_date(server: Server) -> None:
    """An entry whose invalidity date is after the authentic signing time does not count (SA scheme)."""
    from ocisign.verify.revocation import RevocationChecker

    state, chain = server.state, server.pki.chain
    state.ocsp["leaf"] = "down"
    signed_at = NOW - dt.timedelta(minutes=1)
    state.crl["leaf"] = "revoked-invalid-from-future"
    assert RevocationChecker().check_chain(chain, signing_time=signed_at).ok
    assert RevocationChecker().check_chain(chain).final()[0] == "revoked"  # notary.x509: revoked is revoked
    state.crl["leaf"] = "revoked-invalid-from-past"
    assert RevocationChecker().check_chain(chain, signing_time=signed_at).final()[0] == "revoked"
    state.crl["leaf"] = "revoked"  # no invalidity date: revoked whatever the signing time
    assert RevocationChecker().check_chain(chain, signing_time=signed_at).final()[0] == "revoked"


def test_checker_memoises_within_one_verification(server: Server) -> None:
    from ocisign.verify.revocation import RevocationChecker

    checker = RevocationChecker()
    assert checker.check_chain(server.pki.chain).ok
    assert checker.check_chain(server.pki.chain).ok
    assert len(server.state.seen()) == 2


# --- CRL cache ---------------------------------------------------------------------------------------
def _cache_file(cache: Path, url: str) -> Path:
    return cache / "crl" / hashlib.sha256(url.encode()).hexdigest()


def test_crl_cache_is_opt_in_and_used_while_current(signed: Signed, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    state = signed.server.state
    state.ocsp.update(leaf="down", intermediate="down")
    monkeypatch.setenv("OCISIGN_CACHE_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert signed.verify().rc == 0
    assert not cache.exists() and not (tmp_path / "xdg").exists()  # off by default: verify writes nothing

    monkeypatch.setenv("OCISIGN_CRL_CACHE", "1")
    assert signed.verify().rc == 0
    leaf_url = f"{signed.server.base}/crl/leaf.crl"
    entry = _cache_file(cache, leaf_url)
    content = json.loads(entry.read_text())
    assert set(content) == {"baseCRL"}
    cached = x509.load_der_x509_crl(base64.b64decode(content["baseCRL"]))
    assert cached.issuer == signed.server.pki.intermediate.cert.subject
    assert entry.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(cache / "crl")) == sorted(
        hashlib.sha256(u.encode()).hexdigest() for u in (leaf_url, f"{signed.server.base}/crl/intermediate.crl"))

    state.reset()
    state.ocsp.update(leaf="down", intermediate="down")
    state.crl.update(leaf="down", intermediate="down")
    res = signed.verify()
    assert res.rc == 0, res.err  # served from the cache
    assert state.seen("crl") == []


def test_crl_cache_entries_are_revalidated(signed: Signed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCISIGN_CRL_CACHE", "1")
    monkeypatch.setenv("OCISIGN_CACHE_DIR", str(cache))
    state = signed.server.state
    state.ocsp.update(leaf="down", intermediate="down")
    leaf_url = f"{signed.server.base}/crl/leaf.crl"
    entry = _cache_file(cache, leaf_url)
    entry.parent.mkdir(parents=True)
    # a forged "good" CRL for the leaf, signed by the wrong key, must not be believed
    forged = (x509.CertificateRevocationListBuilder().issuer_name(signed.server.pki.intermediate.cert.subject)
              .last_update(NOW - dt.timedelta(minutes=1)).next_update(NOW + dt.timedelta(days=1))
              .sign(signed.server.pki.stranger.key, hashes.SHA256()))
    forged_der = forged.public_bytes(serialization.Encoding.DER)
    entry.write_text(json.dumps({"baseCRL": base64.b64encode(forged_der).decode()}))
    state.crl["leaf"] = "revoked"
    res = signed.verify()
    assert res.rc == 1 and "is revoked" in res.err
    assert ("GET", "/crl/leaf.crl") in state.seen()

    entry.write_text("not json")
    res = signed.verify()
    assert res.rc == 1 and "Warning: CRL cache" in res.err and "malformed entry" in res.err


def test_crl_cache_write_failure_is_only_a_warning(signed: Signed, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCISIGN_CRL_CACHE", "1")
    monkeypatch.setenv("OCISIGN_CACHE_DIR", str(cache))
    signed.server.state.ocsp.update(leaf="down", intermediate="down")

    def exdev(src: Any, dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", exdev)
    res = signed.verify()
    assert res.rc == 0, res.err
    assert "Warning: CRL cache" in res.err and "cannot write" in res.err
    assert [p.name for p in (cache / "crl").iterdir()] == []  # no temp file left behind


# --- fast path --------------------------------------------------------------------------------------
def test_chain_without_urls_never_imports_the_http_stack(run_cli: Callable[..., Any], make_keypair: Callable[..., Any],
                                                         make_layout: Callable[..., Path], config_dir: Path,
                                                         tmp_path: Path) -> None:
    kp = make_keypair("ec256", chain_len=3)
    root = tmp_path / "root.pem"
    root.write_bytes(kp.chain[-1].public_bytes(serialization.Encoding.PEM))
    layout = make_layout()
    for args in (("key", "add", "plain", "--key-file", str(kp.key_path), "--cert-file", str(kp.cert_path),
                  "--default"), ("cert", "add", "-t", "ca", "-s", "plain", str(root)),
                 ("policy", "init", "--name", "p", "--trust-store", "ca:plain", "--trusted-identity", "*",
                  "--scope", SCOPE), ("sign", "--oci-layout", f"{layout}:v1")):
        res = run_cli(*args)
        assert res.rc == 0, res.err
    code = textwrap.dedent(f"""
        import json, sys
        from ocisign.cli.app import main
        rc = main(["verify", "--oci-layout", {str(layout) + ':v1'!r}, "--scope", {SCOPE!r}, "-o", "json"])
        print(json.dumps([rc, any(m in sys.modules for m in ("http.client", "ssl", "urllib3"))]), file=sys.stderr)
    """)
    env = {**os.environ, "OCISIGN_CONFIG_DIR": str(config_dir), "OCISIGN_PROJECT_CONFIG": "none"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    rc, imported = json.loads(proc.stderr.strip().splitlines()[-1])
    assert rc == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    check = _revocation_check(report)
    assert check["result"] == "pass"
    assert [c["result"] for c in check["details"]["certificates"]] == ["nonRevocable"] * 3
    assert imported is False
