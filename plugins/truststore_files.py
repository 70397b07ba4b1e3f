"""Built-in plugin ``truststore_files``: trust stores as directories of certificate files.

``ocisign_trust_store(store_type, name)`` (``trylast``, so site plugins are asked first) reads
``<config>/truststore/x509/<type>/<name>/`` with notation's rules:

* the store name matches ``[a-zA-Z0-9_.-]+`` and the type is ``ca``, ``signingAuthority`` or ``tsa``;
* the store is a real directory (a symlink is refused); a missing directory means "unknown"
  (None), so the verifier reports that the store does not exist;
* every entry is a regular file — a sub-directory or symlink is an error; any file name is read;
* each file holds one or more PEM ``CERTIFICATE`` blocks (nothing but whitespace around them)
  or DER certificate(s);
* every certificate is a CA (basicConstraints cA=TRUE) or self-signed (its signature verifies
  with its own key); ``tsa`` stores hold only self-issued, self-signed root CAs;
* a store without certificates is an error.

Errors are :class:`TrustStoreError` naming the store and file. The config directory is
the one the hook is called with, else ``$OCISIGN_CONFIG_DIR`` (see :mod:`ocisign.config.configdir`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocisign.config.configdir import TRUST_STORE_TYPES, ConfigDir
from ocisign.errors import ConfigError
from ocisign.goformat import go_quote as _q
from ocisign.lazy_plugins import hookimpl_with

if TYPE_CHECKING:
    from cryptography import x509

#: bound on one certificate file
MAX_CERT_FILE_SIZE = 4 * 1024 * 1024
#: bound on the number of files in a store
MAX_STORE_FILES = 10_000



#: validated stores keyed by their directory listing and file stamps (see load_trust_store)
_VALIDATED: dict[tuple[object, ...], tuple[x509.Certificate, ...]] = {}
_CACHE_SIZE = 64


class TrustStoreError(ConfigError):
    """A trust store is missing pieces, holds something other than certificates, or breaks the rules."""


def _is_valid_name(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


@hookimpl_with(trylast=True)
def ocisign_trust_store(store_type: str, name: str, config_dir: str | None) -> Sequence[x509.Certificate] | None:
    """Certificates of ``<config_dir>/truststore/x509/<store_type>/<name>``; None when it does not exist."""
    return load_trust_store(ConfigDir.from_env(config_dir), store_type, name)


def load_trust_store(config: ConfigDir, store_type: str, name: str) -> list[x509.Certificate] | None:
    """Read and validate one named store; None when it does not exist."""
    label = f"trust store {store_type}:{name}"
    if store_type not in TRUST_STORE_TYPES:
        raise TrustStoreError(
            f"{label}: unsupported type {_q(store_type)} (want one of {', '.join(TRUST_STORE_TYPES)})"
        )
    if not _is_valid_name(name):
        raise TrustStoreError(f"{label}: invalid store name (want [a-zA-Z0-9_.-]+)")
    path = config.trust_store_dir(store_type, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TrustStoreError(f"{label}: cannot access {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise TrustStoreError(f"{label}: {path} is not a regular directory (symlinks are not supported)")
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise TrustStoreError(f"{label}: cannot list {path}: {exc.strerror}") from None
    if len(entries) > MAX_STORE_FILES:
        raise TrustStoreError(f"{label}: more than {MAX_STORE_FILES} files")
    stamps: list[tuple[str, int, int, int, int]] = []
    for entry in entries:
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            kind = "a symlink" if entry.is_symlink() else "a directory" if entry.is_dir() else "not a regular file"
            raise TrustStoreError(
                f"{label}: {entry.name} is {kind} (only regular certificate files are supported)"
            )
        es = entry.stat(follow_symlinks=False)
        stamps.append((entry.name, es.st_ino, es.st_size, es.st_mtime_ns, es.st_ctime_ns))
    # a store validated before and unchanged since (same files, sizes, times) is not parsed again
    cache_key = (store_type, str(path), st.st_ino, st.st_mtime_ns, tuple(stamps))
    cached = _VALIDATED.get(cache_key)
    if cached is not None:
        return list(cached)
    certs: list[x509.Certificate] = []
    for entry in entries:
        file_certs = read_certificate_file(Path(entry.path), where=f"{label}: {entry.name}")
        for cert in file_certs:
            problem = ca_or_self_signed_problem(cert)
            if problem:
                raise TrustStoreError(f"{label}: {entry.name}: {problem}")
            if store_type == "tsa":
                problem = root_ca_problem(cert)
                if problem:
                    raise TrustStoreError(f"{label}: {entry.name}: {problem} (tsa stores hold only root CAs)")
        certs.extend(file_certs)
    if not certs:
        raise TrustStoreError(f"{label}: no x509 certificates were found in {path}")
    if len(_VALIDATED) >= _CACHE_SIZE:
        _VALIDATED.clear()
    _VALIDATED[cache_key] = tuple(certs)
    return certs


# --- certificate files --------------------------------------------------------------------------
_PEM_BEGIN = b"-----BEGIN "
_PEM_CERT_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_CERT_END = b"-----END CERTIFICATE-----"


def read_certificate_file(path: Path, *, where: str) -> list[x509.Certificate]:
    """Certificates in a PEM (one or more blocks) or DER (one or more concatenated) file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TrustStoreError(f"{where}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_CERT_FILE_SIZE + 1)
    if len(data) > MAX_CERT_FILE_SIZE:
        raise TrustStoreError(f"{where}: file is larger than {MAX_CERT_FILE_SIZE} bytes")
    return parse_certificates(data, where=where)


def parse_certificates(data: bytes, *, where: str) -> list[x509.Certificate]:
    """Parse PEM or DER certificate bytes; raises TrustStoreError."""

    if _PEM_BEGIN in data:
        return _parse_pem(data, where=where)
    if not data.strip():
        raise TrustStoreError(f"{where}: file is empty; no certificates found")
    certs: list[x509.Certificate] = []
    for i, der in enumerate(_split_der(data, where=where)):
        try:
            certs.append(_load_der(der))
        except ValueError as exc:
            raise TrustStoreError(f"{where}: DER certificate #{i + 1} is invalid: {exc}") from None
    return certs


def _load_der(der: bytes) -> x509.Certificate:
    """A certificate from DER, remembered with its bytes (they are compared, never re-encoded)."""
    from cryptography import x509

    from ocisign.x509.encoding import remember_der

    cert = x509.load_der_x509_certificate(der)
    remember_der(cert, der)
    return cert


def _parse_pem(data: bytes, *, where: str) -> list[x509.Certificate]:
    import base64
    import binascii


    certs: list[x509.Certificate] = []
    rest = data
    while True:
        start = rest.find(_PEM_BEGIN)
        if start < 0:
            if rest.strip():
                raise TrustStoreError(f"{where}: unexpected data after the last PEM block")
            break
        if rest[:start].strip():
            raise TrustStoreError(f"{where}: unexpected data before a PEM block")
        if not rest.startswith(_PEM_CERT_BEGIN, start):
            label = rest[start + len(_PEM_BEGIN): start + 60].split(b"-----")[0].decode("ascii", "replace")
            raise TrustStoreError(f"{where}: PEM block {_q(label)} is not a CERTIFICATE")
        end = rest.find(_PEM_CERT_END, start)
        if end < 0:
            raise TrustStoreError(f"{where}: PEM CERTIFICATE block has no END line")
        body = rest[start + len(_PEM_CERT_BEGIN): end]
        try:
            der = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise TrustStoreError(f"{where}: PEM certificate #{len(certs) + 1} is not valid base64") from None
        try:
            certs.append(_load_der(der))
        except ValueError as exc:
            raise TrustStoreError(f"{where}: PEM certificate #{len(certs) + 1} is invalid: {exc}") from None
        rest = rest[end + len(_PEM_CERT_END):]
    if not certs:
        raise TrustStoreError(f"{where}: no certificates found")
    return certs


def _split_der(data: bytes, *, where: str) -> list[bytes]:
    """Split concatenated DER SEQUENCEs (Go's x509.ParseCertificates accepts several)."""
    from ocisign.x509.der import DERError, parse_all

    try:
        items = parse_all(data)
    except DERError as exc:
        raise TrustStoreError(f"{where}: neither PEM nor DER certificate data ({exc})") from None
    if any(item.tag != 0x30 for item in items):
        raise TrustStoreError(f"{where}: neither PEM nor DER certificate data")
    return [item.raw for item in items]


# --- certificate rules --------------------------------------------------------------------------
def _is_ca(cert: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def ca_or_self_signed_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` may not be in a trust store (None: it is a CA or verifies with its own key)."""
    from ocisign.x509.chain import self_signature_problem

    if _is_ca(cert) or self_signature_problem(cert) is None:
        return None
    return f"certificate {_q(_subject(cert))} is not a CA certificate or a self-signed signing certificate"


def root_ca_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` is not a root CA: Go ``cert.CheckSignatureFrom(cert)`` and issuer == subject."""
    from ocisign.x509.chain import check_signature_from

    subject = _subject(cert)
    if not _is_ca(cert):
        return f"certificate {_q(subject)} is not a root CA certificate: it is not a CA (basicConstraints cA=FALSE)"
    if cert.issuer.public_bytes() != cert.subject.public_bytes():
        return f"certificate {_q(subject)} is not a root CA certificate: issuer and subject differ"
    problem = check_signature_from(cert, cert)
    if problem:
        return f"certificate {_q(subject)} is not a root CA certificate: {problem}"
    return None
