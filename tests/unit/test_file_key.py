"""The built-in ``file`` signer: PEM key formats, certificate files, key/cert matching, signatures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from ocisign.plugins.file_key import FileSigner, load_file_signer

from ocisign.errors import ConfigError, SigningError

PEM, PKCS8, TRAD = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, \
    serialization.PrivateFormat.TraditionalOpenSSL
NOENC = serialization.NoEncryption()


def _write_key(path: Path, key: Any, fmt: serialization.PrivateFormat, enc: Any = NOENC) -> Path:
    path.write_bytes(key.private_bytes(PEM, fmt, enc))
    return path


@pytest.mark.parametrize("kind,spec,hash_cls,size", [
    ("rsa2048", "RSA-2048", hashes.SHA256, 0), ("rsa3072", "RSA-3072", hashes.SHA384, 0),
    ("ec256", "EC-256", hashes.SHA256, 32), ("ec384", "EC-384", hashes.SHA384, 48),
    ("ec521", "EC-521", hashes.SHA512, 66),
])
def test_sign_produces_notary_signatures(make_keypair: Callable[..., Any], kind: str, spec: str,
                                         hash_cls: type[hashes.HashAlgorithm], size: int) -> None:
    kp = make_keypair(kind)
    signer = load_file_signer(kp.key_path, kp.cert_path)
    assert signer.key_spec == spec
    data = b"protected.payload"
    sig = signer.sign(data)
    pub = kp.chain[0].public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        h = hash_cls()
        pub.verify(sig, data, padding.PSS(padding.MGF1(hash_cls()), h.digest_size), h)
        with pytest.raises(InvalidSignature):
            pub.verify(sig, data, padding.PSS(padding.MGF1(hash_cls()), 20), hash_cls())
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        assert len(sig) == 2 * size
        pub.verify(encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")),
                   data, ec.ECDSA(hash_cls()))


def test_rsa4096_spec(make_keypair: Callable[..., Any]) -> None:
    kp = make_keypair("rsa4096")
    assert load_file_signer(kp.key_path, kp.cert_path).key_spec == "RSA-4096"


@pytest.mark.parametrize("kind", ["rsa2048", "ec256"])
def test_key_formats(make_keypair: Callable[..., Any], tmp_path: Path, kind: str) -> None:
    kp = make_keypair(kind)
    key = serialization.load_pem_private_key(kp.key_path.read_bytes(), None)
    trad = _write_key(tmp_path / "trad.key", key, TRAD)  # PKCS#1 "RSA PRIVATE KEY" / SEC1 "EC PRIVATE KEY"
    assert trad.read_bytes().startswith(b"-----BEGIN " b"RSA PRIVATE KEY" if kind.startswith("rsa")
                                        else b"-----BEGIN " b"EC PRIVATE KEY")
    for path in (kp.key_path, trad):
        signer = load_file_signer(path, kp.cert_path)
        assert isinstance(signer, FileSigner)
        assert [c.serial_number for c in signer.certificate_chain()] == [c.serial_number for c in kp.chain]
    # other PEM blocks (openssl ecparam -genkey writes EC PARAMETERS first) and CRLF line ends are skipped
    mixed = tmp_path / "mixed.key"
    mixed.write_bytes(b"junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"
                      + trad.read_bytes().replace(b"\n", b"\r\n"))
    load_file_signer(mixed, kp.cert_path)


def test_chain_file_order_is_kept(make_keypair: Callable[..., Any], tmp_path: Path) -> None:
    kp = make_keypair("ec256", chain_len=3)
    signer = load_file_signer(kp.key_path, kp.cert_path)
    assert [c.subject for c in signer.certificate_chain()] == [c.subject for c in kp.chain]
    assert len(signer.certificate_chain()) == 3
    # a certificate file with other PEM blocks in between
    blocks = kp.cert_path.read_bytes().split(b"-----END CERTIFICATE-----\n")
    weird = tmp_path / "weird.crt"
    foo = b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"
    weird.write_bytes(b"comment\n" + blocks[0] + b"-----END CERTIFICATE-----\n" + foo
                      + b"-----END CERTIFICATE-----\n".join(blocks[1:]))
    assert len(load_file_signer(kp.key_path, weird).certificate_chain()) == 3


def test_encrypted_keys_refused(make_keypair: Callable[..., Any], tmp_path: Path) -> None:
    kp = make_keypair("ec256")
    key = serialization.load_pem_private_key(kp.key_path.read_bytes(), None)
    enc = serialization.BestAvailableEncryption(b"secret")
    for fmt, name in ((PKCS8, "p8.key"), (TRAD, "trad.key")):
        path = _write_key(tmp_path / name, key, fmt, enc)
        with pytest.raises(SigningError, match=rf"{name}: encrypted private keys are not supported"):
            load_file_signer(path, kp.cert_path)


def test_unreadable_and_malformed_files(make_keypair: Callable[..., Any], tmp_path: Path) -> None:
    kp = make_keypair("ec256")
    missing = tmp_path / "nope.key"
    with pytest.raises(SigningError, match=r"nope.key does not exist"):
        load_file_signer(missing, kp.cert_path)
    with pytest.raises(SigningError, match="is a directory"):
        load_file_signer(tmp_path, kp.cert_path)
    der = tmp_path / "der.key"
    key = serialization.load_pem_private_key(kp.key_path.read_bytes(), None)
    der.write_bytes(key.private_bytes(serialization.Encoding.DER, PKCS8, NOENC))
    with pytest.raises(SigningError, match=r"der.key: no PEM private key found"):
        load_file_signer(der, kp.cert_path)
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"-----BEGIN " b"PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningError, match=r"bad.key: malformed"):
        load_file_signer(bad, kp.cert_path)
    notb64 = tmp_path / "notb64.key"
    notb64.write_bytes(b"-----BEGIN " b"PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningError, match=r"notb64.key"):
        load_file_signer(notb64, kp.cert_path)
    dsa_like = tmp_path / "dsa.key"
    dsa_like.write_bytes(b"-----BEGIN " b"DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n")
    with pytest.raises(SigningError, match="unsupported PEM block 'DSA PRIVATE KEY'"):
        load_file_signer(dsa_like, kp.cert_path)
    nocert = tmp_path / "none.crt"
    nocert.write_text("hello")
    with pytest.raises(SigningError, match=r"none.crt: no PEM certificate found"):
        load_file_signer(kp.key_path, nocert)
    badcert = tmp_path / "bad.crt"
    badcert.write_bytes(b"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n")
    with pytest.raises(SigningError, match=r"bad.crt: PEM block 1 is not a valid certificate"):
        load_file_signer(kp.key_path, badcert)


def test_mismatched_certificate(make_keypair: Callable[..., Any]) -> None:
    a, b = make_keypair("ec256"), make_keypair("ec256")
    with pytest.raises(SigningError, match=f"{a.key_path.name} does not match .*{b.cert_path.name}"):
        load_file_signer(a.key_path, b.cert_path)
    # the key must match the FIRST certificate (leaf first)
    c = make_keypair("ec256", chain_len=2)
    reordered = c.cert_path.with_suffix(".rev")
    blocks = [x.public_bytes(serialization.Encoding.PEM) for x in reversed(c.chain)]
    reordered.write_bytes(b"".join(blocks))
    with pytest.raises(SigningError, match="does not match"):
        load_file_signer(c.key_path, reordered)


@pytest.mark.parametrize("kind", ["rsa1024", "rsa2560"])
def test_unsupported_rsa_sizes(make_keypair: Callable[..., Any], kind: str) -> None:
    kp = make_keypair(kind)
    with pytest.raises(SigningError, match=f"{kp.key_path.name}: RSA key size {kind[3:]} bits is not supported"):
        load_file_signer(kp.key_path, kp.cert_path)


def test_unsupported_key_types(tmp_path: Path) -> None:
    for key in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256K1())):
        n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(key.public_key())
                .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()))
        kpath = _write_key(tmp_path / "k.key", key, PKCS8)
        cpath = tmp_path / "k.crt"
        cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        with pytest.raises(SigningError, match=r"k.key: .*not supported"):
            load_file_signer(kpath, cpath)


def test_signer_factory(pm: Any, make_keypair: Callable[..., Any]) -> None:
    kp = make_keypair("ec384")
    factory = pm.signer_factory("file")
    signer = factory.create({"name": "k", "keyPath": str(kp.key_path), "certPath": str(kp.cert_path)})
    assert signer.key_spec == "EC-384"
    with pytest.raises(ConfigError, match="'k': keyPath is missing"):
        factory.create({"name": "k", "certPath": str(kp.cert_path)})
    with pytest.raises(ConfigError, match="certPath is missing"):
        factory.create({"name": "k", "keyPath": str(kp.key_path)})


def test_plugin_module_import_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, ocisign.plugins.file_key, ocisign.plugins.jws, ocisign.plugins.cose, "
            "ocisign.envelope.content, ocisign.envelope.payload, ocisign.x509.chain, "
            "ocisign.x509.signatures; "
            "bad = [m for m in ('cryptography', 'cbor2', 'urllib3') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _pkcs1_pem(*ints: int) -> bytes:
    """A PEM ``RSA PRIVATE KEY`` (PKCS#1, version 0) holding exactly these integers."""
    import base64

    from ocisign.x509 import der_writer

    der = der_writer.sequence(der_writer.integer(0), *(der_writer.integer(i) for i in ints))
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    label = b"RSA " + b"PRIVATE KEY"  # built at test time from the integers above: no key is committed
    return b"-----BEGIN " + label + b"-----\n" + lines + b"\n-----END " + label + b"-----\n"


@pytest.mark.parametrize("broken,why", [
    ("dmp1", "invalid CRT values"), ("iqmp", "invalid CRT values"), ("d", "invalid exponents"),
    ("n", "invalid modulus"),
])
def test_inconsistent_rsa_keys_refused(make_keypair: Callable[..., Any], tmp_path: Path, broken: str,
                                       why: str) -> None:
    """RSA keys skip OpenSSL's slow primality check; Go's Validate checks (and the CRT values) still hold."""
    kp = make_keypair("rsa2048")
    key = serialization.load_pem_private_key(kp.key_path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    nums = key.private_numbers()
    values = {"n": nums.public_numbers.n, "e": nums.public_numbers.e, "d": nums.d, "p": nums.p, "q": nums.q,
              "dmp1": nums.dmp1, "dmq1": nums.dmq1, "iqmp": nums.iqmp}
    good = tmp_path / "good.key"
    good.write_bytes(_pkcs1_pem(*values.values()))
    signer = load_file_signer(good, kp.cert_path)  # the hand-made encoding itself is accepted
    sig = signer.sign(b"data")
    pub = kp.chain[0].public_key()
    pub.verify(sig, b"data", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    values[broken] += 2  # stays odd/even as before, so only the consistency checks can notice
    bad = tmp_path / "bad.key"
    bad.write_bytes(_pkcs1_pem(*values.values()))
    with pytest.raises(SigningError, match=rf"bad.key: malformed or unsupported private key \(.*{why}"):
        load_file_signer(bad, kp.cert_path)


def test_chain_der_is_carried(make_keypair: Callable[..., Any]) -> None:
    """The signer hands out the DER of its chain, identical to the certificates' own encoding."""
    kp = make_keypair("ec256")
    signer = load_file_signer(kp.key_path, kp.cert_path)
    assert signer.certificate_chain_der() == tuple(
        c.public_bytes(serialization.Encoding.DER) for c in signer.certificate_chain())
    assert len(signer.certificate_chain_der()) == len(kp.chain)
