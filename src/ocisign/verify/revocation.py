"""Certificate revocation checking with OCSP and CRLs, the way notation 1.3 does it.

:meth:`RevocationChecker.check_chain` takes a certificate chain (leaf first, root last, already
validated) and decides for every certificate whether it is ``ok``, ``revoked``, ``unknown`` or
``nonRevocable`` (notation-core-go ``revocation.ValidateContext``):

* the last certificate (the root, or a single self-signed certificate) is never checked;
* a certificate naming an OCSP server (AIA ``id-ad-ocsp``, ``http`` URLs only) is checked with
  OCSP: a DER ``OCSPRequest`` (SHA-1 CertID, no nonce) sent with GET when its URL-escaped base64
  is shorter than 255 bytes, else POST; 2 s per request. The response must be HTTP 200, at most
  20 KiB, ``successful``, answer for this certificate's CertID (serial, issuer name and key
  hashes), be signed by the issuer or by a delegated responder certificate issued by the issuer
  with the OCSPSigning extended key usage (valid now), have ``thisUpdate`` not in the future and a
  ``nextUpdate`` not passed, and no critical single extension. ``good`` is ok, ``revoked`` is
  revoked, ``unknown`` (or any server problem, after every server was tried) is unknown;
* when OCSP is unknown, or the certificate has no OCSP server, its CRL distribution points
  (``http`` URLs only; 5 s; at most 32 MiB) are used: each CRL must parse (DER), be issued and
  signed by the issuer (a CA allowed to sign CRLs), not be past its ``nextUpdate``, carry no
  unsupported critical extension (a delta CRL is refused as unsupported, like notation 1.3) and
  is searched for the serial number. The first problem makes the certificate unknown;
* a certificate with neither is ``nonRevocable`` (accepted, like notation);
* with an authentic signing time (``notary.x509.signingAuthority`` only), a revoked entry whose
  invalidity date is after the signing time does not count (notation's rule).

The chain verdict (:meth:`ChainResult.final`) is notation's ``revocationFinalResult``: any revoked
certificate makes it revoked, else any unknown one makes it unknown, else ok.

Network use is limited to the URLs the certificates name: plain ``http`` (notation refuses
anything else), redirects (GET only, at most 5) only to ``http``/``https``, no proxies from the
environment, no credentials (URLs with user info are refused), bounded bodies and a hard
wall-clock deadline per request (:mod:`ocisign.verify.revocation_http`). The HTTP stack
(``http.client``) is imported only when a request is made, so a chain without OCSP/CRL URLs never
loads it. Certificates are
checked concurrently, as notation does.

CRL file cache (:mod:`ocisign.verify.crl_cache`; opt-in with ``OCISIGN_CRL_CACHE=1``, notation 1.3's
``{cache}/crl/<sha256 of URL>`` layout and JSON format): a cached CRL is used only while it is
current and still validates; cache problems are warnings, never failures. Without the variable
nothing is read or written, so ``ocisign verify`` stays a command that writes nothing.

Results are :mod:`ocisign.verify.revocation_results`. This module stays over 500 lines because
:class:`RevocationChecker` is one unit: its OCSP and CRL paths share the clock, the fetcher, the
cache and the per-certificate fallback order, and splitting them would pass that state around.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ocisign.lazy_dataclass import dataclass
from ocisign.verify.crl_cache import CRLCacheError, CRLFileCache
from ocisign.verify.revocation_http import HTTPFetcher, RevocationError
from ocisign.verify.revocation_results import (
    NON_REVOCABLE,
    OK,
    REVOKED,
    UNKNOWN,
    CertResult,
    ChainResult,
    ServerResult,
)
from ocisign.x509.extensions import extension_value as _extension_value
from ocisign.x509.memo import CertMemo

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.x509 import ocsp

#: notation's HTTP client timeouts (whole request, including the body)
OCSP_TIMEOUT = 2.0
CRL_TIMEOUT = 5.0
#: notation-core-go's limits
MAX_OCSP_RESPONSE = 20480
MAX_CRL_SIZE = 32 * 1024 * 1024
#: an OCSP request is sent with GET when its URL-escaped base64 is shorter than this, else POST
OCSP_GET_LIMIT = 255
#: a hostile certificate cannot make us contact more than this many servers per method
MAX_URLS_PER_CERT = 4
#: tolerance for an OCSP ``thisUpdate`` slightly in the future (clock skew)
CLOCK_SKEW = dt.timedelta(minutes=5)

_OID_OCSP_SIGNING = "1.3.6.1.5.5.7.3.9"
_OID_FRESHEST_CRL = "2.5.29.46"
_OID_ISSUING_DISTRIBUTION_POINT = "2.5.29.28"
_OID_INVALIDITY_DATE = "2.5.29.24"
_OID_RSASSA_PSS = "1.2.840.113549.1.1.10"

__all__ = ["CRLCacheError", "CRLFileCache", "CertResult", "ChainResult", "HTTPFetcher", "RevocationChecker",
           "RevocationError", "ServerResult", "crl_urls", "needs_network", "ocsp_urls"]


class _StatusUnknown(RevocationError):
    """An OCSP responder answered ``unknown`` for the certificate (stop asking other servers)."""


# --- certificate helpers ------------------------------------------------------------------------
def _render_subject(cert: x509.Certificate) -> str:
    from ocisign.x509.chain import go_dn_string

    try:
        return go_dn_string(cert.subject)
    except Exception:  # pragma: no cover - names are always renderable
        return cert.subject.rfc4514_string()


#: the subject as Go renders it, once per certificate object
_subject = CertMemo(_render_subject)


def _endpoints(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(ocsp_urls(cert)), tuple(crl_urls(cert))


#: (OCSP URLs, CRL URLs) once per certificate object (a batch meets the same chain again)
_cert_endpoints = CertMemo(_endpoints)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's OCSP server URLs (AIA ``id-ad-ocsp`` URIs), like Go's ``cert.OCSPServer``."""
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    aia = _extension_value(cert, x509.AuthorityInformationAccess)
    if aia is None:
        return []
    return [str(d.access_location.value) for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's CRL distribution point URIs (every ``fullName`` URI), like Go's ``CRLDistributionPoints``."""
    from cryptography import x509

    cdp = _extension_value(cert, x509.CRLDistributionPoints)
    if cdp is None:
        return []
    return [str(n.value) for point in cdp for n in point.full_name or ()
            if isinstance(n, x509.UniformResourceIdentifier)]


def needs_network(chain: Sequence[x509.Certificate]) -> bool:
    """True when some non-root certificate of ``chain`` names an OCSP or CRL URL."""
    return any(ocsp_urls(c) or crl_urls(c) for c in chain[:-1])


def _is_http(url: str) -> str | None:
    """None when ``url`` is an absolute ``http`` URL notation would use, else why not."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "malformed URL"
    if parts.scheme.lower() != "http":
        return f"protocol {parts.scheme or '(none)'} is not supported (only http)"
    return None


def _valid_now(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _may_sign_crls(issuer: x509.Certificate) -> str | None:
    """Go ``RevocationList.CheckSignatureFrom`` constraints on the issuer (None when it may sign CRLs)."""
    from cryptography import x509

    bc = _extension_value(issuer, x509.BasicConstraints)
    if issuer.version == x509.Version.v3 and (bc is None or not bc.ca):
        return "the issuer is not a CA"
    ku = _extension_value(issuer, x509.KeyUsage)
    if ku is not None and not ku.crl_sign:
        return "the issuer's key usage does not allow CRL signing"
    return None


def _verify_signature(key: Any, signature: bytes, data: bytes, hash_alg: Any, sig_oid: str) -> bool:
    """True when ``signature`` over ``data`` verifies with ``key`` (RSA PKCS#1 v1.5/PSS, ECDSA, EdDSA)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from ocisign.x509.signatures import Scheme, verify_signature

    if isinstance(hash_alg, hashes.MD5):
        return False
    scheme: Scheme
    if isinstance(key, rsa.RSAPublicKey):
        scheme = "pss" if sig_oid == _OID_RSASSA_PSS else "pkcs1v15"
    elif isinstance(key, ec.EllipticCurvePublicKey):
        scheme = "ecdsa"
    else:
        scheme = "eddsa"
    return verify_signature(key, signature, data, scheme=scheme, hash_alg=hash_alg) == "ok"


def _generalized_time(value: bytes) -> dt.datetime | None:
    """Decode a DER GeneralizedTime (``YYYYMMDDHHMMSSZ``, no fraction); None when malformed."""
    from ocisign.x509.der import DERError, generalized_time, parse_single

    try:
        return generalized_time(parse_single(value, "GeneralizedTime"), "GeneralizedTime", fraction=False)
    except DERError:
        return None


def _invalidity_date(extensions: Any) -> dt.datetime | None:
    """The invalidityDate entry extension (CRL entry or OCSP single response), raising on a malformed one."""
    from cryptography import x509

    for ext in extensions:
        if ext.oid.dotted_string != _OID_INVALIDITY_DATE:
            continue
        value = ext.value
        if isinstance(value, x509.InvalidityDate):
            return value.invalidity_date_utc
        parsed = _generalized_time(getattr(value, "value", b""))
        if parsed is None:
            raise RevocationError("failed to parse invalidity date")
        return parsed
    return None


# --- the checker --------------------------------------------------------------------------------
@dataclass
class _CRL:
    """A parsed CRL and its DER bytes."""

    der: bytes
    crl: x509.CertificateRevocationList


#: chains decided without asking a server (no certificate but the root names one, or offline), by
#: the identities of their certificates and the offline reason: a pure function of the certificates
#: (their endpoints and subjects), shared by every checker; the value keeps the chain alive, so an
#: identity is never reused while its entry exists
_OFFLINE: dict[tuple[tuple[int, ...], str | None], tuple[tuple[Any, ...], ChainResult]] = {}
_OFFLINE_LOCK = threading.Lock()
_OFFLINE_MEMO_LIMIT = 256


class RevocationChecker:
    """Checks certificate chains for revocation (see the module docstring). Thread-safe; results
    are memoised per (certificate, issuer, signing time) and CRLs per URL for the checker's life."""

    def __init__(
        self,
        *,
        now: dt.datetime | None = None,
        ocsp_timeout: float = OCSP_TIMEOUT,
        crl_timeout: float = CRL_TIMEOUT,
        cache: CRLFileCache | None = None,
        fetcher: HTTPFetcher | None = None,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        self._now = now
        self.ocsp_timeout = ocsp_timeout
        self.crl_timeout = crl_timeout
        self.cache = cache
        self._fetcher = fetcher
        self._warn = warn
        self._lock = threading.Lock()
        self._memo: dict[tuple[bytes, bytes, dt.datetime | None], CertResult] = {}
        self._crls: dict[str, _CRL] = {}
        self.warnings: list[str] = []

    @classmethod
    def from_env(cls, *, now: dt.datetime | None = None, warn: Callable[[str], object] | None = None
                 ) -> RevocationChecker:
        """A checker with notation's timeouts and the CRL cache if ``OCISIGN_CRL_CACHE`` enables it."""
        return cls(now=now, cache=CRLFileCache.from_env(), warn=warn)

    @property
    def now(self) -> dt.datetime:
        """The time responses and CRLs are judged at."""
        return self._now or dt.datetime.now(dt.timezone.utc)

    @property
    def fetcher(self) -> HTTPFetcher:
        """The HTTP client (created on first use)."""
        with self._lock:
            if self._fetcher is None:
                self._fetcher = HTTPFetcher()
            return self._fetcher

    def _warning(self, message: str) -> None:
        with self._lock:
            if message in self.warnings:
                return
            self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    # --- chain ------------------------------------------------------------------------------
    def check_chain(
        self,
        chain: Sequence[x509.Certificate],
        *,
        signing_time: dt.datetime | None = None,
        offline_reason: str | None = None,
    ) -> ChainResult:
        """Revocation status of every certificate of ``chain`` (leaf first, root last).

        ``signing_time`` is the authentic signing time (signingAuthority scheme only).
        ``offline_reason``: do not contact any server; certificates that would need one are
        unknown for that reason.
        """
        if not chain:
            raise RevocationError("chain does not contain any certificates")
        memo_key = (tuple(map(id, chain)), offline_reason)
        known = _OFFLINE.get(memo_key)
        if known is not None:
            return known[1]
        results: list[CertResult | None] = [None] * len(chain)
        last = len(chain) - 1
        results[last] = CertResult(last, _subject(chain[last]), NON_REVOCABLE, "root")
        pending: list[int] = []
        for i in range(last):
            cert = chain[i]
            if _cert_endpoints(cert) == ((), ()):
                results[i] = CertResult(i, _subject(cert), NON_REVOCABLE, "none")
            elif offline_reason is not None:
                results[i] = CertResult(i, _subject(cert), UNKNOWN, "none",
                                        (ServerResult("none", "", UNKNOWN, offline_reason),))
            else:
                pending.append(i)
        if not pending:  # decided by the certificates alone: the same answer for every signature
            found = ChainResult(tuple(r for r in results if r is not None))
            with _OFFLINE_LOCK:
                if len(_OFFLINE) >= _OFFLINE_MEMO_LIMIT:
                    _OFFLINE.clear()
                _OFFLINE[memo_key] = (tuple(chain), found)
            return found
        # an unexpected exception (a bug) propagates: the caller fails the check, never passes it
        if len(pending) == 1:
            i = pending[0]
            results[i] = self.check_certificate(i, chain[i], chain[i + 1], signing_time=signing_time)
        elif pending:
            import concurrent.futures  # only when servers are contacted (it imports logging)

            with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, len(pending)),
                                                       thread_name_prefix="ocisign-revocation") as pool:
                futures = {i: pool.submit(self.check_certificate, i, chain[i], chain[i + 1], signing_time=signing_time)
                           for i in pending}
                for i, fut in futures.items():
                    results[i] = fut.result()
        return ChainResult(tuple(r for r in results if r is not None))

    def check_certificate(self, index: int, cert: x509.Certificate, issuer: x509.Certificate, *,
                          signing_time: dt.datetime | None = None) -> CertResult:
        """OCSP, then CRL when OCSP is unknown or absent, for ``cert`` issued by ``issuer``."""
        from ocisign.x509.encoding import certificate_der

        key = (certificate_der(cert), certificate_der(issuer), signing_time)
        with self._lock:
            memo = self._memo.get(key)
        if memo is not None:
            return memo.at(index)
        subject = _subject(cert)
        o_urls = ocsp_urls(cert)[:MAX_URLS_PER_CERT]
        c_urls = crl_urls(cert)[:MAX_URLS_PER_CERT]
        servers: list[ServerResult] = []
        result = NON_REVOCABLE
        method = "none"
        if o_urls:
            result, servers = self._ocsp(cert, issuer, o_urls, signing_time)
            method = "OCSP"
        if c_urls and (not o_urls or result == UNKNOWN):
            crl_result, crl_servers = self._crl(cert, issuer, c_urls, signing_time)
            servers += crl_servers
            result = crl_result
            method = "OCSPFallbackCRL" if o_urls else "CRL"
        out = CertResult(index, subject, result, method, tuple(servers))
        with self._lock:
            self._memo[key] = out
        return out

    # --- OCSP -------------------------------------------------------------------------------
    def _ocsp(self, cert: x509.Certificate, issuer: x509.Certificate, urls: Sequence[str],
              signing_time: dt.datetime | None) -> tuple[str, list[ServerResult]]:
        results: list[ServerResult] = []
        for url in urls:
            try:
                status = self._ocsp_server(cert, issuer, url, signing_time)
            except _StatusUnknown as exc:
                return UNKNOWN, [ServerResult("OCSP", url, UNKNOWN, str(exc))]
            except RevocationError as exc:
                results.append(ServerResult("OCSP", url, UNKNOWN, str(exc)))
                continue
            except (ValueError, TypeError) as exc:  # cryptography refusing a hostile response
                results.append(ServerResult("OCSP", url, UNKNOWN, f"malformed OCSP response ({exc})"))
                continue
            return status.result, [status]
        return UNKNOWN, results

    def _ocsp_server(self, cert: x509.Certificate, issuer: x509.Certificate, url: str,
                     signing_time: dt.datetime | None) -> ServerResult:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509 import ocsp

        problem = _is_http(url)
        if problem:
            raise RevocationError(f"OCSP server {problem}")
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        der = request.public_bytes(serialization.Encoding.DER)
        encoded = urllib.parse.quote(base64.b64encode(der).decode("ascii"), safe="")
        headers = {"Accept": "application/ocsp-response"}
        if len(encoded) < OCSP_GET_LIMIT:
            parts = urllib.parse.urlsplit(url)
            get_url = urllib.parse.urlunsplit(
                (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + encoded, parts.query, ""))
            data = self.fetcher.request("GET", get_url, headers=headers, timeout=self.ocsp_timeout,
                                        limit=MAX_OCSP_RESPONSE)
        else:
            data = self.fetcher.request("POST", url, body=der,
                                        headers={**headers, "Content-Type": "application/ocsp-request"},
                                        timeout=self.ocsp_timeout, limit=MAX_OCSP_RESPONSE)
        return self._judge_ocsp(data, cert, issuer, url, signing_time)

    def _judge_ocsp(self, data: bytes, cert: x509.Certificate, issuer: x509.Certificate, url: str,
                    signing_time: dt.datetime | None) -> ServerResult:
        from cryptography.x509 import ocsp

        try:
            resp = ocsp.load_der_ocsp_response(data)
        except ValueError as exc:
            raise RevocationError(f"malformed OCSP response ({exc})") from None
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RevocationError(f"OCSP responder answered {resp.response_status.name.lower().replace('_', ' ')}")
        single = self._matching_response(resp, cert, issuer)
        if not self._ocsp_signed_by_issuer(resp, issuer):
            raise RevocationError("OCSP response is not signed by the issuer or a responder it authorised")
        try:
            single_extensions = list(resp.single_extensions)
        except ValueError:
            raise RevocationError("OCSP responses with more than one single response are not supported") from None
        for ext in single_extensions:
            if ext.critical:
                raise RevocationError(f"unsupported critical extension {ext.oid.dotted_string} in OCSP response")
        now = self.now
        if single.this_update_utc > now + CLOCK_SKEW:
            raise RevocationError("OCSP response is not yet valid (thisUpdate is in the future)")
        if single.next_update_utc is None:
            raise RevocationError("expired OCSP response (no nextUpdate)")
        if now > single.next_update_utc:
            raise RevocationError(f"expired OCSP response (nextUpdate {single.next_update_utc:%Y-%m-%dT%H:%M:%SZ})")
        status = single.certificate_status
        if status == ocsp.OCSPCertStatus.GOOD:
            return ServerResult("OCSP", url, OK, "good")
        if status == ocsp.OCSPCertStatus.REVOKED:
            revoked_at = single.revocation_time_utc
            when = f" at {revoked_at:%Y-%m-%dT%H:%M:%SZ}" if revoked_at else ""
            if signing_time is not None:
                invalid_from = _invalidity_date(single_extensions)
                if invalid_from is not None and signing_time < invalid_from:
                    return ServerResult("OCSP", url, OK, f"revoked{when}, but the key was valid when it signed")
            return ServerResult("OCSP", url, REVOKED, f"revoked{when}")
        raise _StatusUnknown("OCSP responder does not know the certificate (status unknown)")

    @staticmethod
    def _matching_response(resp: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
                           ) -> ocsp.OCSPSingleResponse:
        """The single response for ``cert``'s CertID (serial, issuer name hash and key hash)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509 import ocsp

        expected: dict[str, tuple[bytes, bytes]] = {}
        for single in resp.responses:
            if single.serial_number != cert.serial_number:
                continue
            alg = single.hash_algorithm
            if not isinstance(alg, (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)):
                continue
            if alg.name not in expected:
                req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, alg).build()
                expected[alg.name] = (req.issuer_name_hash, req.issuer_key_hash)
            if (single.issuer_name_hash, single.issuer_key_hash) == expected[alg.name]:
                return single
        raise RevocationError("OCSP response has no answer for this certificate (CertID mismatch)")

    def _ocsp_signed_by_issuer(self, resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
        """The response signature verifies with the issuer's key, or with a delegated responder's."""
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.x509 import ExtendedKeyUsage

        try:
            hash_alg = resp.signature_hash_algorithm
        except UnsupportedAlgorithm:
            hash_alg = None
        sig_oid = resp.signature_algorithm_oid.dotted_string
        data, signature = resp.tbs_response_bytes, resp.signature
        if _verify_signature(issuer.public_key(), signature, data, hash_alg, sig_oid):
            return True
        now = self.now
        for responder in resp.certificates[:4]:
            try:
                responder.verify_directly_issued_by(issuer)
            except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
                continue
            eku = _extension_value(responder, ExtendedKeyUsage)
            if eku is None or _OID_OCSP_SIGNING not in {o.dotted_string for o in eku}:
                continue
            if not _valid_now(responder, now):
                continue
            if _verify_signature(responder.public_key(), signature, data, hash_alg, sig_oid):
                return True
        return False

    # --- CRL --------------------------------------------------------------------------------
    def _crl(self, cert: x509.Certificate, issuer: x509.Certificate, urls: Sequence[str],
             signing_time: dt.datetime | None) -> tuple[str, list[ServerResult]]:
        results: list[ServerResult] = []
        for url in urls:
            try:
                crl = self._load_crl(url, issuer)
                status = self._crl_status(crl.crl, cert, url, signing_time)
            except RevocationError as exc:
                return UNKNOWN, [*results, ServerResult("CRL", url, UNKNOWN, str(exc))]
            except (ValueError, TypeError) as exc:  # cryptography refusing a hostile CRL
                return UNKNOWN, [*results, ServerResult("CRL", url, UNKNOWN, f"malformed CRL ({exc})")]
            results.append(status)
            if status.result == REVOKED:
                return REVOKED, results
        return OK, results

    def _load_crl(self, url: str, issuer: x509.Certificate) -> _CRL:
        """A current, validated CRL for ``url``: memory, then the file cache, then the network."""
        problem = _is_http(url)
        if problem:
            raise RevocationError(f"CRL distribution point {problem}")
        with self._lock:
            held = self._crls.get(url)
        if held is not None and self._validate_crl(held.crl, issuer) is None:
            return held
        if self.cache is not None:
            try:
                der = self.cache.get(url)
            except CRLCacheError as exc:
                self._warning(str(exc))
                der = None
            if der is not None:
                cached = self._parse_crl(der)
                if cached is not None and cached.crl.next_update_utc is not None \
                        and self._validate_crl(cached.crl, issuer) is None:
                    with self._lock:
                        self._crls[url] = cached
                    return cached
        data = self.fetcher.request("GET", url, timeout=self.crl_timeout, limit=MAX_CRL_SIZE,
                                    headers={"Accept": "application/pkix-crl"})
        fetched = self._parse_crl(data)
        if fetched is None:
            raise RevocationError("failed to parse the CRL (DER expected)")
        why = self._validate_crl(fetched.crl, issuer)
        if why is not None:
            raise RevocationError(why)
        with self._lock:
            self._crls[url] = fetched
        if self.cache is not None and fetched.crl.next_update_utc is not None:
            try:
                self.cache.set(url, fetched.der)
            except CRLCacheError as exc:
                self._warning(str(exc))
        return fetched

    @staticmethod
    def _parse_crl(der: bytes) -> _CRL | None:
        from cryptography import x509

        try:
            return _CRL(der, x509.load_der_x509_crl(der))
        except ValueError:
            return None

    @staticmethod
    def _crl_extensions(crl: x509.CertificateRevocationList) -> list[Any]:
        try:
            return list(crl.extensions)
        except ValueError as exc:
            raise RevocationError(f"malformed CRL extensions ({exc})") from None

    def _validate_crl(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> str | None:
        """None when ``crl`` was issued and signed by ``issuer``, is current and has no unsupported
        critical extension; else why not."""
        why = _may_sign_crls(issuer)
        if why:
            return f"CRL is not signed by CA {_subject(issuer)}: {why}"
        if crl.issuer.public_bytes() != issuer.subject.public_bytes():
            return f"CRL issuer does not match the certificate issuer {_subject(issuer)}"
        try:
            signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            signed = False
        if not signed:
            return f"CRL is not signed by CA {_subject(issuer)}: signature does not verify"
        next_update = crl.next_update_utc
        if next_update is not None and self.now > next_update:
            return f"expired CRL (nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ} has passed)"
        try:
            extensions = self._crl_extensions(crl)
        except RevocationError as exc:
            return str(exc)
        for ext in extensions:
            oid = ext.oid.dotted_string
            if oid == _OID_FRESHEST_CRL:
                return "delta CRL is not supported"
            if ext.critical and oid != _OID_ISSUING_DISTRIBUTION_POINT:
                return f"unsupported critical extension found in CRL: {oid}"
        return None

    def _crl_status(self, crl: x509.CertificateRevocationList, cert: x509.Certificate, url: str,
                    signing_time: dt.datetime | None) -> ServerResult:
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None:
            return ServerResult("CRL", url, OK, "not listed")
        try:
            extensions = list(entry.extensions)
        except ValueError as exc:
            raise RevocationError(f"malformed CRL entry extensions ({exc})") from None
        for ext in extensions:
            if ext.critical and ext.oid.dotted_string != _OID_INVALIDITY_DATE:
                raise RevocationError(f"unsupported critical extension found in CRL entry: {ext.oid.dotted_string}")
        when = f" at {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ}"
        if signing_time is not None:
            invalid_from = _invalidity_date(extensions)
            if invalid_from is not None and signing_time < invalid_from:
                return ServerResult("CRL", url, OK, f"revoked{when}, but the key was valid when it signed")
        return ServerResult("CRL", url, REVOKED, f"revoked{when}")
