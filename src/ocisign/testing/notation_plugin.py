"""A notation plugin for tests and benchmarks: a Python script speaking the plugin protocol.

:func:`write_test_plugin` writes ``<config>/plugins/<name>/notation-<name>`` (shebang: this
Python) plus ``plugin.json`` (name, version, capabilities) and ``keys.json`` (key id -> PEM key
and certificate files). The script implements every command, for both generator and both
verifier capabilities. ENVELOPE signing seals with ocisign's own JWS/COSE code and names the
plugin as the verification plugin (with a minimum version and a critical extended attribute
``com.example.kms.region``), so its signatures need the plugin's ``verify-signature``.

Failure switches come in ``pluginConfig`` (``--plugin-config``): ``mode=`` one of ``error``
(with ``errorCode=CODE``), ``crash`` (exit 3, plain stderr), ``badjson``, ``notobject``, ``slow``
(sleeps ``sleep=`` seconds, default 30), ``huge`` (65 MiB on stdout), ``contract`` (metadata
without contract 1.0), ``wrongname`` (metadata names another plugin), ``keyspec`` (describe-key
lies about the key spec), ``badalg``, ``otherbytes`` (signs other bytes), ``otherkey``,
``otherartifact`` (envelope for another digest), ``wrongtype`` (envelope type not echoed),
``badenvelope``, ``reserved`` (sets a reserved manifest annotation); ``on=COMMAND`` limits the
switch to one command (default: every command except ``get-plugin-metadata``, for which it
applies only to ``contract``/``wrongname``/``error``… when ``on=get-plugin-metadata``).
Verification: ``identity=fail``, ``revocation=fail``, ``processed=none``, ``noresult=CAP``;
``stderr=TEXT`` writes TEXT to stderr; ``scheme=signingAuthority`` makes ENVELOPE signatures with the
``notary.x509.signingAuthority`` scheme. Each request is appended to ``requests.jsonl``.

:func:`write_installable_plugin` writes the same script as one self-contained executable (metadata
and key table embedded, no request log) that ``ocisign plugin install --file`` accepts, since
install copies the executable alone; ``ocisign demo`` uses it as its stand-in KMS.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ALL_CAPABILITIES", "SCRIPT", "write_installable_plugin", "write_test_plugin"]

ALL_CAPABILITIES = (
    "SIGNATURE_GENERATOR.RAW",
    "SIGNATURE_GENERATOR.ENVELOPE",
    "SIGNATURE_VERIFIER.TRUSTED_IDENTITY",
    "SIGNATURE_VERIFIER.REVOCATION_CHECK",
)

SCRIPT = r'''
import base64, json, os, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
CMD = sys.argv[1] if len(sys.argv) > 1 else ""


def load(name):
    with open(os.path.join(HERE, name)) as fh:
        return json.load(fh)


def out(obj):
    sys.stdout.write(json.dumps(obj))
    sys.exit(0)


def error(code, message):
    meta = {"plugin": META["name"]}
    sys.stderr.write(json.dumps({"errorCode": code, "errorMessage": message, "errorMetadata": meta}))
    sys.exit(1)


EMBEDDED = globals().get("EMBEDDED")
META = EMBEDDED["plugin"] if EMBEDDED else load("plugin.json")
KEYS = EMBEDDED["keys"] if EMBEDDED else load("keys.json")
raw = sys.stdin.read()
try:
    REQ = json.loads(raw) if raw else {}
except ValueError:
    error("VALIDATION_ERROR", "request is not JSON")
if not EMBEDDED:
    with open(os.path.join(HERE, "requests.jsonl"), "a") as fh:
        fh.write(json.dumps({"command": CMD, "request": REQ, "env": sorted(os.environ)}) + "\n")
CFG = REQ.get("pluginConfig") or {}
if "stderr" in CFG:
    sys.stderr.write(CFG["stderr"] + "\n")
MODE = CFG.get("mode", "")
ON = CFG.get("on")
active = (ON == CMD) if ON else (CMD != "get-plugin-metadata")
if MODE and active:
    if MODE == "error":
        error(CFG.get("errorCode", "ERROR"), "failure switch on " + CMD)
    if MODE == "crash":
        sys.stderr.write("panic: something broke\ngoroutine 1 [running]\n")
        sys.exit(3)
    if MODE == "badjson":
        sys.stdout.write("{this is not json")
        sys.exit(0)
    if MODE == "notobject":
        out([1, 2, 3])
    if MODE == "slow":
        time.sleep(float(CFG.get("sleep", "30")))
    if MODE == "huge":
        chunk = b"x" * (1 << 20)
        for _ in range(65):
            sys.stdout.buffer.write(chunk)
        sys.exit(0)

if CMD == "get-plugin-metadata":
    md = {"name": META["name"], "description": META.get("description", "test KMS plugin"),
          "version": META["version"], "url": "https://example.com/kms",
          "supportedContractVersions": ["1.0"], "capabilities": META["capabilities"]}
    if MODE == "contract" and active:
        md["supportedContractVersions"] = ["2.0"]
    if MODE == "wrongname" and active:
        md["name"] = "someone-else"
    out(md)

if REQ.get("contractVersion") != "1.0":
    error("UNSUPPORTED_CONTRACT_VERSION", "contract version %r is not supported" % REQ.get("contractVersion"))


def key_entry():
    kid = REQ.get("keyId")
    if kid not in KEYS:
        error("VALIDATION_ERROR", "key %r not found" % kid)
    return kid, KEYS[kid]


def private_key(entry):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    with open(entry["key"], "rb") as fh:
        return load_pem_private_key(fh.read(), password=None)


def chain_der(entry):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    with open(entry["cert"], "rb") as fh:
        return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(fh.read())]


def spec_of(key):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA-%d" % key.key_size
    return "EC-%d" % {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}[key.curve.name]


ALGS = {"RSA-2048": "RSASSA-PSS-SHA-256", "RSA-3072": "RSASSA-PSS-SHA-384", "RSA-4096": "RSASSA-PSS-SHA-512",
        "EC-256": "ECDSA-SHA-256", "EC-384": "ECDSA-SHA-384", "EC-521": "ECDSA-SHA-512"}

if CMD == "describe-key":
    kid, entry = key_entry()
    spec = spec_of(private_key(entry))
    if MODE == "keyspec" and active:
        spec = "EC-384" if spec != "EC-384" else "EC-256"
    out({"keyId": kid, "keySpec": spec})

if CMD == "generate-signature":
    from ocisign.plugins.file_key import FileSigner
    kid, entry = key_entry()
    key = private_key(entry)
    lying = MODE == "keyspec" and ON in (None, "describe-key")
    if REQ.get("keySpec") != spec_of(key) and not lying:
        error("VALIDATION_ERROR", "keySpec mismatch")
    data = base64.b64decode(REQ["payload"])
    if MODE == "otherbytes" and active:
        data = data + b"tampered"
    signer = FileSigner(key, [])
    if MODE == "otherkey" and active:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        other = (rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)
                 if isinstance(key, rsa.RSAPrivateKey) else ec.generate_private_key(key.curve))
        signer = FileSigner(other, [])
    sig = signer.sign(data)
    alg = ALGS[REQ["keySpec"] if lying else spec_of(key)]
    if MODE == "badalg" and active:
        alg = "RSASSA-PSS-SHA-512" if alg != "RSASSA-PSS-SHA-512" else "ECDSA-SHA-256"
    out({"keyId": kid, "signature": base64.b64encode(sig).decode(), "signingAlgorithm": alg,
         "certificateChain": [base64.b64encode(c).decode() for c in chain_der(entry)]})

if CMD == "generate-envelope":
    import datetime as dt
    from ocisign.manager import get_plugin_manager
    from ocisign.plugins.file_key import load_file_signer
    from ocisign.types import SignRequest
    kid, entry = key_entry()
    payload = base64.b64decode(REQ["payload"])
    if MODE == "otherartifact" and active:
        obj = json.loads(payload)
        obj["targetArtifact"]["digest"] = "sha256:" + "0" * 64
        payload = json.dumps(obj).encode()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    expiry = REQ.get("expiryDurationInSeconds")
    attrs = {"io.cncf.notary.verificationPlugin": META["name"],
             "io.cncf.notary.verificationPluginMinVersion": META.get("minVersion", "1.0.0"),
             "com.example.kms.region": "eu-west-1"}
    request = SignRequest(payload=payload, signing_time=now,
                          expiry=now + dt.timedelta(seconds=expiry) if expiry else None,
                          signing_agent="test-kms-plugin", extended_attributes=attrs,
                          signing_scheme="notary.x509." + CFG["scheme"] if CFG.get("scheme") else "notary.x509",
                          critical_attributes=("com.example.kms.region",))
    fmt = get_plugin_manager(load_entrypoints=False).envelope_format(REQ["signatureEnvelopeType"])
    blob = fmt.seal(request, load_file_signer(entry["key"], entry["cert"]))
    if MODE == "badenvelope" and active:
        blob = blob[:-10] + b"0123456789"
    env_type = REQ["signatureEnvelopeType"]
    if MODE == "wrongtype" and active:
        env_type = "application/cose" if env_type != "application/cose" else "application/jose+json"
    annotations = {"com.example.kms.keyArn": "arn:aws:kms:eu-west-1:1:key/" + kid}
    if MODE == "reserved" and active:
        annotations["org.opencontainers.image.created"] = "1999-01-01T00:00:00Z"
    out({"signatureEnvelope": base64.b64encode(blob).decode(), "signatureEnvelopeType": env_type,
         "annotations": annotations})

if CMD == "verify-signature":
    sig = REQ["signature"]
    wanted = REQ["trustPolicy"]["signatureVerification"]
    results = {}
    for cap in wanted:
        if cap == CFG.get("noresult"):
            continue
        if cap == "SIGNATURE_VERIFIER.TRUSTED_IDENTITY":
            ok = CFG.get("identity") != "fail"
            results[cap] = {"success": ok, "reason": "" if ok else "identity not allowed by the KMS"}
        elif cap == "SIGNATURE_VERIFIER.REVOCATION_CHECK":
            ok = CFG.get("revocation") != "fail"
            results[cap] = {"success": ok, "reason": "" if ok else "key was revoked in the KMS"}
    processed = [] if CFG.get("processed") == "none" else sig.get("unprocessedAttributes", [])
    out({"verificationResults": results, "processedAttributes": processed})

error("VALIDATION_ERROR", "unknown command %r" % CMD)
'''


def _metadata(name: str, capabilities: Sequence[str], version: str, min_version: str) -> dict[str, object]:
    return {"name": name, "version": version, "capabilities": list(capabilities), "minVersion": min_version}


def _key_table(keys: Mapping[str, tuple[Path, Path]] | None) -> dict[str, dict[str, str]]:
    return {kid: {"key": str(k), "cert": str(c)} for kid, (k, c) in (keys or {}).items()}


def write_test_plugin(
    config_root: Path,
    name: str = "kms",
    *,
    keys: Mapping[str, tuple[Path, Path]] | None = None,
    capabilities: Sequence[str] = ALL_CAPABILITIES,
    version: str = "1.2.3",
    min_version: str = "1.0.0",
    python: str | None = None,
) -> Path:
    """Write the test plugin into ``<config_root>/plugins/<name>/``; returns the executable path.

    ``keys`` maps key ids to (PEM private key file, PEM certificate chain file).
    """
    directory = Path(config_root) / "plugins" / name
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / f"notation-{name}"
    exe.write_text(f"#!{python or sys.executable}\n{SCRIPT}")
    os.chmod(exe, 0o755)
    (directory / "plugin.json").write_text(json.dumps(_metadata(name, capabilities, version, min_version)))
    (directory / "keys.json").write_text(json.dumps(_key_table(keys)))
    return exe


def write_installable_plugin(
    directory: Path,
    name: str = "kms",
    *,
    keys: Mapping[str, tuple[Path, Path]] | None = None,
    capabilities: Sequence[str] = ALL_CAPABILITIES,
    version: str = "1.2.3",
    min_version: str = "1.0.0",
    python: str | None = None,
) -> Path:
    """Write ``<directory>/notation-<name>``: the test plugin as one self-contained executable.

    Its metadata and key table (key id -> PEM private key file, PEM certificate chain file; absolute
    paths are best, the plugin runs from wherever it is installed) are embedded in the script, so
    ``ocisign plugin install --file`` can install it. It keeps no request log. Returns the path.
    """
    embedded = {"plugin": _metadata(name, capabilities, version, min_version), "keys": _key_table(keys)}
    exe = Path(directory) / f"notation-{name}"
    exe.write_text(f"#!{python or sys.executable}\nEMBEDDED = {embedded!r}\n{SCRIPT}")
    os.chmod(exe, 0o755)
    return exe
