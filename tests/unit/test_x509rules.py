"""Certificate chain rules (notary-spec §7), fingerprints and Go-style DN rendering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from ocisign.envelope.chain import CertificateChainError, validate_signing_chain
from ocisign.envelope.errors import EnvelopeError
from ocisign.errors import SigningError, VerificationError
from ocisign.x509.chain import cert_fingerprint_sha256, go_dn_string

NOW = dt.datetime.now(dt.timezone.utc)
KU_FIELDS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


def name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclasses.dataclass
class Issued:
    cert: x509.Certificate
    key: Any


def issue(
    cn: str,
    *,
    key: Any = None,
    issuer: Issued | None = None,
    issuer_name: x509.Name | None = None,
    ca: bool | None = None,
    path_len: int | None = None,
    ku: Sequence[str] | None = ("digital_signature",),
    ku_critical: bool = True,
    eku: Sequence[ObjectIdentifier] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    sig_hash: Any = "default",
) -> Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = name(cn)
    signer_key = issuer.key if issuer else key
    b = (x509.CertificateBuilder().subject_name(subject)
         .issuer_name(issuer_name or (issuer.cert.subject if issuer else subject))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before or NOW - dt.timedelta(hours=1))
         .not_valid_after(not_after or NOW + dt.timedelta(days=1)))
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True)
    if ku is not None:
        b = b.add_extension(x509.KeyUsage(**{f: f in ku for f in KU_FIELDS}), critical=ku_critical)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if sig_hash == "default":
        sig_hash = None if isinstance(signer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return Issued(b.sign(signer_key, sig_hash), key)


def root(cn: str = "root", **kw: Any) -> Issued:
    kw.setdefault("ca", True)
    kw.setdefault("ku", ("key_cert_sign", "crl_sign"))
    return issue(cn, **kw)


def leaf(issuer: Issued | None = None, **kw: Any) -> Issued:
    kw.setdefault("eku", (ExtendedKeyUsageOID.CODE_SIGNING,))
    return issue(kw.pop("cn", "leaf"), issuer=issuer, **kw)


def fails(chain: Sequence[Issued | x509.Certificate], match: str, **kw: Any) -> CertificateChainError:
    certs = [c.cert if isinstance(c, Issued) else c for c in chain]
    with pytest.raises(CertificateChainError, match=match) as info:
        validate_signing_chain(certs, **kw)
    return info.value


def ok(chain: Sequence[Issued], **kw: Any) -> None:
    validate_signing_chain([c.cert for c in chain], **kw)


# --- good chains ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chain_len", [1, 2, 3])
@pytest.mark.parametrize("kind", ["rsa2048", "ec256", "ec521"])
def test_make_keypair_chains_are_valid(make_keypair: Callable[..., Any], kind: str, chain_len: int) -> None:
    kp = make_keypair(kind, chain_len=chain_len)
    validate_signing_chain(kp.chain, at=NOW)
    validate_signing_chain(kp.chain, at=None, scheme="notary.x509.signingAuthority")


def test_generate_test_style_cert_is_valid() -> None:
    # notation cert generate-test: self-signed, no basicConstraints, KU digitalSignature critical, EKU codeSigning
    ok([leaf(key=rsa.generate_private_key(65537, 2048))], at=NOW)


def test_leaf_allowances() -> None:
    r = root()
    ok([leaf(r, ku=("digital_signature", "content_commitment")), r])
    ok([leaf(r, ca=False), r])
    ok([leaf(r, eku=None), r])
    ok([leaf(r, eku=(ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)), r])
    ok([leaf(r, key=ec.generate_private_key(ec.SECP384R1())), r])


def test_path_length_constraints() -> None:
    r = root(path_len=1)
    i1 = root("int1", issuer=r, path_len=0)
    ok([leaf(i1), i1, r])
    i2 = root("int2", issuer=i1)
    e = fails([leaf(i2), i2, i1, r], "expected path length of 1 but certificate has path length 0")
    assert "int1" in str(e)
    r0 = root(path_len=0)
    i = root("int", issuer=r0)
    fails([leaf(i), i, r0], "path length")


# --- leaf rules ----------------------------------------------------------------------------------
def test_ca_leaf_rejected(make_keypair: Callable[..., Any]) -> None:
    kp = make_keypair("ec256", ca=True)
    e = fails(kp.chain, "must not be a CA")
    assert kp.chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value in str(e)
    fails(make_keypair("ec256", chain_len=2, ca=True).chain, "must not be a CA")


def test_key_usage_rules() -> None:
    r = root()
    fails([leaf(r, ku=None), r], "key usage extension must be present")
    fails([leaf(r, ku_critical=False), r], "key usage extension must be marked critical")
    fails([leaf(ku=None)], "key usage extension must be present")
    fails([leaf(r, ku=("content_commitment",)), r], "must include digitalSignature")
    for bit, label in (("key_encipherment", "KeyEncipherment"), ("data_encipherment", "DataEncipherment"),
                       ("key_agreement", "KeyAgreement"), ("key_cert_sign", "CertSign"), ("crl_sign", "CRLSign")):
        fails([leaf(r, ku=("digital_signature", bit)), r], f"must not include {label}")
    fails([leaf(r, ku=("digital_signature", "key_agreement", "encipher_only")), r], "EncipherOnly")


@pytest.mark.parametrize("oid,label", [
    (ExtendedKeyUsageOID.SERVER_AUTH, "ServerAuth"), (ExtendedKeyUsageOID.CLIENT_AUTH, "ClientAuth"),
    (ExtendedKeyUsageOID.EMAIL_PROTECTION, "EmailProtection"), (ExtendedKeyUsageOID.TIME_STAMPING, "TimeStamping"),
    (ExtendedKeyUsageOID.OCSP_SIGNING, "OCSPSigning"),
])
def test_forbidden_eku(oid: ObjectIdentifier, label: str) -> None:
    r = root()
    fails([leaf(r, eku=(ExtendedKeyUsageOID.CODE_SIGNING, oid)), r], f"extended key usage must not include {label}")


@pytest.mark.parametrize("kind", ["rsa1024", "rsa2560", "ed25519", "p224", "secp256k1"])
def test_unsupported_leaf_keys(kind: str) -> None:
    key = {
        "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
        "rsa2560": lambda: rsa.generate_private_key(65537, 2560),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "p224": lambda: ec.generate_private_key(ec.SECP224R1()),
        "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    }[kind]()
    r = root()
    e = fails([leaf(r, key=key), r], "not supported")
    assert "leaf" in str(e)
    fails([leaf(key=key)], "not supported")  # self-signed single cert as well


def test_make_keypair_unsupported_sizes(make_keypair: Callable[..., Any]) -> None:
    fails(make_keypair("rsa1024").chain, "RSA key size 1024 bits is not supported")


# --- chain structure -----------------------------------------------------------------------------
def test_wrong_order_and_structure() -> None:
    r = root()
    i = root("int", issuer=r)
    lf = leaf(i)
    fails([r, lf], "self-signed")
    fails([lf, r, i], "is not issued by")
    fails([lf, r], "is not issued by")
    fails([lf, i], "root certificate")
    fails([i, r], "must not be a CA")
    fails([lf, i, r, r], "intermediate certificate is self-signed")


def test_self_signed_leaf_in_multi_cert_chain() -> None:
    r = root()
    # Go's isSelfSigned uses CheckSignatureFrom, so a non-CA self-signed leaf is "not issued by" the next one
    fails([leaf(), r], "is not issued by")
    ca_like = leaf(ca=True, ku=("digital_signature", "key_cert_sign"))
    fails([ca_like, r], "leaf certificate is self-signed")


def test_broken_signature() -> None:
    r = root()
    impostor = root()  # same subject "root", different key
    lf = leaf(impostor)
    e = fails([lf, r], "signature does not verify")
    assert "CN=leaf" in str(e)
    # a single cert claiming to be self-signed but signed by another key
    fails([leaf(issuer=r, issuer_name=name("leaf"))], "invalid self-signed certificate")


def test_single_cert_must_be_self_issued() -> None:
    fails([issue("leaf", issuer_name=name("someone else"), eku=(ExtendedKeyUsageOID.CODE_SIGNING,))],
          "self-issued")


def test_ca_rules() -> None:
    r = root()
    no_bc = root("int", issuer=r, ca=None)
    fails([leaf(no_bc), no_bc, r], "not a CA")
    fails([leaf(no_bc), no_bc, r], "int")
    no_certsign = root("int", issuer=r, ku=("crl_sign",))
    fails([leaf(no_certsign), no_certsign, r], "certificate signing|keyCertSign")
    ku_noncrit = root("int", issuer=r, ku_critical=False)
    fails([leaf(ku_noncrit), ku_noncrit, r], "key usage extension must be marked critical")
    root_no_ku = root(ku=None)
    fails([leaf(root_no_ku), root_no_ku], "key usage extension must be present")
    root_not_ca = root(ca=False)
    fails([leaf(root_not_ca), root_not_ca], "root")


def _resign_sha1(cert: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate signed with sha1WithRSAEncryption (cryptography refuses to build one)."""
    from cryptography.hazmat.primitives.asymmetric import padding

    sha256_rsa = bytes.fromhex("06092a864886f70d01010b")
    sha1_rsa = bytes.fromhex("06092a864886f70d010105")
    der = cert.public_bytes(Encoding.DER).replace(sha256_rsa, sha1_rsa)
    tbs = x509.load_der_x509_certificate(der).tbs_certificate_bytes
    sig = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    return x509.load_der_x509_certificate(der[:-len(sig)] + sig)


def test_sha1_signatures_rejected() -> None:
    rkey = rsa.generate_private_key(65537, 2048)
    r = root(key=rkey)
    lf = _resign_sha1(leaf(r).cert, rkey)
    fails([lf, r], "SHA1 is insecure")
    lkey = rsa.generate_private_key(65537, 2048)
    fails([_resign_sha1(leaf(key=lkey).cert, lkey)], "SHA1 is insecure")


def test_validity_at_signing_time() -> None:
    r = root(not_before=NOW - dt.timedelta(days=10), not_after=NOW + dt.timedelta(days=30))
    lf = leaf(r, not_before=NOW - dt.timedelta(days=2), not_after=NOW - dt.timedelta(days=1))
    e = fails([lf, r], "is not valid at", at=NOW)
    assert e.check == "authenticTimestamp"
    assert "CN=leaf" in str(e)
    ok([lf, r], at=NOW - dt.timedelta(days=1, seconds=30))
    ok([lf, r])  # integrity checks run without a time
    fails([lf, r], "is not valid at", at=NOW - dt.timedelta(days=3))
    # boundaries are inclusive
    exact = lf.cert.not_valid_after_utc
    ok([lf, r], at=exact)
    fails([lf, r], "is not valid at", at=exact + dt.timedelta(seconds=1))


def test_errors_are_signing_and_verification_errors() -> None:
    e = fails([leaf(ku=None)], "present")
    assert isinstance(e, SigningError) and isinstance(e, VerificationError) and isinstance(e, EnvelopeError)
    assert e.check == "integrity"
    with pytest.raises(CertificateChainError, match="at least one"):
        validate_signing_chain([])
    with pytest.raises(CertificateChainError, match="scheme"):
        validate_signing_chain([leaf().cert], scheme="x")


def test_conformance_certificates(conformance: Path) -> None:
    for rel in ("notation/test/e2e/testdata/config/localkeys/e2e.crt",
                "derived/trust-anchors/testcert2.pem", "derived/trust-anchors/alpine-2000-2123.pem"):
        certs = x509.load_pem_x509_certificates((conformance / rel).read_bytes())
        validate_signing_chain(certs[:1])
    alpine = x509.load_pem_x509_certificates(
        (conformance / "derived/trust-anchors/alpine-2000-2123.pem").read_bytes())[0]
    validate_signing_chain([alpine], at=dt.datetime(2050, 1, 1, tzinfo=dt.timezone.utc))
    fails([alpine], "is not valid at", at=dt.datetime(2124, 1, 1, tzinfo=dt.timezone.utc))
    testcert2 = x509.load_pem_x509_certificates((conformance / "derived/trust-anchors/testcert2.pem").read_bytes())[0]
    assert cert_fingerprint_sha256(testcert2) == "dadee19c843e94b94daae9854d0de7ad93642b6075e2d1523b860b1770b64a03"
    assert go_dn_string(testcert2.subject) == "CN=testcert2,O=Notary,L=Seattle,ST=WA,C=US"


# --- fingerprints and DN strings -----------------------------------------------------------------
def test_fingerprint() -> None:
    c = leaf().cert
    fp = cert_fingerprint_sha256(c)
    assert fp == hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest()
    assert fp == fp.lower() and len(fp) == 64


def _n(*attrs: tuple[ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, v) for oid, v in attrs])


def test_go_dn_string() -> None:
    assert go_dn_string(_n((NameOID.COUNTRY_NAME, "US"), (NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                           (NameOID.LOCALITY_NAME, "Seattle"), (NameOID.ORGANIZATION_NAME, "Notary"),
                           (NameOID.COMMON_NAME, "e2e"))) == "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"
    # Go groups values by type in its own order (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER)
    assert go_dn_string(_n((NameOID.COMMON_NAME, "n"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
                           (NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "b"),
                           (NameOID.ORGANIZATION_NAME, "Org"), (NameOID.SERIAL_NUMBER, "42"),
                           (NameOID.STREET_ADDRESS, "Main St"), (NameOID.POSTAL_CODE, "98101"))) == (
        "SERIALNUMBER=42,CN=n,OU=a+OU=b,O=Org,POSTALCODE=98101,STREET=Main St,C=US")
    # unknown attributes come last (first in the sequence), hex of Go's asn1.Marshal(string)
    assert go_dn_string(_n((NameOID.EMAIL_ADDRESS, "a@b.c"), (NameOID.COMMON_NAME, "n"))) == (
        "CN=n,1.2.840.113549.1.9.1=#0c056140622e63")
    assert go_dn_string(_n((NameOID.DOMAIN_COMPONENT, "example"), (NameOID.COMMON_NAME, "n"))) == (
        "CN=n,0.9.2342.19200300.100.1.25=#13076578616d706c65")
    # last CN wins, like Go's FillFromRDNSequence
    assert go_dn_string(_n((NameOID.COMMON_NAME, "first"), (NameOID.COMMON_NAME, "second"))) == "CN=second"
    # escaping
    assert go_dn_string(_n((NameOID.COMMON_NAME, ' a,b+c"d\\e<f>g;h#'))) == 'CN=\\ a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h#'
    assert go_dn_string(_n((NameOID.COMMON_NAME, "#x "))) == "CN=\\#x\\ "
    assert go_dn_string(_n((NameOID.COMMON_NAME, "é "))) == "CN=é\\ "
    # multi-valued RDNs in the certificate are flattened
    multi = x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "n"),
                                                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o")]),
                       x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")])])
    assert go_dn_string(multi) == "CN=n,O=o,C=US"
    assert go_dn_string(x509.Name([])) == ""


def test_a_chain_that_passed_the_rules_is_still_checked_for_validity_each_time() -> None:
    """The time-independent rules are remembered per chain; validity periods never are."""
    r = root(not_before=NOW - dt.timedelta(days=10), not_after=NOW + dt.timedelta(days=1))
    lf = leaf(r, not_before=NOW - dt.timedelta(days=2), not_after=NOW + dt.timedelta(days=5))
    ok([lf, r], at=NOW)
    ok([lf, r], at=NOW)
    e = fails([lf, r], "is not valid at", at=NOW + dt.timedelta(days=2))  # only the root has expired
    assert "CN=root" in str(e) and e.check == "authenticTimestamp"
    fails([lf, r], "is not valid at", at=NOW - dt.timedelta(days=3))  # before the leaf
    other = root("other")
    fails([lf, other], "is not issued by")  # another chain is validated in full
