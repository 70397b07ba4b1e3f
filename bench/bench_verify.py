"""Verification throughput in one process, against the raw verify rate of ``cryptography``.

The ``envelope stream`` row is issue 12's "verify at crypto speed": ``--envelopes`` distinct
envelopes (each signs another subject at another second, all by one key) evaluated one by one
against the trust policy statement with
:func:`ocisign.plugins.trust_policy.evaluate_signature` — the per-signature function the layout
and registry paths call — with the policy, trust stores and revocation checker made once: the
envelope parsed and its signature verified, chain rules, authenticity, trusted identity, expiry,
validity, revocation (no server named), target and user metadata, every time.

A pre-commit hook verifies many layouts in one process; the other rows measure that: ``N`` layouts, each
signed by a key whose root is in the trust store, verified with the core API
(:func:`ocisign.verify.verification.verify_artifact`, one plugin manager, policy and trust stores
loaded once per round, as a pre-commit hook or a batch does) and with
the in-process CLI (``ocisign verify --oci-layout … -o json``: argument parsing, policy loading
and layout opening each time), and as one batch (``ocisign verify --oci-layout A B C …``: one
policy, trust stores read once, certificates parsed and chains checked once per distinct chain).
The floor is ``cryptography`` verifying the same kind of signature in a tight loop (RSASSA-PSS /
ECDSA only — no parsing, no chain, no trust store).

The floor is sampled before each row and after the last; ``% of floor`` compares the median round
with the median floor sample, ``best %`` the best round with the best sample (the machine is shared).

    python bench/bench_verify.py [--layouts 60] [--envelopes 300] [--rounds 3] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _name(cn: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_chain(kind: str, out: Path) -> tuple[Path, Path, Path]:
    """A root CA and a code-signing leaf; returns (key file, chain file, root file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    def gen() -> Any:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
            else ec.generate_private_key(ec.SECP256R1())

    now = dt.datetime.now(dt.timezone.utc)
    root_key, leaf_key = gen(), gen()
    root = (x509.CertificateBuilder().subject_name(_name(f"{kind} root")).issuer_name(_name(f"{kind} root"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(_name(f"{kind} signer")).issuer_name(root.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .sign(root_key, hashes.SHA256()))
    key_file, chain_file, root_file = out / f"{kind}.key", out / f"{kind}.crt", out / f"{kind}-root.crt"
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    key_file.chmod(0o600)
    pem = serialization.Encoding.PEM
    chain_file.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return key_file, chain_file, root_file


def cli(*args: str) -> tuple[int, str]:
    """Run ``ocisign ARGS`` in-process, capturing stdout and stderr."""
    from ocisign.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    if rc not in (0, 1):
        raise SystemExit(f"ocisign {' '.join(args)} failed ({rc}): {err.getvalue()}")
    return rc, out.getvalue()


#: the clock rows and the floor are timed with: wall time (default) or this process's CPU time
#: (``--clock cpu``: time other processes hold the core is not counted, on a shared machine)
_CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def raw_verify_rate(kind: str, seconds: float = 1.0) -> float:
    """Signatures per second ``cryptography`` verifies for the algorithm ocisign uses with this key."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    data = b"x" * 600
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
        sig = key.sign(data, pss, hashes.SHA256())
        pub = key.public_key()

        def one() -> None:
            pub.verify(sig, data, pss, hashes.SHA256())
    else:
        eckey = ec.generate_private_key(ec.SECP256R1())
        sig = eckey.sign(data, ec.ECDSA(hashes.SHA256()))
        ecpub = eckey.public_key()

        def one() -> None:
            ecpub.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    return _rate(one, seconds)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    n, start = 0, _clock()
    while True:
        fn()
        n += 1
        elapsed = _clock() - start
        if elapsed >= seconds:
            return n / elapsed


def make_envelopes(pm: Any, kind: str, fmt: str, key_file: Path, chain_file: Path,
                   n: int) -> tuple[str, list[tuple[Any, bytes]]]:
    """``n`` distinct envelopes made by the same key: each signs another subject at another second.

    Returns the envelope media type and (subject descriptor, envelope) pairs.
    """
    import hashlib

    from ocisign.plugins.file_key import load_file_signer

    from ocisign.envelope.payload import build_payload
    from ocisign.oci.model import MT_MANIFEST, Descriptor
    from ocisign.types import SignRequest

    signer = load_file_signer(key_file, chain_file)
    fmt_obj = next(f for f in pm.envelope_formats().values() if f.name == fmt)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    out: list[tuple[Any, bytes]] = []
    for i in range(n):
        body = f"{kind} subject {i}".encode()
        subject = Descriptor(media_type=MT_MANIFEST, digest="sha256:" + hashlib.sha256(body).hexdigest(),
                             size=1000 + i)
        payload = build_payload(subject, envelope_media_type=fmt_obj.media_type)
        signed_at = now - dt.timedelta(seconds=i)
        request = SignRequest(payload=payload, signing_time=signed_at, expiry=signed_at + dt.timedelta(hours=12),
                              signing_agent="bench")
        out.append((subject, fmt_obj.seal(request, signer)))
    return fmt_obj.media_type, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=60, help="layouts per key type (default 60)")
    parser.add_argument("--envelopes", type=int, default=300,
                        help="distinct envelopes per key type for the stream row (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is reported (default 3)")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                        help="wall (default) or cpu: this process's CPU time, for a machine other jobs share")
    args = parser.parse_args()
    global _clock
    _clock = _CLOCKS[args.clock]

    from ocisign.plugins.trust_policy import evaluate_signature

    from ocisign.config.configdir import ConfigDir
    from ocisign.config.trustpolicy import load_policy
    from ocisign.manager import get_plugin_manager
    from ocisign.testing.sample_image import write_image_layout
    from ocisign.types import SignatureBlob
    from ocisign.verify.revocation import RevocationChecker
    from ocisign.verify.verification import envelope_opener, trust_store_lookup, verify_artifact

    work = Path(tempfile.mkdtemp(prefix="ocisign-bench-"))
    config = work / "config"
    os.environ["OCISIGN_CONFIG_DIR"] = str(config)
    os.environ["OCISIGN_PROJECT_CONFIG"] = "none"
    config.mkdir()
    #: (case, signatures, median seconds, best seconds, median floor/s, best floor/s)
    rows: list[tuple[str, int, float, float, float, float]] = []
    setups = [("rsa", "jws", "RSA-2048 / JWS (PS256)"), ("ec", "cose", "EC P-256 / COSE (ES256)")]
    layouts: dict[str, list[Path]] = {}
    keys: dict[str, tuple[Path, Path]] = {}
    for kind, fmt, _label in setups:
        key, chain, root = make_chain(kind, work)
        keys[kind] = (key, chain)
        cli("key", "add", kind, "--key-file", str(key), "--cert-file", str(chain))
        cli("cert", "add", "-t", "ca", "-s", "bench", str(root))
        layouts[kind] = []
        for i in range(args.layouts):
            lay = work / f"{kind}-{i}"
            write_image_layout(lay, tag="v1")
            cli("sign", "--oci-layout", f"{lay}:v1", "--key", kind, "--signature-format", fmt)
            layouts[kind].append(lay)
    (config / "trustpolicy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "bench", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:bench"], "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Bench"]}]}))

    pm = get_plugin_manager(load_entrypoints=False)
    cfg = ConfigDir(config)
    for kind, fmt, label in setups:
        media_type, stream = make_envelopes(pm, kind, fmt, *keys[kind], args.envelopes)

        def stream_round(kind: str = kind, media_type: str = media_type,
                         stream: list[tuple[Any, bytes]] = stream) -> float:
            """Each envelope evaluated against the policy statement (parse, crypto, chain, policy)."""
            statement = load_policy(cfg).statement_for_scope("local/bench")
            stores = trust_store_lookup(pm, cfg)
            opener = envelope_opener(pm)
            checker = RevocationChecker.from_env()
            now = dt.datetime.now(dt.timezone.utc)
            start = _clock()
            for i, (subject, blob) in enumerate(stream):
                verdict = evaluate_signature(
                    i, SignatureBlob(manifest=None, media_type=media_type, envelope=blob), statement=statement,
                    subject=subject, user_metadata={}, now=now, trust_store=stores, open_envelope=opener,
                    revocation=checker)
                if not verdict.passed:
                    raise SystemExit(f"{kind} envelope {i}: {verdict.failing_check}: {verdict.reason}")
            return _clock() - start

        def api_round(kind: str = kind) -> float:
            policy = load_policy(cfg)
            stores = trust_store_lookup(pm, cfg)
            start = _clock()
            for lay in layouts[kind]:
                target = pm.open_layout(lay)
                try:
                    report = verify_artifact(pm, cfg, target, "v1", location=str(lay), scope="local/bench",
                                             policy=policy, trust_store=stores)
                finally:
                    target.close()
                if not report.verified:
                    raise SystemExit(f"{lay}: {report.message}")
            return _clock() - start

        def cli_round(kind: str = kind) -> float:
            start = _clock()
            for lay in layouts[kind]:
                rc, _ = cli("verify", "--oci-layout", f"{lay}:v1", "--scope", "local/bench", "-o", "json")
                if rc != 0:
                    raise SystemExit(f"{lay}: verify failed")
            return _clock() - start

        def batch_round(kind: str = kind) -> float:
            start = _clock()
            rc, _ = cli("verify", "--oci-layout", "--scope", "local/bench", "--jobs", "1",
                        *(f"{lay}:v1" for lay in layouts[kind]))
            if rc != 0:
                raise SystemExit("batch verify failed")
            return _clock() - start

        # the floor is sampled before every row and once after (other jobs share this machine's CPUs):
        # each row is compared with the median floor (median round) and the best floor (best round)
        floors: list[float] = []
        timed: list[tuple[str, int, list[float]]] = []
        for name, n, one_round in ((f"envelope stream  {label}", len(stream), stream_round),
                                   (f"verify_artifact  {label}", len(layouts[kind]), api_round),
                                   (f"ocisign verify   {label}", len(layouts[kind]), cli_round),
                                   (f"verify batch     {label}", len(layouts[kind]), batch_round)):
            one_round()  # warm-up: first-use costs (imports, lazy classes and regexes) are not throughput
            floors.append(raw_verify_rate(kind, 0.5))
            timed.append((name, n, [one_round() for _ in range(args.rounds)]))
        floors.append(raw_verify_rate(kind, 0.5))
        floor, best_floor = statistics.median(floors), max(floors)
        for name, n, times in timed:
            rows.append((name, n, statistics.median(times), min(times), floor, best_floor))
        rows.append((f"raw verify floor {label}", 0, 0.0, 0.0, floor, best_floor))

    print(f"{'case':<48} {'sigs':>5} {'seconds':>8} {'sig/s':>9} {'floor/s':>9} {'% of floor':>10} {'best %':>7}")
    for name, n, secs, best, floor, best_floor in rows:
        if n:
            print(f"{name:<48} {n:5d} {secs:8.3f} {n / secs:9.1f} {floor:9.1f} {100 * n / secs / floor:9.1f}% "
                  f"{100 * n / best / best_floor:6.1f}%")
        else:
            print(f"{name:<48} {'-':>5} {'-':>8} {floor:9.1f} {floor:9.1f} {100.0:9.1f}% {100.0:6.1f}%")
    print(f"\n(python {sys.version.split()[0]}, layouts per key type: {args.layouts}, envelopes per key type: "
          f"{args.envelopes}, median of {args.rounds} rounds after a warm-up round, {args.clock} time; "
          "'best %': the best round "
          "against the best floor sample; each verification also checks the certificate chain and trust store)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
