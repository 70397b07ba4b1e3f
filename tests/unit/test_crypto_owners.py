"""The single owners of shared crypto jobs: signature dispatch, GeneralizedTime, Go JSON, extension
lookup and the JWS/COSE header rules (each used to exist two to four times)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from ocisign.envelope.content import check_required_critical, optional_string, required_critical, scheme_times
from ocisign.envelope.errors import EnvelopeError
from ocisign.goformat import go_json, go_marshal
from ocisign.verify.revocation import _generalized_time
from ocisign.x509 import der_writer
from ocisign.x509.der import DERError, generalized_time, parse_single
from ocisign.x509.extensions import extension_value, find_extension
from ocisign.x509.signatures import verify_signature

DATA = b"signed bytes"


# --- x509.signatures.verify_signature -------------------------------------------------------------
@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_rsa_pkcs1v15(rsa_key: rsa.RSAPrivateKey) -> None:
    sig = rsa_key.sign(DATA, padding.PKCS1v15(), hashes.SHA256())
    pub = rsa_key.public_key()
    assert verify_signature(pub, sig, DATA, scheme="pkcs1v15", hash_alg=hashes.SHA256()) == "ok"
    assert verify_signature(pub, sig, DATA + b"!", scheme="pkcs1v15", hash_alg=hashes.SHA256()) == "invalid"
    # a PKCS#1 v1.5 signature is not a PSS signature
    assert verify_signature(pub, sig, DATA, scheme="pss", hash_alg=hashes.SHA256()) == "invalid"


def test_rsa_pss_salt_rules(rsa_key: rsa.RSAPrivateKey) -> None:
    pub = rsa_key.public_key()
    long_salt = rsa_key.sign(DATA, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH), hashes.SHA256())
    digest_salt = rsa_key.sign(DATA, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH),
                               hashes.SHA256())
    # auto-detected salt (golang-jwt, OCSP) accepts both; digest-length salt (go-cose, CMS) only the latter
    assert verify_signature(pub, long_salt, DATA, scheme="pss", hash_alg=hashes.SHA256()) == "ok"
    assert verify_signature(pub, digest_salt, DATA, scheme="pss", hash_alg=hashes.SHA256()) == "ok"
    assert verify_signature(pub, digest_salt, DATA, scheme="pss", hash_alg=hashes.SHA256(),
                            pss_salt_auto=False) == "ok"
    assert verify_signature(pub, long_salt, DATA, scheme="pss", hash_alg=hashes.SHA256(),
                            pss_salt_auto=False) == "invalid"


def test_ecdsa_and_eddsa() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    sig = ec_key.sign(DATA, ec.ECDSA(hashes.SHA256()))
    assert verify_signature(ec_key.public_key(), sig, DATA, scheme="ecdsa", hash_alg=hashes.SHA256()) == "ok"
    assert verify_signature(ec_key.public_key(), sig, b"other", scheme="ecdsa", hash_alg=hashes.SHA256()) == "invalid"
    ed = ed25519.Ed25519PrivateKey.generate()
    assert verify_signature(ed.public_key(), ed.sign(DATA), DATA, scheme="eddsa", hash_alg=None) == "ok"
    assert verify_signature(ed.public_key(), bytes(64), DATA, scheme="eddsa", hash_alg=None) == "invalid"


def test_key_that_does_not_fit_the_scheme(rsa_key: rsa.RSAPrivateKey) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert verify_signature(ec_key, b"x", DATA, scheme="pkcs1v15", hash_alg=hashes.SHA256()) == "wrong-key"
    assert verify_signature(rsa_key.public_key(), b"x", DATA, scheme="ecdsa", hash_alg=hashes.SHA256()) == "wrong-key"
    assert verify_signature(ec_key, b"x", DATA, scheme="ecdsa", hash_alg=None) == "wrong-key"
    assert verify_signature(object(), b"x", DATA, scheme="eddsa", hash_alg=None) == "wrong-key"


def test_refused_inputs_are_an_outcome_not_an_exception() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    # not a DER ECDSA-Sig-Value: cryptography raises, the dispatcher reports it (fail closed)
    outcome = verify_signature(ec_key, b"\x00garbage", DATA, scheme="ecdsa", hash_alg=hashes.SHA256())
    assert outcome in ("invalid", "error")


# --- x509.der.generalized_time -------------------------------------------------------------------
def _gt(text: str) -> bytes:
    return der_writer.tlv(0x18, text.encode("ascii"))


def test_generalized_time_whole_seconds_and_fraction() -> None:
    utc = dt.timezone.utc
    assert generalized_time(parse_single(_gt("20240102030405Z"), "t"), "t") == dt.datetime(2024, 1, 2, 3, 4, 5,
                                                                                          tzinfo=utc)
    assert generalized_time(parse_single(_gt("20240102030405.25Z"), "t"), "t") == dt.datetime(
        2024, 1, 2, 3, 4, 5, 250000, tzinfo=utc)
    # round trip with the writer
    t = dt.datetime(2031, 12, 31, 23, 59, 58, 123000, tzinfo=utc)
    assert generalized_time(parse_single(der_writer.generalized_time(t), "t"), "t") == t


@pytest.mark.parametrize(("text", "fraction", "message"), [
    ("20240102030405.5Z", False, "fractional seconds are not allowed"),
    ("20240102030405.50Z", True, "bad fractional seconds"),
    ("20240102030405.Z", True, "bad fractional seconds"),
    ("20240102030405+0100", True, "is not a UTC GeneralizedTime"),
    ("202401020304Z", True, "is not a UTC GeneralizedTime"),
    ("20241302030405Z", True, "invalid date"),
])
def test_generalized_time_refusals(text: str, fraction: bool, message: str) -> None:
    with pytest.raises(DERError, match=message):
        generalized_time(parse_single(_gt(text), "genTime"), "genTime", fraction=fraction)


def test_generalized_time_wrong_tag() -> None:
    with pytest.raises(DERError, match="unexpected tag 0x17"):
        generalized_time(parse_single(der_writer.tlv(0x17, b"240102030405Z"), "t"), "t")


def test_revocation_invalidity_dates_keep_the_strict_rule() -> None:
    assert _generalized_time(_gt("20240102030405Z")) == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    assert _generalized_time(_gt("20240102030405.5Z")) is None
    assert _generalized_time(b"") is None
    assert _generalized_time(_gt("20240102030405Z") + b"\x00") is None


# --- goformat: one Go JSON encoder ---------------------------------------------------------------
def test_go_marshal_is_compact_go_json() -> None:
    obj = {"b": "<a & b>", "a": "\u2028\u2029é"}
    assert go_marshal(obj, sort_keys=True) == '{"a":"\\u2028\\u2029é","b":"\\u003ca \\u0026 b\\u003e"}'.encode()
    assert go_marshal(obj, sort_keys=False).startswith(b'{"b":')
    assert go_marshal(obj, sort_keys=True) == go_json(obj, indent=None, sort_keys=True).encode()
    assert json.loads(go_marshal(obj, sort_keys=True)) == obj
    with pytest.raises(ValueError):
        go_marshal({"x": float("nan")}, sort_keys=False)
    with pytest.raises(ValueError):
        go_marshal({"x": "\ud800"}, sort_keys=False)


def test_go_json_indented_keeps_its_layout() -> None:
    assert go_json({"k": ["<", 1]}) == '{\n    "k": [\n        "\\u003c",\n        1\n    ]\n}'


# --- x509.extensions -----------------------------------------------------------------------------
def test_extension_lookup_by_class_and_oid() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ext")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    by_class = find_extension(cert, x509.BasicConstraints)
    assert by_class is not None and by_class.critical and by_class.value.ca
    assert find_extension(cert, ExtensionOID.BASIC_CONSTRAINTS) == by_class
    assert find_extension(cert, x509.KeyUsage) is None
    assert find_extension(cert, ExtensionOID.KEY_USAGE) is None
    bc = extension_value(cert, x509.BasicConstraints)
    assert bc is not None and bc.ca
    assert extension_value(cert, x509.ExtendedKeyUsage) is None


# --- envelope.content: the header rules JWS and COSE share ----------------------------------------
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
SCHEME = "io.cncf.notary.signingScheme"
STIME = "io.cncf.notary.signingTime"
ASTIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"


def _read(values: dict[str, dt.datetime]) -> Callable[[str], dt.datetime]:
    return lambda name: values[name]


def test_scheme_times() -> None:
    hdr = {STIME: T0, EXPIRY: T0 + dt.timedelta(days=1)}
    assert scheme_times(hdr, "notary.x509", _read(hdr), expiry_message=lambda: "x") == (
        T0, None, T0 + dt.timedelta(days=1))
    hdr = {ASTIME: T0}
    assert scheme_times(hdr, "notary.x509.signingAuthority", _read(hdr),
                        expiry_message=lambda: "x") == (None, T0, None)
    with pytest.raises(EnvelopeError, match=f"{ASTIME} header must not be present for notary.x509"):
        scheme_times({STIME: T0, ASTIME: T0}, "notary.x509", _read({}), expiry_message=lambda: "x")
    with pytest.raises(EnvelopeError, match=f"{ASTIME} header is required"):
        scheme_times({}, "notary.x509.signingAuthority", _read({}), expiry_message=lambda: "x")
    hdr = {STIME: T0, EXPIRY: T0}
    with pytest.raises(EnvelopeError, match=r"^expiry too early$"):
        scheme_times(hdr, "notary.x509", _read(hdr), expiry_message=lambda: "expiry too early")


def test_required_critical() -> None:
    assert required_critical("notary.x509", None) == {SCHEME}
    assert required_critical("notary.x509.signingAuthority", T0) == {SCHEME, ASTIME, EXPIRY}
    check_required_critical([SCHEME, EXPIRY], "notary.x509", T0)
    with pytest.raises(EnvelopeError, match=f"not marked critical: {ASTIME}, {EXPIRY}$"):
        check_required_critical([SCHEME], "notary.x509.signingAuthority", T0)


def test_optional_string() -> None:
    assert optional_string({}, "p") is None
    assert optional_string({"p": "v"}, "p") == "v"
    with pytest.raises(EnvelopeError, match="p header must be a non-empty text string") as info:
        optional_string({"p": ""}, "p", kind="text string")
    assert info.value.check == "verificationPlugin"
