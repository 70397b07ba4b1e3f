"""Timestamping at sign time: an RFC 3161 client, as notation ≥ 1.2 does for ``--timestamp-url``.

:func:`timestamp_envelope` takes a freshly sealed envelope, and:

1. opens it and takes the primitive signature bytes (JWS: the base64url-decoded ``signature``;
   COSE: the signature bstr) and the hash of the signing key spec (SHA-256/384/512);
2. builds a DER ``TimeStampReq`` (version 1, messageImprint = that hash of the signature, a
   random 159-bit nonce, ``certReq`` TRUE) and POSTs it (``Content-Type:
   application/timestamp-query``, 15 s deadline, no redirects, no credentials, bounded reply);
3. parses the ``TimeStampResp``: status granted (or grantedWithMods), a token present;
4. checks the token's TSTInfo echoes the request (hash algorithm, imprint, nonce) and verifies it
   with :func:`ocisign.verify.timestamp.verify_countersignature` against the single ``--timestamp-root-cert``
   (CMS signature, signed attributes, signingCertificateV2, TSA chain valid at genTime ending at that
   root, TSA leaf EKU exactly timeStamping and critical, notation's timestamping chain rules);
5. checks the TSA chain for revocation (:mod:`ocisign.verify.revocation`; revoked or unknown fails, as in
   notation) and refuses a timestamp outside the signing certificates' validity (it could never verify);
6. returns the envelope with the token attached by the format's ``attach_timestamp``.

Every problem raises :class:`~ocisign.errors.SigningError` (bad flags: UsageError) with one line.
``http.client`` (through :mod:`ocisign.net`) and ``cryptography`` are imported only when a timestamp
is requested.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from ocisign.errors import OcisignError, SigningError, UsageError
from ocisign.lazy_dataclass import dataclass
from ocisign.net import HTTPClient, describe_network_error, is_timeout, network_errors, read_bounded
from ocisign.x509 import der_writer as w
from ocisign.x509.der import DERError, expect, parse_single

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.types import EnvelopeFormat
    from ocisign.verify.timestamp import VerifiedTimestamp

#: notation's HTTP timestamper deadline
DEFAULT_TIMEOUT = 15.0
QUERY_MEDIA_TYPE = "application/timestamp-query"
REPLY_MEDIA_TYPE = "application/timestamp-reply"
#: replies are a few KiB; tspclient-go caps them at 1 MiB
MAX_RESPONSE_SIZE = 1024 * 1024
MAX_ROOT_CERT_FILE_SIZE = 4 * 1024 * 1024
HASH_OIDS = {
    "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2",
    "sha512": "2.16.840.1.101.3.4.2.3",
}
_PKI_STATUS = {0: "granted", 1: "grantedWithMods", 2: "rejection", 3: "waiting", 4: "revocationWarning",
               5: "revocationNotification"}
_FAILURE_INFO = {0: "badAlg", 2: "badRequest", 5: "badDataFormat", 14: "timeNotAvailable", 15: "unacceptedPolicy",
                 16: "unacceptedExtension", 17: "addInfoNotAvailable", 25: "systemFailure"}


@dataclass(frozen=True)
class TimestampOptions:
    """Where to get timestamps and the one root the TSA's chain must end at."""

    url: str
    root: x509.Certificate
    #: where the root came from (for messages)
    root_source: str = "--timestamp-root-cert"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class TimestampRequest:
    """A DER TimeStampReq and what the reply must echo."""

    der: bytes
    hash_name: str
    imprint: bytes
    nonce: int


# --- flags -----------------------------------------------------------------------------------------
def check_timestamp_url(url: str) -> str:
    """An ``http(s)://host[:port]/path`` URL without credentials or fragment, else UsageError."""
    text = url.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UsageError(f"--timestamp-url {url!r}: invalid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--timestamp-url {url!r}: must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise UsageError(f"--timestamp-url {parts.hostname!r}: credentials in the URL are not supported")
    if parts.fragment or any(c.isspace() or ord(c) < 0x20 for c in text):
        raise UsageError(f"--timestamp-url {url!r}: must not contain a fragment, spaces or control characters")
    return text


def load_tsa_root(path: str | os.PathLike[str]) -> x509.Certificate:
    """The single self-signed root CA certificate of ``path`` (PEM or DER), else UsageError."""
    from ocisign.plugins.truststore_files import parse_certificates, root_ca_problem

    where = f"--timestamp-root-cert {os.fspath(path)}"
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_ROOT_CERT_FILE_SIZE + 1)
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_ROOT_CERT_FILE_SIZE:
        raise UsageError(f"{where}: file is larger than {MAX_ROOT_CERT_FILE_SIZE} bytes")
    try:
        certs = parse_certificates(data, where=where)
    except OcisignError as exc:
        raise UsageError(f"{exc}. Expecting a single x509 root certificate in PEM or DER format") from None
    if not certs:
        raise UsageError(f"{where}: no certificate found. Expecting a single x509 root certificate in PEM or DER "
                         "format")
    if len(certs) > 1:
        raise UsageError(f"{where}: found {len(certs)} certificates. Expecting a single x509 root certificate in "
                         "PEM or DER format")
    problem = root_ca_problem(certs[0])
    if problem:
        raise UsageError(f"{where}: {problem}. Expecting a single x509 root certificate in PEM or DER format")
    return certs[0]


def timestamp_options(url: str | None, root_cert: str | None) -> TimestampOptions | None:
    """The options for ``--timestamp-url``/``--timestamp-root-cert`` (both or neither), else UsageError."""
    if url is None and root_cert is None:
        return None
    if url is None or root_cert is None:
        raise UsageError("--timestamp-url and --timestamp-root-cert must be given together")
    return TimestampOptions(url=check_timestamp_url(url), root=load_tsa_root(root_cert),
                            root_source=f"--timestamp-root-cert {root_cert}", timeout=DEFAULT_TIMEOUT)


# --- request / response ----------------------------------------------------------------------------
def build_request(signature: bytes, hash_name: str, *, nonce: int | None = None) -> TimestampRequest:
    """``TimeStampReq { version 1, messageImprint, nonce, certReq TRUE }`` over ``signature``."""
    oid = HASH_OIDS.get(hash_name)
    if oid is None:
        raise SigningError(f"timestamping: unsupported hash algorithm {hash_name!r}")
    imprint = hashlib.new(hash_name, signature).digest()
    if nonce is None:
        nonce = 1 + secrets.randbits(159)  # tspclient-go: a random number up to 2^159
    der = w.sequence(
        w.integer(1),
        w.sequence(w.algorithm_identifier(oid, null_parameters=True), w.octet_string(imprint)),
        w.integer(nonce),
        w.boolean(True),
    )
    return TimestampRequest(der=der, hash_name=hash_name, imprint=imprint, nonce=nonce)


def _printable(text: str, limit: int = 200) -> str:
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned[:limit] + ("…" if len(cleaned) > limit else "")


def parse_response(data: bytes) -> bytes:
    """The DER TimeStampToken of a granted ``TimeStampResp``; SigningError otherwise."""
    try:
        parts = expect(parse_single(data, "TimeStampResp"), 0x30, "TimeStampResp").children()
        if not parts:
            raise DERError("malformed TimeStampResp: empty")
        info = expect(parts[0], 0x30, "PKIStatusInfo").children()
        if not info:
            raise DERError("malformed PKIStatusInfo: empty")
        status_tlv = expect(info[0], 0x02, "PKIStatus")
        if not status_tlv.content or len(status_tlv.content) > 4:
            raise DERError("malformed PKIStatus")
        status = int.from_bytes(status_tlv.content, "big", signed=True)
        texts: list[str] = []
        failures: list[str] = []
        for extra in info[1:]:
            if extra.tag == 0x30:
                texts += [t.content.decode("utf-8", "replace") for t in extra.children() if t.tag == 0x0C]
            elif extra.tag == 0x03 and extra.content:
                bits = extra.content[1:]
                failures += [name for bit, name in _FAILURE_INFO.items()
                             if bit // 8 < len(bits) and bits[bit // 8] & (0x80 >> (bit % 8))]
    except DERError as exc:
        raise SigningError(f"timestamping: the TSA reply is not a valid TimeStampResp: {exc}") from None
    if status not in (0, 1):
        detail = "; ".join(filter(None, [", ".join(failures), _printable(" ".join(texts))]))
        raise SigningError(f"timestamping: the TSA refused the request: status {_PKI_STATUS.get(status, status)}"
                           + (f" ({detail})" if detail else ""))
    if len(parts) != 2:
        raise SigningError("timestamping: the TSA granted the request but sent no timestamp token")
    if parts[1].tag != 0x30:
        raise SigningError("timestamping: the TSA reply's timestamp token is not a DER SEQUENCE")
    return parts[1].raw


def post_request(url: str, body: bytes, *, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """POST ``body`` to the TSA and return the reply body (200, timestamp-reply, bounded, in time)."""
    host = urllib.parse.urlsplit(url).hostname
    deadline = time.monotonic() + timeout
    # one deadline for the whole exchange: connecting and each socket read wait at most what is left
    pool = HTTPClient(connect_timeout=timeout, read_timeout=timeout)
    try:
        resp = pool.request("POST", url, body=body, deadline=deadline,
                            headers={"Content-Type": QUERY_MEDIA_TYPE, "Accept": REPLY_MEDIA_TYPE,
                                     "User-Agent": "ocisign-tsa-client"})
        try:
            if resp.status != 200:
                raise SigningError(f"timestamping: TSA {host!r} answered HTTP {resp.status}")
            ctype = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != REPLY_MEDIA_TYPE:
                raise SigningError(f"timestamping: TSA {host!r} answered with content type {_printable(ctype)!r}, "
                                   f"not {REPLY_MEDIA_TYPE}")
            return read_bounded(resp, limit=MAX_RESPONSE_SIZE, deadline=deadline,
                                fail=lambda why: SigningError(f"timestamping: TSA {host!r}: {why}"))
        finally:
            resp.close()
    except SigningError:
        raise
    except network_errors() as exc:
        if is_timeout(exc):
            raise SigningError(f"timestamping: TSA {host!r} did not answer within {timeout:g} s") from None
        reason = describe_network_error(exc, peer="TSA")
        raise SigningError(f"timestamping: cannot reach TSA {host!r}: {_printable(reason)}") from None
    finally:
        pool.close()


# --- the whole exchange ----------------------------------------------------------------------------
def request_timestamp(signature: bytes, hash_name: str, options: TimestampOptions) -> tuple[bytes, VerifiedTimestamp]:
    """Get a verified DER TimeStampToken over ``signature`` from ``options.url``."""
    from ocisign.verify.timestamp import verify_countersignature
    from ocisign.verify.timestamp_token import TimestampError, parse_token, parse_tst_info

    req = build_request(signature, hash_name)
    reply = post_request(options.url, req.der, timeout=options.timeout)
    token = parse_response(reply)
    try:
        info = parse_tst_info(parse_token(token).content)
    except (TimestampError, DERError) as exc:
        raise SigningError(f"timestamping: the TSA sent an invalid timestamp token: {exc}") from None
    if info.hash_alg != HASH_OIDS[hash_name] or info.hashed_message != req.imprint:
        raise SigningError("timestamping: the TSA's timestamp does not cover the signature (messageImprint "
                           "differs from the request)")
    if info.nonce != req.nonce:
        raise SigningError("timestamping: the TSA's reply does not echo the request nonce "
                           "(replayed or foreign reply)")
    try:
        stamp = verify_countersignature(token, signature, [options.root])
    except OcisignError as exc:
        raise SigningError(f"timestamping: the TSA's timestamp does not verify against {options.root_source}: "
                           f"{exc}") from None
    _check_tsa_revocation(stamp)
    return token, stamp


def _check_tsa_revocation(stamp: VerifiedTimestamp) -> None:
    """notation's check after timestamping: no TSA certificate may be revoked or of unknown status (OCSP/CRL)."""
    from ocisign.verify.revocation import RevocationChecker

    try:
        result = RevocationChecker.from_env().check_chain(stamp.tsa_chain)
    except OcisignError as exc:
        raise SigningError(f"timestamping: failed to check the timestamping certificate chain revocation: "
                           f"{exc}") from None
    if not result.ok:
        raise SigningError(f"timestamping: {result.message('timestamping')}")


def timestamp_envelope(blob: bytes, fmt: EnvelopeFormat, options: TimestampOptions) -> bytes:
    """``blob`` (a sealed envelope of ``fmt``) with a verified RFC 3161 timestamp attached."""
    from ocisign.envelope.algorithms import BY_SIGNATURE_ALGORITHM
    from ocisign.envelope.headers import SCHEME_X509

    if fmt.attach_timestamp is None:
        raise SigningError(f"timestamping: the {fmt.name} envelope format cannot carry a timestamp")
    try:
        content = fmt.open(blob)
    except OcisignError as exc:
        raise SigningError(f"the produced {fmt.name} envelope does not verify: {exc}") from None
    if content.signing_scheme != SCHEME_X509:
        raise SigningError(f"timestamping is only supported for the {SCHEME_X509} signing scheme, "
                           f"not {content.signing_scheme}")
    alg = BY_SIGNATURE_ALGORITHM.get(content.signature_algorithm)
    if alg is None:
        raise SigningError(f"timestamping: unsupported signature algorithm {content.signature_algorithm!r}")
    token, stamp = request_timestamp(content.signature, alg.hashlib_name, options)
    for cert in content.certificate_chain:
        if stamp.earliest < cert.not_valid_before_utc or stamp.latest > cert.not_valid_after_utc:
            raise SigningError(f"timestamping: the TSA's time {stamp.describe()} is outside the validity of "
                               f"signing certificate {cert.subject.rfc4514_string()!r}; the signature could "
                               "never verify")
    stamped = fmt.attach_timestamp(blob, token)
    try:
        check = fmt.open(stamped)
    except OcisignError as exc:
        raise SigningError(f"timestamping: the timestamped {fmt.name} envelope does not verify: {exc}") from None
    if check.timestamp_token != token or check.signature != content.signature:
        raise SigningError(f"timestamping: the {fmt.name} envelope did not keep the timestamp token")
    return stamped
