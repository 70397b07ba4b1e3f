"""Config dir in notation's format: ``cert generate-test``/``cleanup-test``, trust store commands, ``key``."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys, load_signing_keys, parse_signing_keys
from ocisign.errors import ConfigError


class Terminal(io.StringIO):
    """Answers typed on a terminal (confirmation prompts only ask a terminal)."""

    def isatty(self) -> bool:
        return True


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


# --- generate-test ----------------------------------------------------------------------------------
def test_generate_test_output_files_and_certificate(run_cli, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    res = run_cli("cert", "generate-test", "--default", "wabbit-networks.io")
    assert res.rc == 0, res.err
    key_path = config_dir / "localkeys" / "wabbit-networks.io.key"
    cert_path = config_dir / "localkeys" / "wabbit-networks.io.crt"
    lines = res.out.splitlines()
    assert lines[0] == "generating RSA Key with 2048 bits"
    assert lines[1].startswith("generated certificate expiring on ") and lines[1].endswith("Z")
    assert lines[2:] == [
        f"wrote key: {key_path}",
        f"wrote certificate: {cert_path}",
        "Successfully added wabbit-networks.io.crt to named store wabbit-networks.io of type ca",
        "wabbit-networks.io: added to the key list",
        "wabbit-networks.io: mark as default signing key",
    ]
    assert _mode(key_path) == 0o600 and _mode(cert_path) == 0o644
    assert _mode(config_dir / "localkeys") == 0o700
    assert key_path.read_bytes().startswith(b"-----BEGIN " b"PRIVATE KEY-----\n")  # PKCS#8

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.rfc4514_string() == "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US"
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME,
                                             NameOID.LOCALITY_NAME, NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME]
    assert cert.issuer == cert.subject
    assert cert.version == x509.Version.v3
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    pub = cert.public_key()
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    assert 0 < cert.serial_number < 200
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(hours=24)
    assert before <= cert.not_valid_before_utc <= dt.datetime.now(dt.timezone.utc)
    assert lines[1] == "generated certificate expiring on " + cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    exts = {e.oid.dotted_string: e for e in cert.extensions}
    assert set(exts) == {"2.5.29.15", "2.5.29.37"}  # keyUsage, extKeyUsage only: no basicConstraints, SKI, AKI
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.key_encipherment or ku.value.content_commitment)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.CODE_SIGNING]

    store_copy = config_dir / "truststore" / "x509" / "ca" / "wabbit-networks.io" / "wabbit-networks.io.crt"
    assert store_copy.read_bytes() == cert_path.read_bytes()
    for d in (config_dir / "truststore", config_dir / "truststore/x509", config_dir / "truststore/x509/ca",
              store_copy.parent):
        assert _mode(d) == 0o700, d

    sk = config_dir / "signingkeys.json"
    assert _mode(sk) == 0o600
    assert sk.read_text() == textwrap.dedent(f"""\
        {{
            "default": "wabbit-networks.io",
            "keys": [
                {{
                    "name": "wabbit-networks.io",
                    "keyPath": "{key_path}",
                    "certPath": "{cert_path}"
                }}
            ]
        }}
        """)


def test_generated_certificate_passes_signing_chain_rules(run_cli, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from ocisign.plugins.file_key import load_file_signer

    from ocisign.envelope.chain import validate_signing_chain

    assert run_cli("cert", "generate-test", "-b", "3072", "t3072").rc == 0
    signer = load_file_signer(config_dir / "localkeys/t3072.key", config_dir / "localkeys/t3072.crt")
    assert signer.key_spec == "RSA-3072"
    validate_signing_chain(signer.certificate_chain(), at=dt.datetime.now(dt.timezone.utc))
    assert load_signing_keys(ConfigDir(config_dir)).default is None  # no --default


@pytest.mark.parametrize("args", [["-b", "1024", "x"], ["--bits", "8192", "x"], ["../evil"], ["a/b"], [".."], [""]])
def test_generate_test_rejects_bad_bits_and_names(run_cli, config_dir: Path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("cert", "generate-test", *args)
    assert res.rc == 2, res
    assert "Traceback" not in res.err
    assert not (config_dir / "localkeys").exists()
    assert not (config_dir / "signingkeys.json").exists()


def test_generate_test_never_overwrites(run_cli, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("cert", "generate-test", "k").rc == 0
    key = config_dir / "localkeys/k.key"
    original = key.read_bytes()
    res = run_cli("cert", "generate-test", "k")
    assert res.rc == 2 and "already exists" in res.err
    assert key.read_bytes() == original
    # a stray key file without a signingkeys.json entry is not overwritten either
    (config_dir / "localkeys/other.key").write_bytes(b"precious")
    res = run_cli("cert", "generate-test", "other")
    assert res.rc == 2 and "already exists" in res.err
    assert (config_dir / "localkeys/other.key").read_bytes() == b"precious"
    assert load_signing_keys(ConfigDir(config_dir)).names() == ["k"]


def test_cleanup_test_removes_everything_and_is_idempotent(run_cli, config_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("cert", "generate-test", "--default", "gone").rc == 0
    res = run_cli("cert", "cleanup-test", "-y", "gone")
    assert res.rc == 0, res.err
    assert 'Success: removed "gone" from signing key list' in res.out
    assert not (config_dir / "localkeys/gone.key").exists()
    assert not (config_dir / "localkeys/gone.crt").exists()
    assert not (config_dir / "truststore/x509/ca/gone").exists()
    keys = load_signing_keys(ConfigDir(config_dir))
    assert keys.names() == [] and keys.default is None
    assert run_cli("cert", "cleanup-test", "-y", "gone").rc == 2  # no such key any more: usage error, as in sign


def test_cleanup_test_refuses_keys_that_live_elsewhere(run_cli, config_dir: Path, make_keypair) -> None:  # type: ignore[no-untyped-def]
    kp = make_keypair("ec256")
    assert run_cli("key", "add", "mine", "--key-file", str(kp.key_path), "--cert-file", str(kp.cert_path)).rc == 0
    res = run_cli("cert", "cleanup-test", "-y", "mine")
    assert res.rc == 2 and "generate-test" in res.err
    assert kp.key_path.exists() and kp.cert_path.exists()
    assert load_signing_keys(ConfigDir(config_dir)).names() == ["mine"]


def test_cleanup_test_without_confirmation_does_nothing(run_cli, config_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("cert", "generate-test", "keep").rc == 0
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    assert run_cli("cert", "cleanup-test", "keep").rc == 0
    assert (config_dir / "localkeys/keep.key").exists()
    assert load_signing_keys(ConfigDir(config_dir)).names() == ["keep"]


# --- key -----------------------------------------------------------------------------------------
def test_key_add_list_update_delete(run_cli, config_dir: Path, make_keypair) -> None:  # type: ignore[no-untyped-def]
    rsa_kp = make_keypair("rsa2048", chain_len=2)
    ec_kp = make_keypair("ec384")
    res = run_cli("key", "add", "r", "--key-file", str(rsa_kp.key_path), "--cert-file", str(rsa_kp.cert_path))
    assert res.rc == 0 and res.out == "r\n"
    res = run_cli("key", "add", "--default", "e", "--key-file", str(ec_kp.key_path),
                  "--cert-file", str(ec_kp.cert_path))
    assert res.rc == 0 and res.out == "e: marked as default\n"
    res = run_cli("key", "ls")
    lines = res.out.splitlines()
    assert lines[0].split() == ["NAME", "KEY", "PATH", "CERTIFICATE", "PATH", "ID", "PLUGIN", "NAME"]
    assert lines[1].split() == ["r", str(rsa_kp.key_path), str(rsa_kp.cert_path)]
    assert lines[2].split() == ["*", "e", str(ec_kp.key_path), str(ec_kp.cert_path)]
    # columns line up like Go's tabwriter (padding 3)
    assert lines[0].index("KEY PATH") == lines[1].index(str(rsa_kp.key_path)) == len("NAME") + 3

    assert run_cli("key", "update", "r", "--default").out == "r: marked as default\n"
    assert load_signing_keys(ConfigDir(config_dir)).default == "r"
    res = run_cli("key", "delete", "r", "e")
    assert res.rc == 0 and res.out == (
        "Removed the following keys from Notation signing key list. The source keys still exist.\nr (default)\ne\n"
    )
    doc = json.loads((config_dir / "signingkeys.json").read_text())
    assert doc == {"keys": []}


def test_key_add_refuses_mismatched_or_bad_pairs(run_cli, config_dir: Path, make_keypair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = make_keypair("rsa2048"), make_keypair("rsa2048")
    res = run_cli("key", "add", "x", "--key-file", str(a.key_path), "--cert-file", str(b.cert_path))
    assert res.rc != 0 and "does not match" in res.err
    res = run_cli("key", "add", "x", "--key-file", str(tmp_path / "missing.key"), "--cert-file", str(a.cert_path))
    assert res.rc != 0 and "missing.key" in res.err
    res = run_cli("key", "add", "x", "--key-file", str(a.cert_path), "--cert-file", str(a.cert_path))
    assert res.rc != 0
    res = run_cli("key", "add", "x", "--key-file", str(a.key_path))
    assert res.rc == 2
    assert not (config_dir / "signingkeys.json").exists()
    assert "Traceback" not in res.err


def test_key_add_duplicate_name_and_unknown_names(run_cli, config_dir: Path, make_keypair) -> None:  # type: ignore[no-untyped-def]
    kp = make_keypair("ec256")
    args = ("--key-file", str(kp.key_path), "--cert-file", str(kp.cert_path))
    assert run_cli("key", "add", "dup", *args).rc == 0
    res = run_cli("key", "add", "dup", *args)
    assert res.rc == 2 and "dup: already exists" in res.err
    assert run_cli("key", "update", "--default", "nope").rc == 2
    assert run_cli("key", "delete", "dup", "nope").rc == 2
    assert load_signing_keys(ConfigDir(config_dir)).names() == ["dup"]  # nothing removed: one name is unknown


def test_key_add_plugin_key(run_cli, config_dir: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    res = run_cli("key", "add", "kms", "--plugin", "vault", "--id", "key-1")
    assert res.rc == 3 and "vault" in res.err
    (tmp_path / "fake_vault_plugin.py").write_text(textwrap.dedent("""
        import ocisign
        from ocisign.types import SignerFactory

        @ocisign.hookimpl
        def ocisign_signers():
            yield SignerFactory(name="vault", create=lambda record: None)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    res = run_cli("-p", "fake_vault_plugin", "key", "add", "kms", "--plugin", "vault", "--id", "key-1",
                  "--plugin-config", "region=eu", "--plugin-config", "tier=hsm", "--default")
    assert res.rc == 0, res.err
    doc = json.loads((config_dir / "signingkeys.json").read_text())
    assert doc == {"default": "kms", "keys": [{"name": "kms", "id": "key-1", "pluginName": "vault",
                                               "pluginConfig": {"region": "eu", "tier": "hsm"}}]}
    assert run_cli("key", "add", "bad", "--plugin", "vault").rc == 2  # --id is required
    line = run_cli("key", "ls").out.splitlines()[1].split()
    assert line == ["*", "kms", "key-1", "vault"]


def test_signingkeys_validation_and_notation_format(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="multiple keys with name 'a'"):
        parse_signing_keys(b'{"keys":[{"name":"a","id":"1","pluginName":"p"},{"name":"a","id":"2","pluginName":"p"}]}',
                           where="signingkeys.json")
    with pytest.raises(ConfigError, match="default key 'b' not found"):
        parse_signing_keys(b'{"default":"b","keys":[{"name":"a","keyPath":"/k","certPath":"/c"}]}', where="s")
    with pytest.raises(ConfigError, match="key name cannot be empty"):
        parse_signing_keys(b'{"keys":[{"name":"","keyPath":"/k","certPath":"/c"}]}', where="s")
    with pytest.raises(ConfigError):
        parse_signing_keys(b'{"keys":[{"name":"a","keyPath":"/k"}]}', where="s")
    with pytest.raises(ConfigError):
        parse_signing_keys(b'{"keys":{}}', where="s")
    with pytest.raises(ConfigError):
        parse_signing_keys(b'{"keys":[], "keys":[]}', where="s")
    # a file written by notation (extra unknown members are ignored, as Go does)
    notation = (b'{\n    "default": "e2e",\n    "keys": [\n        {\n            "name": "e2e",\n'
                b'            "keyPath": "/n/e2e.key",\n            "certPath": "/n/e2e.crt"\n        }\n    ],'
                b'\n    "future": 1\n}\n')
    keys = parse_signing_keys(notation, where="s")
    assert keys.resolve(None) == KeyRecord(name="e2e", key_path="/n/e2e.key", cert_path="/n/e2e.crt")
    (config_dir / "signingkeys.json").symlink_to(config_dir / "elsewhere.json")
    with pytest.raises(ConfigError, match="symbolic link"):
        load_signing_keys(ConfigDir(config_dir))


def test_edit_signing_keys_writes_nothing_on_error(config_dir: Path) -> None:
    cfg = ConfigDir(config_dir)
    with edit_signing_keys(cfg) as keys:
        keys.add(KeyRecord(name="a", id="1", plugin_name="p"))
    before = (config_dir / "signingkeys.json").read_bytes()
    with pytest.raises(RuntimeError), edit_signing_keys(cfg) as keys:
        keys.add(KeyRecord(name="b", id="1", plugin_name="p"))
        raise RuntimeError("boom")
    assert (config_dir / "signingkeys.json").read_bytes() == before
    assert not [p for p in config_dir.iterdir() if p.name.endswith(".tmp")]


def test_parallel_key_adds_are_all_kept(config_dir: Path) -> None:
    """Real processes adding keys at once: the config-dir lock serialises the read-modify-write."""
    n = 8
    code = textwrap.dedent("""
        import sys
        from ocisign.config.configdir import ConfigDir
        from ocisign.config.signingkeys import KeyRecord, edit_signing_keys
        name = sys.argv[1]
        with edit_signing_keys(ConfigDir.from_env()) as keys:
            keys.add(KeyRecord(name=name, id=name, plugin_name="p"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, f"k{i}"], env=os.environ.copy()) for i in range(n)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert sorted(load_signing_keys(ConfigDir(config_dir)).names()) == sorted(f"k{i}" for i in range(n))


def test_read_only_commands_create_nothing(run_cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "no-config"
    monkeypatch.setenv("OCISIGN_CONFIG_DIR", str(missing))
    assert run_cli("key", "ls").rc == 0
    assert run_cli("cert", "ls").rc == 0
    assert run_cli("cert", "ls", "-t", "ca", "-s", "x").rc == 0
    assert not missing.exists()


# --- trust store ---------------------------------------------------------------------------------
def test_cert_add_list_show_delete(run_cli, config_dir: Path, make_keypair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    chain = make_keypair("rsa2048", chain_len=2, cn="acme").chain
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(chain[1].public_bytes(Encoding.PEM))  # type: ignore[attr-defined]
    root_der = tmp_path / "root.der"
    root_der.write_bytes(chain[1].public_bytes(Encoding.DER))  # type: ignore[attr-defined]
    res = run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root_pem), str(root_der))
    assert res.rc == 0, res.err
    assert res.out.splitlines() == ["Successfully added following certificates to named store acme of type ca:",
                                    str(root_pem), str(root_der)]
    assert run_cli("cert", "add", "--type", "signingAuthority", "--store", "sa", str(root_pem)).rc == 0
    res = run_cli("cert", "ls")
    assert res.out == (
        "STORE TYPE         STORE NAME   CERTIFICATE   \n"
        "ca                 acme         root.der      \n"
        "ca                 acme         root.pem      \n"
        "signingAuthority   sa           root.pem      \n"
    )
    assert run_cli("cert", "ls", "-t", "signingAuthority").out.count("root.pem") == 1
    assert run_cli("cert", "ls", "-s", "acme").out.count("acme") == 2
    assert run_cli("cert", "ls", "-t", "tsa").out == ""

    res = run_cli("cert", "show", "-t", "ca", "-s", "acme", "root.der")
    assert res.rc == 0
    lines = res.out.splitlines()
    assert lines[0] == "Certificate details" and lines[1] == "-" * 80
    assert lines[2] == "Issuer: CN=acme root,O=Notary,L=Seattle,ST=WA,C=US"
    assert lines[3] == "Subject: CN=acme root,O=Notary,L=Seattle,ST=WA,C=US"
    assert lines[4].startswith("Valid from: ") and lines[4].endswith(" +0000 UTC")
    assert lines[6] == "IsCA: true"
    from ocisign.x509.chain import cert_fingerprint_sha256

    assert lines[7] == f"SHA256 Thumbprint: {cert_fingerprint_sha256(chain[1])}"  # type: ignore[arg-type]

    res = run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root_pem))
    assert res.rc == 2 and "already exists" in res.err

    res = run_cli("cert", "delete", "-t", "ca", "-s", "acme", "-y", "root.der")
    assert res.out == "Successfully deleted root.der\n"
    assert not (config_dir / "truststore/x509/ca/acme/root.der").exists()
    res = run_cli("cert", "delete", "-t", "ca", "-s", "acme", "-a", "-y")
    assert res.rc == 0 and not (config_dir / "truststore/x509/ca/acme").exists()
    assert run_cli("cert", "delete", "-t", "ca", "-s", "acme", "-y", "root.pem").rc == 1


def test_cert_delete_asks_first(run_cli, config_dir: Path, make_keypair, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kp = make_keypair("ec256")  # self-signed leaf: allowed in a ca store
    assert run_cli("cert", "add", "-t", "ca", "-s", "s", str(kp.cert_path)).rc == 0
    stored = config_dir / "truststore/x509/ca/s" / kp.cert_path.name
    monkeypatch.setattr(sys, "stdin", Terminal("no\n"))
    res = run_cli("cert", "delete", "-t", "ca", "-s", "s", kp.cert_path.name)
    assert res.rc == 0 and "[y/N]" in res.out and stored.exists()
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    assert run_cli("cert", "delete", "-t", "ca", "-s", "s", kp.cert_path.name).rc == 0
    assert not stored.exists()


def test_cert_add_refuses_what_a_trust_store_cannot_hold(  # type: ignore[no-untyped-def]
    run_cli, config_dir: Path, make_keypair, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf_of_ca = make_keypair("rsa2048", chain_len=2)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(leaf_of_ca.chain[0].public_bytes(Encoding.PEM))  # type: ignore[attr-defined]
    res = run_cli("cert", "add", "-t", "ca", "-s", "x", str(leaf))
    assert res.rc == 2 and "not a CA certificate or a self-signed" in res.err
    self_signed_leaf = make_keypair("ec256")
    res = run_cli("cert", "add", "-t", "tsa", "-s", "x", str(self_signed_leaf.cert_path))
    assert res.rc == 2 and "root CA" in res.err
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert run_cli("cert", "add", "-t", "ca", "-s", "x", str(junk)).rc == 2
    for bad in (["-t", "cax", "-s", "x"], ["-t", "ca", "-s", "../x"], ["-t", "ca", "-s", ""]):
        res = run_cli("cert", "add", *bad, str(self_signed_leaf.cert_path))
        assert res.rc == 2, bad
    res = run_cli("cert", "show", "-t", "ca", "-s", "x", "../../signingkeys.json")
    assert res.rc == 2
    assert not (config_dir / "truststore").exists()
    assert "Traceback" not in res.err
