"""Shared fixtures: an isolated config dir, sample layouts, a CLI runner, generated certs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from ocisign.cli.app import main
from ocisign.manager import OcisignPluginManager, get_plugin_manager
from ocisign.testing.sample_image import write_image_layout

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OCISIGN_SHARED_DIR", REPO_ROOT.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


@dataclasses.dataclass
class CliResult:
    """Exit code and captured output of one CLI run."""

    rc: int
    out: str
    err: str


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty config dir and no plugin autoload from the environment."""
    cfg = tmp_path_factory.mktemp("ocisign-config")
    monkeypatch.setenv("OCISIGN_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg / "docker"))
    # the entry-point index (written by sign and cp): the test's own, never the user's
    monkeypatch.setenv("OCISIGN_CACHE_DIR", str(tmp_path_factory.mktemp("ocisign-cache")))
    monkeypatch.delenv("OCISIGN_DISABLED_PLUGINS", raising=False)
    monkeypatch.delenv("OCISIGN_TRACE_PLUGINS", raising=False)
    return cfg


@pytest.fixture
def config_dir(_isolated_env: Path) -> Path:
    """The test's ocisign config dir (``$OCISIGN_CONFIG_DIR``)."""
    return _isolated_env


@pytest.fixture
def pm() -> OcisignPluginManager:
    """A plugin manager with the built-ins only (no entry points)."""
    return get_plugin_manager(load_entrypoints=False)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``ocisign ARGS…`` in-process; returns CliResult(rc, out, err)."""

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        rc = main(list(args))
        cap = capsys.readouterr()
        return CliResult(rc, cap.out, cap.err)

    return _run


@pytest.fixture
def make_layout(tmp_path: Path) -> Callable[..., Path]:
    """Factory: a fresh hello-world OCI layout directory (tag ``v1``) under tmp_path."""
    counter = iter(range(1_000_000))

    def _make(name: str | None = None, *, tag: str | None = "v1", layer_sizes: Sequence[int] = ()) -> Path:
        root = tmp_path / (name or f"layout{next(counter)}")
        write_image_layout(root, tag=tag, layer_sizes=layer_sizes)
        return root

    return _make


@pytest.fixture
def conformance() -> Path:
    """``../shared/conformance`` (read in place, never copied into the project)."""
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance set not found at {CONFORMANCE}")
    return CONFORMANCE


@pytest.fixture
def copy_conformance_layout(tmp_path: Path, conformance: Path) -> Callable[[str], Path]:
    """Copy a conformance layout (by directory name) to tmp_path so a test may modify it."""

    def _copy(name: str) -> Path:
        src = conformance / "notation/test/e2e/testdata/registry/oci_layout" / name
        dst = tmp_path / name
        shutil.copytree(src, dst)
        for p in [dst, *dst.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        return dst

    return _copy


@dataclasses.dataclass
class KeyPair:
    """A generated private key with its certificate chain (leaf first) and PEM files."""

    key: object
    chain: list[object]
    key_path: Path
    cert_path: Path


@pytest.fixture
def make_keypair(tmp_path: Path) -> Callable[..., KeyPair]:
    """Factory: generate a key (``rsa2048``…``rsa4096``, ``ec256``/``ec384``/``ec521``) and a cert chain.

    ``chain_len=1`` gives a self-signed leaf like ``cert generate-test``; 2 or 3 adds a root
    (and an intermediate) CA. Extra keyword arguments tweak the leaf (``key_usage``, ``eku``,
    ``ca``, ``not_before``, ``not_after``, ``subject``).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def gen(kind: str) -> object:
        if kind.startswith("rsa"):
            return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
        curve = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1(), "ec521": ec.SECP521R1()}[kind]
        return ec.generate_private_key(curve)

    def name(cn: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Notary"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])

    counter = iter(range(1_000_000))
    CA_KEY_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)

    def _make(
        kind: str = "rsa2048",
        *,
        chain_len: int = 1,
        cn: str | None = None,
        key_usage: str = "digitalSignature",
        eku: Sequence[object] | None = (ExtendedKeyUsageOID.CODE_SIGNING,),
        ca: bool | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> KeyPair:
        now = dt.datetime.now(dt.timezone.utc)
        nb = not_before or now - dt.timedelta(minutes=5)
        na = not_after or now + dt.timedelta(days=1)
        idx = next(counter)
        cn = cn or f"test-{kind}-{idx}"
        leaf_key = gen(kind)
        issuers: list[tuple[object, x509.Certificate]] = []
        if chain_len >= 2:
            root_key = gen("rsa2048" if kind.startswith("rsa") else "ec256")
            root_name = name(f"{cn} root")
            root = (
                x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
                .public_key(root_key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[attr-defined]
                .not_valid_before(nb).not_valid_after(na + dt.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(CA_KEY_USAGE, critical=True)
                .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
            )
            issuers.append((root_key, root))
            if chain_len >= 3:
                int_key = gen("rsa2048" if kind.startswith("rsa") else "ec256")
                inter = (
                    x509.CertificateBuilder().subject_name(name(f"{cn} intermediate")).issuer_name(root_name)
                    .public_key(int_key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[attr-defined]
                    .not_valid_before(nb).not_valid_after(na + dt.timedelta(hours=12))
                    .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                    .add_extension(CA_KEY_USAGE, critical=True)
                    .sign(root_key, hashes.SHA256())  # type: ignore[arg-type]
                )
                issuers.append((int_key, inter))
        ku_flags = {f: False for f in ("digital_signature", "content_commitment", "key_encipherment",
                                       "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                                       "encipher_only", "decipher_only")}
        for part in filter(None, key_usage.split(",")):
            ku_flags[{"digitalSignature": "digital_signature", "keyCertSign": "key_cert_sign",
                      "keyEncipherment": "key_encipherment", "contentCommitment": "content_commitment",
                      "cRLSign": "crl_sign"}[part]] = True
        subject = name(cn)
        signer_key, issuer_name = (issuers[-1][0], issuers[-1][1].subject) if issuers else (leaf_key, subject)
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[attr-defined]
            .not_valid_before(nb).not_valid_after(na)
            .add_extension(x509.KeyUsage(**ku_flags), critical=True)
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)  # type: ignore[arg-type]
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        leaf = builder.sign(signer_key, hashes.SHA256())  # type: ignore[arg-type]
        chain = [leaf, *[c for _, c in reversed(issuers)]]
        key_path = tmp_path / f"{cn}.key"
        cert_path = tmp_path / f"{cn}.crt"
        key_path.write_bytes(leaf_key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o600)
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        return KeyPair(leaf_key, list(chain), key_path, cert_path)

    return _make


@pytest.fixture
def skopeo() -> Iterator[str]:
    """Path of the skopeo binary, or skip (CI installs it)."""
    path = shutil.which("skopeo")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("skopeo is required in CI")
        pytest.skip("skopeo not installed")
    yield path


# --- registries (docker-registry 2.8.2 on loopback; see ocisign.testing.registry) -------------
REGISTRY_USER = ("alice", "wonderland-Pa55")


@pytest.fixture
def registry_user() -> tuple[str, str]:
    """The (user, password) the htpasswd and token registries accept."""
    return REGISTRY_USER


def _need_registry() -> None:
    from ocisign.testing.registry import registry_available

    if not registry_available():
        if os.environ.get("CI"):
            pytest.fail("docker-registry is required in CI")
        pytest.skip("docker-registry not installed")


@pytest.fixture(scope="session")
def registry_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A plain-HTTP docker-registry without auth (deletes enabled), shared by the session."""
    from ocisign.testing.registry import RegistryProcess

    _need_registry()
    reg = RegistryProcess(tmp_path_factory.mktemp("reg-plain"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An HTTPS docker-registry with a generated CA (``reg.tls.ca_cert``)."""
    from ocisign.testing.registry import RegistryProcess, make_tls

    _need_registry()
    d = tmp_path_factory.mktemp("reg-tls")
    reg = RegistryProcess(d / "reg", tls=make_tls(d / "pki"))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A plain-HTTP docker-registry with htpasswd Basic auth for REGISTRY_USER."""
    from ocisign.testing.registry import RegistryProcess, write_htpasswd

    _need_registry()
    d = tmp_path_factory.mktemp("reg-basic")
    reg = RegistryProcess(d / "reg", htpasswd=write_htpasswd(d / "htpasswd", dict([REGISTRY_USER])))
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, object]]:
    """(registry, token server): docker-registry with Bearer token auth for REGISTRY_USER."""
    from ocisign.testing.registry import RegistryProcess, TokenServer

    _need_registry()
    d = tmp_path_factory.mktemp("reg-token")
    tokens = TokenServer(d / "tok", users=dict([REGISTRY_USER]))
    reg = RegistryProcess(d / "reg", token=tokens)
    yield reg, tokens
    reg.stop()
    tokens.close()


@pytest.fixture
def repo_name(request: pytest.FixtureRequest) -> str:
    """A repository name unique to this test (registries are shared by the session)."""
    import re
    import secrets

    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] or "t"
    return f"test/{base}-{secrets.token_hex(3)}"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record registry retry waits instead of sleeping."""
    from ocisign.registry import transport as registry_transport

    waits: list[float] = []
    monkeypatch.setattr(registry_transport, "_sleep", waits.append)
    return waits


@pytest.fixture
def proxy(registry_plain: object) -> Iterator[object]:
    """A fault proxy (ocisign.testing.fault_proxy.FaultProxy) in front of the plain registry."""
    from ocisign.testing.fault_proxy import FaultProxy

    with FaultProxy(registry_plain.url) as p:  # type: ignore[attr-defined]
        yield p


@pytest.fixture
def signed_layout(make_layout: Callable[..., Path], pm: OcisignPluginManager) -> tuple[Path, object, object]:
    """A layout with a 2 MB layer and a signature-like referrer: (path, image, signature)."""
    from ocisign.testing.registry import add_signature_like

    layout = make_layout(layer_sizes=(2_000_000, 1000))
    target = pm.open_layout(layout)
    try:
        subject = target.resolve("v1")
        sig = add_signature_like(target, subject)
    finally:
        target.close()
    return layout, subject, sig
