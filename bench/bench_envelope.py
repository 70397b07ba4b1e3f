"""Envelope seal/open throughput against the raw ``cryptography`` sign/verify floor.

Run: ``python bench/bench_envelope.py [seconds-per-cell]``. Prints one row per key spec and
format: operations per second for seal (sign + encode + self-check) and open (parse + verify),
and their ratio to a bare sign / verify of the same bytes with the same key.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from ocisign.plugins import cose, jws
from ocisign.plugins.file_key import FileSigner

from ocisign.envelope.algorithms import BY_KEY_SPEC, der_ecdsa
from ocisign.envelope.payload import build_payload
from ocisign.oci.model import MT_COSE, MT_JWS, Descriptor
from ocisign.types import SignRequest

TARGET = Descriptor(media_type="application/vnd.oci.image.manifest.v1+json",
                    digest="sha256:" + "ab" * 32, size=517, annotations={"purpose": "bench"})


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        n += 1
    return n / elapsed


def make_signer(kind: str) -> FileSigner:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind.startswith("RSA"):
        key = rsa.generate_private_key(65537, int(kind[4:]))
    else:
        key = ec.generate_private_key({"EC-256": ec.SECP256R1(), "EC-384": ec.SECP384R1(),
                                       "EC-521": ec.SECP521R1()}[kind])
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    return FileSigner(key, [cert])


def floor_verifier(pub: object, spec: str, data: bytes, sig: bytes) -> Callable[[], None]:
    """A bare ``cryptography`` verify of ``sig`` over ``data`` (the floor ``open`` is compared to)."""
    alg = BY_KEY_SPEC[spec]
    if isinstance(pub, rsa.RSAPublicKey):
        pss = padding.PSS(padding.MGF1(alg.hash()), padding.PSS.DIGEST_LENGTH)
        return functools.partial(pub.verify, sig, data, pss, alg.hash())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    return functools.partial(pub.verify, der_ecdsa(sig, alg), data, ec.ECDSA(alg.hash()))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0.5
    print(f"{'key spec':<9} {'format':<6} {'seal/s':>9} {'sign/s':>9} {'seal/sign':>9} "
          f"{'open/s':>9} {'verify/s':>9} {'open/verify':>11}")
    for spec in ("RSA-2048", "RSA-3072", "EC-256", "EC-384"):
        signer = make_signer(spec)
        pub = signer.certificate_chain()[0].public_key()
        for name, mod, mt in (("jws", jws, MT_JWS), ("cose", cose, MT_COSE)):
            req = SignRequest(payload=build_payload(TARGET, envelope_media_type=mt),
                              signing_time=dt.datetime.now(dt.timezone.utc), signing_agent="bench/1")
            blob = mod.seal(req, signer)
            data = b"x" * 400  # about the size of the signing input
            raw_verify = floor_verifier(pub, spec, data, signer.sign(data))
            seal_r = rate(functools.partial(mod.seal, req, signer), seconds)
            sign_r = rate(functools.partial(signer.sign, data), seconds)
            open_r = rate(functools.partial(mod.open_envelope, blob), seconds)
            verify_r = rate(raw_verify, seconds)
            print(f"{spec:<9} {name:<6} {seal_r:>9.0f} {sign_r:>9.0f} {seal_r / sign_r:>9.2f} "
                  f"{open_r:>9.0f} {verify_r:>9.0f} {open_r / verify_r:>11.2f}")


if __name__ == "__main__":
    main()
