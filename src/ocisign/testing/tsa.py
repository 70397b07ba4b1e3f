"""Test helper (pytest-free): a loopback RFC 3161 Timestamping Authority that issues real tokens.

Used by ``tests/`` (and usable from ``bench/``); nothing in the product imports it. It listens
on 127.0.0.1 only. ``cryptography`` is imported inside the functions that need it.

* :func:`make_tsa_pki` generates a root CA (RSA 2048, self-signed, basicConstraints cA critical,
  keyUsage keyCertSign+cRLSign critical), optionally an intermediate CA, and a TSA certificate
  (RSA 2048 or EC P-256; extendedKeyUsage timeStamping *critical*, keyUsage digitalSignature
  critical, no basicConstraints), plus knobs to break those rules.
* :func:`make_token` DER-encodes a ``TSTInfo`` and wraps it in a CMS ``SignedData``
  (``id-ct-TSTInfo``, signed attributes contentType, messageDigest and signingCertificateV2,
  SignerInfo version 1 with issuerAndSerialNumber) signed with RSA PKCS#1 v1.5 SHA-256 (or
  ECDSA SHA-256) — what real TSAs send.
* :class:`TestTSA` is a threaded HTTP server answering ``application/timestamp-query`` POSTs
  with ``application/timestamp-reply`` ``TimeStampResp`` bodies. Its :attr:`TestTSA.mode`
  (changeable at any time) makes it misbehave: ``wrong-imprint``, ``wrong-nonce``, ``no-nonce``,
  ``reject`` (status rejection), ``untrusted-root`` (token signed by a chain to another root),
  ``bad-signature``, ``garbage``, ``slow`` (answers after :attr:`TestTSA.delay` seconds),
  ``http-error``, ``wrong-content-type``, ``oversized``, ``no-token``. Every request is recorded.
  With ``crl="good"``/``"revoked"`` its TSA certificate names a CRL distribution point on the same
  server (``GET /crl``), listing the TSA certificate as revoked or not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import http.server
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocisign.testing.loopback import QuietHandler, QuietHTTPServer
from ocisign.x509 import der_writer as w
from ocisign.x509.der import TLV, DERError, expect, parse_single

__all__ = [
    "MAX_REQUEST",
    "MODES",
    "OID_CONTENT_TYPE",
    "OID_ECDSA_WITH_SHA256",
    "OID_MESSAGE_DIGEST",
    "OID_SHA256",
    "OID_SHA256_WITH_RSA",
    "OID_SIGNED_DATA",
    "OID_SIGNING_CERTIFICATE_V2",
    "OID_TST_INFO",
    "TEST_POLICY",
    "ParsedRequest",
    "RecordedRequest",
    "TSAPki",
    "TestTSA",
    "make_crl",
    "make_response",
    "make_token",
    "make_tsa_pki",
    "make_tst_info",
    "parse_request",
]

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_TST_INFO = "1.2.840.113549.1.9.16.1.4"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
#: the test TSA's policy (a private-arc example OID)
TEST_POLICY = "1.3.6.1.4.1.4146.2.3"
MODES = ("ok", "wrong-imprint", "wrong-nonce", "no-nonce", "reject", "untrusted-root", "bad-signature", "garbage",
         "slow", "http-error", "wrong-content-type", "oversized", "no-token")
MAX_REQUEST = 64 * 1024


# --- PKI -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class TSAPki:
    """A TSA signing key, its certificate and the chain above it (root last)."""

    tsa_key: Any
    tsa_cert: Any
    #: intermediates then the root
    issuers: list[Any]
    #: the private key of ``issuers[0]`` (signs CRLs for the TSA certificate)
    issuer_key: Any = None

    @property
    def root(self) -> Any:
        """The self-signed root certificate."""
        return self.issuers[-1]

    def root_pem(self) -> bytes:
        """The root certificate as PEM."""
        from cryptography.hazmat.primitives.serialization import Encoding

        return bytes(self.root.public_bytes(Encoding.PEM))

    def root_der(self) -> bytes:
        """The root certificate as DER."""
        from cryptography.hazmat.primitives.serialization import Encoding

        return bytes(self.root.public_bytes(Encoding.DER))

    def write_root(self, path: Path, *, der: bool = False) -> Path:
        """Write the root certificate to ``path`` (PEM, or DER) and return the path."""
        path.write_bytes(self.root_der() if der else self.root_pem())
        return path

    def token_certificates(self) -> list[Any]:
        """The certificates put in tokens: the TSA certificate and the intermediates (not the root)."""
        return [self.tsa_cert, *self.issuers[:-1]]


def make_tsa_pki(
    *,
    cn: str = "ocisign test TSA",
    key: str = "rsa2048",
    intermediate: bool = False,
    eku_critical: bool = True,
    eku: tuple[str, ...] = ("1.3.6.1.5.5.7.3.8",),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    crl_url: str | None = None,
) -> TSAPki:
    """A fresh root (and intermediate) CA and TSA certificate; see the module docstring."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID, ObjectIdentifier

    now = dt.datetime.now(dt.timezone.utc)
    nb = not_before or now - dt.timedelta(hours=1)
    na = not_after or now + dt.timedelta(days=3650)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ocisign tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                             encipher_only=False, decipher_only=False)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = name(f"{cn} root")
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(nb).not_valid_after(na + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(ca_usage, critical=True)
            .sign(root_key, hashes.SHA256()))
    issuers: list[Any] = [root]
    signer_key: Any = root_key
    issuer_name = root_name
    if intermediate:
        int_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        int_name = name(f"{cn} intermediate")
        inter = (x509.CertificateBuilder().subject_name(int_name).issuer_name(root_name)
                 .public_key(int_key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(nb).not_valid_after(na + dt.timedelta(hours=12))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .add_extension(ca_usage, critical=True)
                 .sign(root_key, hashes.SHA256()))
        issuers.insert(0, inter)
        signer_key, issuer_name = int_key, int_name
    tsa_key: Any = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if key == "rsa2048"
                    else ec.generate_private_key(ec.SECP256R1()))
    builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_name)
               .public_key(tsa_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(nb).not_valid_after(na)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                            crl_sign=False, encipher_only=False, decipher_only=False), critical=True))
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(o) for o in eku]),
                                        critical=eku_critical)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
    tsa_cert = builder.sign(signer_key, hashes.SHA256())
    return TSAPki(tsa_key=tsa_key, tsa_cert=tsa_cert, issuers=issuers, issuer_key=signer_key)


def make_crl(pki: TSAPki, *, revoked: bool) -> bytes:
    """A DER CRL from the TSA certificate's issuer, listing the TSA certificate when ``revoked``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(pki.issuers[0].subject)
               .last_update(now - dt.timedelta(hours=1)).next_update(now + dt.timedelta(days=1)))
    if revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(pki.tsa_cert.serial_number)
            .revocation_date(now - dt.timedelta(minutes=30)).build())
    return bytes(builder.sign(pki.issuer_key, hashes.SHA256()).public_bytes(Encoding.DER))


# --- requests ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ParsedRequest:
    """The fields of a TimeStampReq."""

    version: int
    hash_oid: str
    hash_params: bytes
    imprint: bytes
    message_imprint_der: bytes
    policy: str | None
    nonce: int | None
    cert_req: bool


def _oid_text(tlv: TLV) -> str:
    expect(tlv, 0x06, "OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for b in tlv.content:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise DERError("empty OBJECT IDENTIFIER")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def parse_request(data: bytes) -> ParsedRequest:
    """Parse a DER TimeStampReq (raises DERError)."""
    kids = expect(parse_single(data, "TimeStampReq"), 0x30, "TimeStampReq").children()
    if len(kids) < 2:
        raise DERError("TimeStampReq: too few fields")
    version = int.from_bytes(expect(kids[0], 0x02, "version").content, "big", signed=True)
    mi = expect(kids[1], 0x30, "messageImprint").children()
    if len(mi) != 2:
        raise DERError("messageImprint: expected 2 fields")
    alg = expect(mi[0], 0x30, "hashAlgorithm").children()
    if not alg:
        raise DERError("empty hashAlgorithm")
    params = b"".join(a.raw for a in alg[1:])
    imprint = expect(mi[1], 0x04, "hashedMessage").content
    policy = nonce = None
    cert_req = False
    for kid in kids[2:]:
        if kid.tag == 0x06:
            policy = _oid_text(kid)
        elif kid.tag == 0x02:
            nonce = int.from_bytes(kid.content, "big", signed=True)
        elif kid.tag == 0x01:
            cert_req = kid.content != b"\x00"
        elif kid.tag != 0xA0:
            raise DERError(f"TimeStampReq: unexpected tag 0x{kid.tag:02x}")
    return ParsedRequest(version, _oid_text(alg[0]), params, imprint, kids[1].raw, policy, nonce, cert_req)


# --- tokens --------------------------------------------------------------------------------------
def make_tst_info(
    message_imprint_der: bytes,
    *,
    gen_time: dt.datetime,
    nonce: int | None,
    serial: int | None = None,
    policy: str = TEST_POLICY,
    accuracy_seconds: int | None = 1,
) -> bytes:
    """DER ``TSTInfo`` (version 1) echoing the request's messageImprint encoding."""
    parts = [w.integer(1), w.oid(policy), message_imprint_der, w.integer(serial or secrets.randbits(63) + 1),
             w.generalized_time(gen_time)]
    if accuracy_seconds:
        parts.append(w.sequence(w.integer(accuracy_seconds)))
    if nonce is not None:
        parts.append(w.integer(nonce))
    return w.sequence(*parts)


def _attribute(oid: str, value: bytes) -> bytes:
    return w.sequence(w.oid(oid), w.set_of(value))


def make_token(pki: TSAPki, tst_info: bytes, *, include_certs: bool = True, break_signature: bool = False) -> bytes:
    """A DER TimeStampToken (CMS ContentInfo/SignedData) over ``tst_info`` signed by ``pki``'s TSA key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = pki.tsa_cert
    cert_der = cert.public_bytes(Encoding.DER)
    issuer_der = cert.issuer.public_bytes()
    ess_cert_id_v2 = w.sequence(  # hashAlgorithm DEFAULT sha256 is omitted in DER
        w.octet_string(hashlib.sha256(cert_der).digest()),
        w.sequence(w.sequence(w.context(4, issuer_der)), w.integer(cert.serial_number)),
    )
    attrs = sorted([
        _attribute(OID_CONTENT_TYPE, w.oid(OID_TST_INFO)),
        _attribute(OID_MESSAGE_DIGEST, w.octet_string(hashlib.sha256(tst_info).digest())),
        _attribute(OID_SIGNING_CERTIFICATE_V2, w.sequence(w.sequence(ess_cert_id_v2))),
    ])
    signed_attrs = b"".join(attrs)
    to_sign = w.tlv(0x31, signed_attrs)
    key = pki.tsa_key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        sig_alg = w.algorithm_identifier(OID_SHA256_WITH_RSA, null_parameters=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        sig_alg = w.algorithm_identifier(OID_ECDSA_WITH_SHA256)
    else:  # pragma: no cover - make_tsa_pki makes only these
        raise TypeError("unsupported TSA key")
    if break_signature:
        signature = signature[:-1] + bytes((signature[-1] ^ 0x01,))
    signer_info = w.sequence(
        w.integer(1),
        w.sequence(issuer_der, w.integer(cert.serial_number)),
        w.algorithm_identifier(OID_SHA256),
        w.context(0, signed_attrs),
        sig_alg,
        w.octet_string(signature),
    )
    fields = [
        w.integer(3),
        w.set_of(w.algorithm_identifier(OID_SHA256)),
        w.sequence(w.oid(OID_TST_INFO), w.context(0, w.octet_string(tst_info))),
    ]
    if include_certs:
        fields.append(w.context(0, b"".join(sorted(c.public_bytes(Encoding.DER)
                                                   for c in pki.token_certificates()))))
    fields.append(w.set_of(signer_info))
    return w.sequence(w.oid(OID_SIGNED_DATA), w.context(0, w.sequence(*fields)))


def make_response(status: int, token: bytes | None = None, *, text: str | None = None,
                  failure_bit: int | None = None) -> bytes:
    """DER ``TimeStampResp { PKIStatusInfo, token? }``."""
    info = [w.integer(status)]
    if text:
        info.append(w.sequence(w.utf8_string(text)))
    if failure_bit is not None:
        nbytes = failure_bit // 8 + 1
        bits = bytearray(nbytes)
        bits[failure_bit // 8] |= 0x80 >> (failure_bit % 8)
        info.append(w.bit_string(bytes(bits), unused_bits=7 - failure_bit % 8))
    return w.sequence(w.sequence(*info), *([token] if token is not None else []))


# --- server --------------------------------------------------------------------------------------
@dataclasses.dataclass
class RecordedRequest:
    """One POST the TSA received."""

    path: str
    headers: dict[str, str]
    body: bytes


class TestTSA:
    """A loopback RFC 3161 TSA (see the module docstring). Use as a context manager or call :meth:`close`."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        pki: TSAPki | None = None,
        *,
        mode: str = "ok",
        delay: float = 5.0,
        gen_time: Callable[[], dt.datetime] | None = None,
        accuracy_seconds: int | None = 1,
        crl: str | None = None,
    ) -> None:
        if crl not in (None, "good", "revoked") or (crl and pki is not None):
            raise ValueError("crl must be 'good' or 'revoked', and the TSA then makes its own PKI")
        #: None, or ``good``/``revoked``: the TSA certificate names ``{url base}/crl`` served here
        self.crl = crl
        self.crl_requests = 0
        self.mode = mode
        self.delay = delay
        self.gen_time = gen_time or (lambda: dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
        self.accuracy_seconds = accuracy_seconds
        self.requests: list[RecordedRequest] = []
        self._other: TSAPki | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = QuietHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self._server.port
        self.url = f"http://127.0.0.1:{self.port}/tsa"
        self.pki = pki or make_tsa_pki(crl_url=f"http://127.0.0.1:{self.port}/crl" if crl else None)
        self._server.start("test-tsa")

    # context manager ------------------------------------------------------------------------------
    def __enter__(self) -> TestTSA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port."""
        self._stop.set()
        self._server.stop()

    # answers --------------------------------------------------------------------------------------
    def _other_pki(self) -> TSAPki:
        with self._lock:
            if self._other is None:
                self._other = make_tsa_pki(cn="ocisign untrusted TSA")
            return self._other

    def answer(self, body: bytes) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) for a request body, according to :attr:`mode`."""
        mode = self.mode
        if mode not in MODES:
            raise ValueError(f"unknown test TSA mode {mode!r}")
        reply_type = "application/timestamp-reply"
        if mode == "http-error":
            return 500, "text/plain", b"internal error\n"
        if mode == "garbage":
            return 200, reply_type, secrets.token_bytes(300)
        if mode == "oversized":
            return 200, reply_type, b"\x30" + b"\x00" * (2 * 1024 * 1024)
        if mode == "slow":
            self._stop.wait(self.delay)
        try:
            req = parse_request(body)
        except DERError:
            return 200, reply_type, make_response(2, text="bad request", failure_bit=5)
        if mode == "reject":
            return 200, reply_type, make_response(2, text="request rejected by the test TSA", failure_bit=2)
        if mode == "no-token":
            return 200, reply_type, make_response(0)
        imprint = req.message_imprint_der
        if mode == "wrong-imprint":
            alg = w.sequence(w.oid(req.hash_oid), *([w.null()] if req.hash_params else []))
            imprint = w.sequence(alg, w.octet_string(bytes((req.imprint[0] ^ 0xFF,)) + req.imprint[1:]))
        nonce = req.nonce
        if mode == "wrong-nonce":
            nonce = (nonce or 0) + 1
        elif mode == "no-nonce":
            nonce = None
        tst = make_tst_info(imprint, gen_time=self.gen_time(), nonce=nonce, accuracy_seconds=self.accuracy_seconds)
        pki = self._other_pki() if mode == "untrusted-root" else self.pki
        token = make_token(pki, tst, include_certs=req.cert_req, break_signature=mode == "bad-signature")
        ctype = "text/html" if mode == "wrong-content-type" else reply_type
        return 200, ctype, make_response(0, token)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        tsa = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST:
                    self.send_error(413)
                    return
                body = self.rfile.read(length)
                tsa.requests.append(RecordedRequest(self.path, dict(self.headers.items()), body))
                status, ctype, data = tsa.answer(body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

            def do_GET(self) -> None:
                if self.path != "/crl" or not tsa.crl:
                    self.send_error(404)
                    return
                tsa.crl_requests += 1
                data = make_crl(tsa.pki, revoked=tsa.crl == "revoked")
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
