"""``cert generate-test`` and ``cert cleanup-test``: a throw-away signing key exactly as notation makes it.

generate-test NAME: an RSA key (2048 bits by default; 3072 or 4096) saved as PKCS#8 PEM in
``localkeys/NAME.key`` (0600, created with O_EXCL, never overwritten) and the self-signed test
certificate of :func:`ocisign.x509.testcert.make_test_certificate` in ``localkeys/NAME.crt``.
The key is added to ``signingkeys.json`` (``--default`` marks it) and the certificate is
copied to the trust store ``truststore/x509/ca/NAME/NAME.crt``. cleanup-test NAME undoes it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, absolute, edit_signing_keys, ensure_config_root
from ocisign.errors import ConfigError, UsageError
from ocisign.fsutil import create_exclusive, make_private_dirs

__all__ = ["RSA_BITS", "check_name", "cleanup_test", "generate_test", "local_key_paths", "trust_store_cert_path"]

NAME_RE = re.compile(r"\A[a-zA-Z0-9_.-]+\Z")
RSA_BITS = (2048, 3072, 4096)

Printer = Callable[[str], None]


def check_name(name: str, *, what: str = "name") -> str:
    """``name`` if it matches ``[a-zA-Z0-9_.-]+`` (and is not ``.``/``..``), else UsageError."""
    if not NAME_RE.match(name) or name in (".", ".."):
        raise UsageError(f"{what} {name!r} needs to follow [a-zA-Z0-9_.-]+ format")
    return name


def local_key_paths(config: ConfigDir, name: str) -> tuple[Path, Path]:
    """Absolute ``localkeys/NAME.key`` and ``localkeys/NAME.crt``."""
    base = Path(absolute(config.localkeys))
    return base / f"{name}.key", base / f"{name}.crt"


def trust_store_cert_path(config: ConfigDir, store_type: str, store: str, file_name: str) -> Path:
    """``truststore/x509/<type>/<store>/<file>``."""
    return Path(absolute(config.trust_store_dir(store_type, store))) / file_name


def write_new_file(path: Path, data: bytes, *, mode: int, what: str) -> None:
    """Create ``path`` with O_EXCL (never overwrites), fsynced."""
    try:
        make_private_dirs(path.parent)
    except OSError as exc:
        raise ConfigError(f"cannot create directory {path.parent}: {exc.strerror}") from None
    try:
        create_exclusive(path, data, mode=mode)
    except FileExistsError:
        raise UsageError(f"{what} {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"failed to write {what} {path}: {exc.strerror}") from None


def generate_test(config: ConfigDir, name: str, *, bits: int = 2048, make_default: bool = False,
                  out: Printer = print) -> KeyRecord:
    """Run ``cert generate-test``; prints notation's progress lines through ``out``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    check_name(name)
    if bits not in RSA_BITS:
        raise UsageError(f"unsupported RSA key size {bits}: choose one of 2048, 3072, 4096")
    key_path, cert_path = local_key_paths(config, name)
    store_cert = trust_store_cert_path(config, "ca", name, f"{name}.crt")
    ensure_config_root(config)
    with edit_signing_keys(config) as keys:
        if name in keys.names():
            raise UsageError(f"{name}: already exists")
        for path, what in ((key_path, "key file"), (cert_path, "certificate file"),
                           (store_cert, "trust store certificate")):
            if os.path.lexists(path):
                raise UsageError(f"{what} {path} already exists; run 'ocisign cert cleanup-test {name}' first")
        from ocisign.x509.testcert import make_test_certificate

        out(f"generating RSA Key with {bits} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        cert = make_test_certificate(key, name)
        from ocisign.goformat import go_rfc3339

        out(f"generated certificate expiring on {go_rfc3339(cert.not_valid_after_utc)}")
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        write_new_file(key_path, key_pem, mode=0o600, what="key file")
        out(f"wrote key: {key_path}")
        write_new_file(cert_path, cert_pem, mode=0o644, what="certificate file")
        out(f"wrote certificate: {cert_path}")
        write_new_file(store_cert, cert_pem, mode=0o644, what="trust store certificate")
        out(f"Successfully added {store_cert.name} to named store {name} of type ca")
        record = KeyRecord(name=name, key_path=str(key_path), cert_path=str(cert_path))
        keys.add(record, make_default=make_default)
    out(f"{name}: added to the key list")
    if make_default:
        out(f"{name}: mark as default signing key")
    return record


def _same_file(a: str, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def cleanup_test(config: ConfigDir, name: str, *, out: Printer = print, err: Printer = print) -> bool:
    """Undo ``generate-test NAME``; returns False when some step failed (reported through ``err``).

    Only files at the generate-test locations (``localkeys/NAME.key``/``.crt``) are deleted:
    a key added with ``key add`` pointing elsewhere is refused rather than deleting user files.
    """
    check_name(name)
    failures: list[str] = []
    key_path, cert_path = local_key_paths(config, name)
    with edit_signing_keys(config) as keys:
        record = keys.get(name)
        if not record.is_file_key:
            raise UsageError("cleanup-test can only apply to non-external keys created by the generate-test command")
        assert record.key_path is not None and record.cert_path is not None
        if not (_same_file(record.key_path, key_path) and _same_file(record.cert_path, cert_path)):
            raise UsageError(
                f"cleanup-test only removes keys created by generate-test: {name!r} points at "
                f"{record.key_path} and {record.cert_path}, not at {key_path.parent}; use 'ocisign key delete'"
            )
        for path, what in ((key_path, "key file"), (cert_path, "certificate file")):
            try:
                path.unlink()
                out(f'Success: deleted the {what} "{path}"')
            except FileNotFoundError:
                out(f'Success: {what} "{path}" does not exist. It is already been cleaned up.')
            except OSError as exc:
                failures.append(f'cannot delete the {what} "{path}" during cleanup-test, {exc.strerror}')
        cert_file = f"{name}.crt"
        store_cert = trust_store_cert_path(config, "ca", name, cert_file)
        try:
            store_cert.unlink()
            out(f'Success: removed "{cert_file}" from trust store ca/{name}')
            with contextlib.suppress(OSError):  # the store may still hold other certificates
                store_cert.parent.rmdir()
        except FileNotFoundError:
            out(f'Success: certificate "{cert_file}" does not exist in trust store ca/{name}. '
                "It is already been cleaned up.")
        except OSError as exc:
            failures.append(f'cannot remove certificate "{cert_file}" from trust store ca/{name}, {exc.strerror}')
        keys.remove([name])
        out(f'Success: removed "{name}" from signing key list')
    for failure in failures:
        err(f"Failed: {failure}")
    return not failures
