"""Built-in plugin ``file``: signing keys stored as PEM files (notation's ``localkeys``).

A ``signingkeys.json`` record ``{"name", "keyPath", "certPath"}`` becomes a :class:`FileSigner`:

* the key file holds an unencrypted PEM private key — PKCS#8 (``PRIVATE KEY``), PKCS#1
  (``RSA PRIVATE KEY``) or SEC1 (``EC PRIVATE KEY``); other PEM blocks are skipped, like Go's
  ``tls.LoadX509KeyPair``;
* the certificate file holds one or more PEM ``CERTIFICATE`` blocks, leaf first;
* the key must be RSA 2048/3072/4096 or EC P-256/P-384/P-521 and match the leaf's public key.

``sign(data)`` returns RSASSA-PSS (MGF1 with the same hash, salt = hash length) or raw
``r || s`` ECDSA, with the hash the key spec dictates.

RSA keys are loaded without OpenSSL's ``RSA_check_key`` (its primality tests of ``p`` and ``q`` cost
tens of milliseconds per load, more than signing a hundred images) and held instead to the checks
Go's ``rsa.PrivateKey.Validate`` makes when notation loads the key (:func:`_check_rsa_key`): the
primes multiply to the modulus, ``d·e ≡ 1`` modulo each ``p-1``, and the CRT values agree. A key
that passes them and matches the certificate signs correctly; the sign command also verifies every
signature it produces with the certificate's public key before storing it.
The certificate chain keeps its DER bytes, encoded once when the file is read
(:meth:`FileSigner.certificate_chain_der`), for the envelope, the thumbprints and the chain-rule memo.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocisign.envelope.algorithms import Algorithm, algorithm_for, key_spec_of, raw_ecdsa
from ocisign.envelope.errors import UnsupportedKeyError
from ocisign.errors import ConfigError, SigningError
from ocisign.lazy_plugins import hookimpl
from ocisign.lazy_re import lazy_re
from ocisign.types import SignerFactory

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

    from ocisign.types import KeySpec

_PEM_RE = lazy_re(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL
)
#: refuse absurdly large key/cert files before parsing
_MAX_FILE = 4 * 1024 * 1024


class FileSigner:
    """A Signer backed by a private key loaded from a file and its certificate chain."""

    def __init__(self, key: PrivateKeyTypes, chain: Sequence[x509.Certificate], *, key_path: str = "",
                 chain_der: Sequence[bytes] | None = None) -> None:
        self._key = key
        self._chain = tuple(chain)
        self._chain_der = tuple(chain_der) if chain_der is not None else None
        if self._chain_der is not None and len(self._chain_der) != len(self._chain):
            raise ValueError("chain_der must hold one DER encoding per certificate")
        self._spec: KeySpec = key_spec_of(key, what=key_path or "signing key")
        self._alg: Algorithm = algorithm_for(self._spec)
        self.key_path = key_path

    @property
    def key_spec(self) -> KeySpec:
        """``RSA-2048`` … ``EC-521``."""
        return self._spec

    def certificate_chain(self) -> Sequence[x509.Certificate]:
        """Leaf first, as read from the certificate file."""
        return self._chain

    def certificate_chain_der(self) -> tuple[bytes, ...]:
        """The DER bytes of :meth:`certificate_chain` (as read from the file; encoded once otherwise)."""
        if self._chain_der is None:
            from ocisign.x509.encoding import encoding_enum

            der = encoding_enum().DER
            self._chain_der = tuple(c.public_bytes(der) for c in self._chain)
        return self._chain_der

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PSS (salt = hash length) or raw ``r||s`` ECDSA over ``data``."""
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

        alg = self._alg
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(
                data, padding.PSS(mgf=padding.MGF1(alg.hash()), salt_length=padding.PSS.DIGEST_LENGTH), alg.hash()
            )
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return raw_ecdsa(self._key.sign(data, ec.ECDSA(alg.hash())), alg.ec_coordinate_size)
        raise SigningError(f"{self.key_path}: unsupported key type")  # pragma: no cover


def _read(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(_MAX_FILE + 1)
    except FileNotFoundError:
        raise SigningError(f"{what} file {p} does not exist") from None
    except IsADirectoryError:
        raise SigningError(f"{what} file {p} is a directory") from None
    except OSError as exc:
        raise SigningError(f"cannot read {what} file {p}: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE:
        raise SigningError(f"{what} file {p} is too large")
    return data


def _pem_blocks(data: bytes) -> Iterator[tuple[str, bytes, bytes]]:
    """(label, headers+body text, whole block) of every PEM block in ``data``."""
    for m in _PEM_RE.finditer(data):
        yield m.group(1).decode("ascii"), m.group(2), m.group(0)


def _pem_body(body: bytes, where: str) -> bytes:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(f"{where}: PEM block is not valid base64") from None


def _key_loaders() -> tuple[Callable[..., PrivateKeyTypes], Callable[..., PrivateKeyTypes]]:
    """``load_der_private_key`` and ``load_pem_private_key`` of ``cryptography``: the Rust functions
    its ``serialization`` package re-exports, taken from the bindings (that package imports the
    OpenSSH key code and the cipher modules, ~3 ms of a cold sign); the package is the fallback."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        keys = rust_openssl.keys
        return keys.load_der_private_key, keys.load_pem_private_key
    except (ImportError, AttributeError):  # pragma: no cover - a cryptography release without them
        from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

        return load_der_private_key, load_pem_private_key


def load_private_key(key_path: str | Path) -> PrivateKeyTypes:
    """Load the first unencrypted PEM private key of ``key_path`` (PKCS#8, PKCS#1 or SEC1)."""
    load_der_private_key, load_pem_private_key = _key_loaders()
    data = _read(key_path, "key")
    for label, body, block in _pem_blocks(data):
        if label == "ENCRYPTED PRIVATE KEY" or (label.endswith("PRIVATE KEY") and b"ENCRYPTED" in body[:200]
                                                and b"Proc-Type" in body[:200]):
            raise SigningError(f"key file {key_path}: encrypted private keys are not supported")
        if not label.endswith("PRIVATE KEY"):
            continue
        if label not in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
            raise SigningError(f"key file {key_path}: unsupported PEM block {label!r} "
                               "(want PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
        try:
            if label == "PRIVATE KEY":
                key = load_der_private_key(_pem_body(body, f"key file {key_path}"), password=None,
                                           unsafe_skip_rsa_key_validation=True)
            else:
                key = load_pem_private_key(block, password=None, unsafe_skip_rsa_key_validation=True)
        except SigningError:
            raise
        except TypeError:
            raise SigningError(f"key file {key_path}: encrypted private keys are not supported") from None
        except Exception as exc:
            raise SigningError(f"key file {key_path}: malformed or unsupported private key ({exc})") from None
        problem = _check_rsa_key(key)
        if problem:
            raise SigningError(f"key file {key_path}: malformed or unsupported private key ({problem})")
        return key
    raise SigningError(f"key file {key_path}: no PEM private key found")


def _check_rsa_key(key: PrivateKeyTypes) -> str | None:
    """Why an RSA private key is inconsistent (None when it is not RSA or is consistent).

    Go's ``rsa.PrivateKey.Validate`` (what notation runs on its signing key) plus the CRT values
    OpenSSL signs with: ``e`` odd and at least 3, ``p·q = n`` with ``p, q > 1``,
    ``d·e ≡ 1 (mod p-1)`` and ``(mod q-1)``, ``dP = d mod (p-1)``, ``dQ = d mod (q-1)``,
    ``qInv·q ≡ 1 (mod p)``. Integer arithmetic only: microseconds, not OpenSSL's primality tests.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey):
        return None
    nums = key.private_numbers()
    p, q, d = nums.p, nums.q, nums.d
    n, e = nums.public_numbers.n, nums.public_numbers.e
    if e < 3 or e % 2 == 0:
        return "invalid public exponent"
    if p <= 1 or q <= 1 or p * q != n:
        return "invalid modulus"
    if (d * e) % (p - 1) != 1 or (d * e) % (q - 1) != 1:
        return "invalid exponents"
    if nums.dmp1 != d % (p - 1) or nums.dmq1 != d % (q - 1) or (nums.iqmp * q) % p != 1:
        return "invalid CRT values"
    return None


def load_certificates(cert_path: str | Path) -> list[x509.Certificate]:
    """All PEM ``CERTIFICATE`` blocks of ``cert_path``, in file order (leaf first)."""
    return [cert for cert, _der in _load_certificates_der(cert_path)]


def _load_certificates_der(cert_path: str | Path) -> list[tuple[x509.Certificate, bytes]]:
    """Each PEM ``CERTIFICATE`` block of ``cert_path`` parsed, with its DER bytes, in file order."""
    from cryptography import x509

    from ocisign.x509.encoding import encoding_enum

    der_encoding = encoding_enum().DER
    data = _read(cert_path, "certificate")
    certs = []
    for i, (label, body, _block) in enumerate(_pem_blocks(data)):
        if label != "CERTIFICATE":
            continue
        try:
            cert = x509.load_der_x509_certificate(_pem_body(body, f"certificate file {cert_path}"))
            # the encoding the envelope has always carried (for DER input, the bytes of the file)
            certs.append((cert, cert.public_bytes(der_encoding)))
        except SigningError:
            raise
        except Exception as exc:
            raise SigningError(f"certificate file {cert_path}: PEM block {i + 1} is not a valid "
                               f"certificate ({exc})") from None
    if not certs:
        raise SigningError(f"certificate file {cert_path}: no PEM certificate found")
    return certs


def load_file_signer(key_path: str | Path, cert_path: str | Path) -> FileSigner:
    """A :class:`FileSigner` for a PEM key file and a PEM certificate (chain) file.

    Raises SigningError naming the file for unreadable, encrypted, unsupported or mismatched
    keys and certificates.
    """
    from ocisign.x509.encoding import encoding_enum, public_format_enum

    Encoding, PublicFormat = encoding_enum(), public_format_enum()  # the enums, without the SSH code
    key = load_private_key(key_path)
    try:
        key_spec_of(key, what=f"key file {key_path}")
    except UnsupportedKeyError as exc:
        raise SigningError(str(exc)) from None
    loaded = _load_certificates_der(cert_path)
    chain = [cert for cert, _der in loaded]
    key_pub = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    try:
        leaf_pub = chain[0].public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except Exception as exc:
        raise SigningError(f"certificate file {cert_path}: unsupported leaf public key ({exc})") from None
    if key_pub != leaf_pub:
        raise SigningError(f"key file {key_path} does not match the public key of the first certificate "
                           f"in {cert_path}")
    return FileSigner(key, chain, key_path=str(key_path), chain_der=[der for _cert, der in loaded])


def _create(record: Mapping[str, Any]) -> FileSigner:
    name = record.get("name", "?")
    key_path, cert_path = record.get("keyPath"), record.get("certPath")
    if not isinstance(key_path, str) or not key_path:
        raise ConfigError(f"signing key {name!r}: keyPath is missing")
    if not isinstance(cert_path, str) or not cert_path:
        raise ConfigError(f"signing key {name!r}: certPath is missing")
    return load_file_signer(key_path, cert_path)


@hookimpl
def ocisign_signers() -> Iterator[SignerFactory]:
    """The ``file`` signer: PEM key + certificate chain files."""
    yield SignerFactory(name="file", create=_create,
                        description="PEM private key and certificate chain files (keyPath/certPath)")
