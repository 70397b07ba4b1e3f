"""``plugin install/uninstall/list`` for notation plugins, and the protocol helpers they rest on."""

from __future__ import annotations

import io
import itertools
import json
import os
import stat
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.errors import PluginError
from ocisign.extplugin import protocol as p

META_SCRIPT = """#!{python}
import json, sys
sys.stdin.read()
if sys.argv[1] == "get-plugin-metadata":
    print(json.dumps({{"name": "{name}", "description": "d-{name}", "version": "{version}",
                      "url": "https://example.com", "supportedContractVersions": ["1.0"],
                      "capabilities": ["SIGNATURE_GENERATOR.RAW"]}}))
else:
    sys.exit(1)
"""


def script(name: str = "foo", version: str = "1.0.0") -> bytes:
    return META_SCRIPT.format(python=sys.executable, name=name, version=version).encode()


def exe_file(tmp_path: Path, filename: str = "notation-foo", **kw: str) -> Path:
    path = tmp_path / filename
    path.write_bytes(script(**kw))
    path.chmod(0o755)
    return path


def tar_gz(tmp_path: Path, members: list[tuple[str, bytes | None, int, str | None]]) -> Path:
    """members: (name, data or None for a symlink, mode, link target)."""
    path = tmp_path / "plugin.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data, mode, link in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type = tarfile.SYMTYPE
                info.linkname = link or "x"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def zip_file(tmp_path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    path = tmp_path / "plugin.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def installed(config_dir: Path) -> list[str]:
    root = config_dir / "plugins"
    return sorted(os.listdir(root)) if root.exists() else []


def test_install_list_upgrade_uninstall(run_cli: Callable[..., Any], config_dir: Path, tmp_path: Path) -> None:
    res = run_cli("plugin", "install", "--file", str(exe_file(tmp_path)))
    assert res.rc == 0, res.err
    assert res.out.strip() == "Successfully installed plugin foo, version 1.0.0"
    exe = config_dir / "plugins" / "foo" / "notation-foo"
    assert exe.read_bytes() == script() and os.stat(exe).st_mode & stat.S_IXUSR
    assert installed(config_dir) == ["foo"]
    res = run_cli("plugin", "list")
    assert res.rc == 0 and "NOTATION PLUGIN" in res.out
    row = next(line for line in res.out.splitlines() if line.startswith("foo"))
    assert "d-foo" in row and "1.0.0" in row and "[SIGNATURE_GENERATOR.RAW]" in row
    entries = json.loads(run_cli("plugin", "list", "-o", "json").out)
    [foo] = [e for e in entries if e["kind"] == "notation"]
    assert foo["name"] == "foo" and foo["version"] == "1.0.0" and foo["error"] is None
    assert any(e["kind"] == "pluggy" and e["name"] == "notation_plugins" for e in entries)

    res = run_cli("plugin", "install", "--file", str(exe_file(tmp_path)))
    assert res.rc == 3 and "plugin foo with version 1.0.0 already exists" in res.err
    assert run_cli("plugin", "install", "--file", str(exe_file(tmp_path)), "--force").rc == 0
    res = run_cli("plugin", "install", "--file", str(exe_file(tmp_path / "..", version="1.1.0")))
    assert res.rc == 0 and "Successfully updated plugin foo from version 1.0.0 to 1.1.0" in res.out
    res = run_cli("plugin", "install", "--file", str(exe_file(tmp_path, version="0.9.0")))
    assert res.rc == 3 and "lower than the existing plugin version 1.1.0" in res.err
    assert installed(config_dir) == ["foo"]

    sys_stdin = sys.stdin
    try:
        sys.stdin = io.StringIO("n\n")
        res = run_cli("plugin", "uninstall", "foo")
    finally:
        sys.stdin = sys_stdin
    assert res.rc == 0 and "Operation cancelled." in res.out and installed(config_dir) == ["foo"]
    res = run_cli("plugin", "uninstall", "foo", "-y")
    assert res.rc == 0 and "Successfully uninstalled plugin foo" in res.out
    assert installed(config_dir) == []
    res = run_cli("plugin", "rm", "foo", "-y")
    assert res.rc == 3 and "unable to find plugin foo" in res.err


def test_broken_plugin_listed_with_one_line_error(run_cli: Callable[..., Any], config_dir: Path,
                                                  tmp_path: Path) -> None:
    d = config_dir / "plugins" / "bar"
    d.mkdir(parents=True)
    (d / "notation-bar").write_bytes(script(name="bar"))  # not executable
    good = config_dir / "plugins" / "baz"
    good.mkdir()
    (good / "notation-baz").write_bytes(script(name="other"))
    (good / "notation-baz").chmod(0o755)
    entries = {e["name"]: e for e in json.loads(run_cli("plugin", "list", "-o", "json").out)
               if e["kind"] == "notation"}
    assert "is not executable" in entries["bar"]["error"]
    assert "executable name must be 'notation-other'" in entries["baz"]["error"]
    text = run_cli("plugin", "list").out
    assert "\n" not in entries["bar"]["error"] and "is not executable" in text


@pytest.mark.parametrize(("kind", "message"), [
    ("badname", "must be in format notation-<plugin name>"),
    ("mismatch", "executable name must be"),
    ("tar-link", "is a link; links are refused"),
    ("tar-traversal", "escapes the archive"),
    ("tar-absolute", "absolute path"),
    ("tar-two", "more than one plugin executable"),
    ("tar-none", "no plugin executable file"),
    ("tar-device", "not a regular file"),
    ("zip-link", "is a link; links are refused"),
    ("zip-none", "no plugin executable file"),
    ("corrupt-gz", "not a valid .tar.gz archive"),
    ("reserved", "reserved for ocisign's built-in signer"),
])
def test_refused_sources_install_nothing(run_cli: Callable[..., Any], config_dir: Path, tmp_path: Path,
                                         kind: str, message: str) -> None:
    exe_data = script()
    sources: dict[str, Callable[[], Path]] = {
        "badname": lambda: exe_file(tmp_path, "foo"),
        "mismatch": lambda: exe_file(tmp_path, "notation-foo", name="bar"),
        "tar-link": lambda: tar_gz(tmp_path, [("notation-foo", None, 0o777, "/bin/sh")]),
        "tar-traversal": lambda: tar_gz(tmp_path, [("../notation-foo", exe_data, 0o755, None)]),
        "tar-absolute": lambda: tar_gz(tmp_path, [("/tmp/notation-foo", exe_data, 0o755, None)]),
        "tar-two": lambda: tar_gz(tmp_path, [("notation-foo", exe_data, 0o755, None),
                                             ("bin/notation-bar", exe_data, 0o755, None)]),
        "tar-none": lambda: tar_gz(tmp_path, [("notation-foo", exe_data, 0o644, None),
                                              ("LICENSE", b"MIT", 0o644, None)]),
        "tar-device": lambda: _tar_with_device(tmp_path),
        "zip-link": lambda: zip_file(tmp_path, [("notation-foo", b"/bin/sh", stat.S_IFLNK | 0o777)]),
        "zip-none": lambda: zip_file(tmp_path, [("README", b"x", stat.S_IFREG | 0o644)]),
        "corrupt-gz": lambda: _write(tmp_path / "x.tar.gz", b"\x1f\x8b\x08\x00garbage"),
        "reserved": lambda: exe_file(tmp_path, "notation-file", name="file"),
    }
    res = run_cli("plugin", "install", "--file", str(sources[kind]()))
    assert res.rc == 3, (res.out, res.err)
    assert message in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert installed(config_dir) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tar_with_device(tmp_path: Path) -> Path:
    path = tmp_path / "dev.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("notation-foo")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    return path


@pytest.mark.parametrize("archive", ["tar", "zip"])
def test_archives_install_their_one_executable(run_cli: Callable[..., Any], config_dir: Path, tmp_path: Path,
                                               archive: str) -> None:
    data = script()
    if archive == "tar":
        src = tar_gz(tmp_path, [("dist/", b"", 0o755, None), ("dist/notation-foo", data, 0o755, None),
                                ("dist/LICENSE", b"MIT", 0o644, None)])
    else:
        src = zip_file(tmp_path, [("notation-foo", data, stat.S_IFREG | 0o755), ("LICENSE", b"MIT",
                                                                                 stat.S_IFREG | 0o644)])
    res = run_cli("plugin", "install", "--file", str(src))
    assert res.rc == 0, res.err
    assert sorted(os.listdir(config_dir / "plugins" / "foo")) == ["notation-foo"]
    assert (config_dir / "plugins" / "foo" / "notation-foo").read_bytes() == data


def test_size_limit(run_cli: Callable[..., Any], config_dir: Path, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ocisign.extplugin import install

    monkeypatch.setattr(install, "MAX_PLUGIN_SIZE", 4096)
    big = tar_gz(tmp_path, [("notation-foo", script() + b"#" * 8000, 0o755, None)])
    res = run_cli("plugin", "install", "--file", str(big))
    assert res.rc == 3 and "256 MiB" in res.err
    assert installed(config_dir) == []


def test_url_install_needs_https_and_checksum(run_cli: Callable[..., Any], config_dir: Path) -> None:
    res = run_cli("plugin", "install", "--url", "https://example.invalid/notation-foo")
    assert res.rc == 2 and "--sha256sum is required with --url" in res.err
    res = run_cli("plugin", "install", "--url", "http://example.invalid/notation-foo", "--sha256sum", "a" * 64)
    assert res.rc == 2 and "must be an https:// URL" in res.err
    res = run_cli("plugin", "install", "--url", "https://example.invalid/notation-foo", "--sha256sum", "xyz")
    assert res.rc == 2 and "not a SHA-256 hex digest" in res.err
    assert installed(config_dir) == []


def test_url_install_over_https(run_cli: Callable[..., Any], config_dir: Path, tmp_path: Path,
                                make_keypair: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    kp = make_keypair("ec256", chain_len=1, cn="localhost", key_usage="digitalSignature",
                      eku=(ExtendedKeyUsageOID.SERVER_AUTH,), ca=False)
    # a server certificate needs a subjectAltName: re-issue the self-signed leaf with one
    cert = (x509.CertificateBuilder().subject_name(kp.chain[0].subject).issuer_name(kp.chain[0].subject)
            .public_key(kp.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(kp.chain[0].not_valid_before_utc).not_valid_after(kp.chain[0].not_valid_after_utc)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(kp.key, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding

    cert_path = tmp_path / "server.crt"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    body = script()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, kp.key_path)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
        url = f"https://localhost:{server.server_address[1]}/dl/notation-foo"
        res = run_cli("plugin", "install", "--url", url, "--sha256sum", "0" * 64)
        assert res.rc == 3 and "plugin checksum does not match" in res.err, res.err
        assert installed(config_dir) == []
        res = run_cli("plugin", "install", "--url", url, "--sha256sum", hashlib.sha256(body).hexdigest())
        assert res.rc == 0, res.err
        assert "Successfully installed plugin foo, version 1.0.0" in res.out
    finally:
        server.shutdown()
        server.server_close()


def test_semver_ordering() -> None:
    assert p.is_semver("1.0.0") and p.is_semver("v1.2.3-rc.1+build.5") and not p.is_semver("1.0")
    assert not p.is_semver("latest") and not p.is_semver("01.0.0")
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    for a, b in itertools.pairwise(ordered):
        assert p.compare_semver(a, b) == -1 and p.compare_semver(b, a) == 1, (a, b)
    assert p.compare_semver("1.0.0+a", "1.0.0+b") == 0


@pytest.mark.parametrize(("obj", "message"), [
    ({"name": "x", "description": "", "version": "1.0.0", "url": "u", "supportedContractVersions": ["1.0"],
      "capabilities": ["SIGNATURE_GENERATOR.RAW"]}, "'description' must be a non-empty string"),
    ({"name": "x", "description": "d", "version": "1.0.0", "url": "u", "supportedContractVersions": ["1.0"],
      "capabilities": []}, "'capabilities' must not be empty"),
    ({"name": "x", "description": "d", "version": "1.0.0", "url": "u", "supportedContractVersions": "1.0",
      "capabilities": ["a"]}, "must be an array of strings"),
])
def test_metadata_validation(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginError, match="get-plugin-metadata: invalid response") as info:
        p.parse_metadata(obj, plugin="x")
    assert message in str(info.value)


def test_response_validation() -> None:
    with pytest.raises(PluginError, match="keyId 'b' does not match"):
        p.parse_describe_key({"keyId": "b", "keySpec": "RSA-2048"}, plugin="x", key_id="a")
    with pytest.raises(PluginError, match="keySpec 'RSA-1024' is not supported"):
        p.parse_describe_key({"keyId": "a", "keySpec": "RSA-1024"}, plugin="x", key_id="a")
    with pytest.raises(PluginError, match=r"not (canonical )?standard base64"):
        p.parse_generate_signature({"keyId": "a", "signature": "abc", "signingAlgorithm": "ECDSA-SHA-256",
                                    "certificateChain": ["AA=="]}, plugin="x", key_id="a",
                                   signing_algorithm="ECDSA-SHA-256")
    with pytest.raises(PluginError, match="boolean 'success'"):
        p.parse_verify_signature({"verificationResults": {"c": {"success": "yes"}}}, plugin="x")
    with pytest.raises(PluginError, match="annotations"):
        p.parse_generate_envelope({"signatureEnvelope": "AA==", "signatureEnvelopeType": "t",
                                   "annotations": {"a": 1}}, plugin="x", envelope_type="t")


def test_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocisign.extplugin.runner import DEFAULT_TIMEOUT, plugin_timeout

    monkeypatch.delenv("OCISIGN_PLUGIN_TIMEOUT", raising=False)
    assert plugin_timeout() == DEFAULT_TIMEOUT
    monkeypatch.setenv("OCISIGN_PLUGIN_TIMEOUT", "2.5")
    assert plugin_timeout() == 2.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("OCISIGN_PLUGIN_TIMEOUT", bad)
        with pytest.raises(PluginError, match="OCISIGN_PLUGIN_TIMEOUT"):
            plugin_timeout()


def test_config_dir_flag_selects_the_plugin_directory(run_cli: Callable[..., Any], config_dir: Path,
                                                      tmp_path: Path) -> None:
    other = tmp_path / "notation-config"
    res = run_cli("plugin", "install", "--config-dir", str(other), "--file", str(exe_file(tmp_path)))
    assert res.rc == 0, res.err
    assert (other / "plugins" / "foo" / "notation-foo").is_file() and installed(config_dir) == []
    names = {e["name"] for e in json.loads(run_cli("--config-dir", str(other), "plugin", "list", "-o", "json").out)
             if e["kind"] == "notation"}
    assert names == {"foo"}
    assert not [e for e in json.loads(run_cli("plugin", "list", "-o", "json").out) if e["kind"] == "notation"]
    res = run_cli("key", "add", "k", "--plugin", "foo", "--id", "x", "--config-dir", str(other))
    assert res.rc == 0, res.err
    assert json.loads((other / "signingkeys.json").read_text())["keys"][0]["pluginName"] == "foo"


def test_the_self_contained_test_plugin_installs_and_keeps_no_log(run_cli: Callable[..., Any], config_dir: Path,
                                                                   tmp_path: Path) -> None:
    from ocisign.testing.notation_plugin import write_installable_plugin

    exe = write_installable_plugin(tmp_path, "kmsdemo", version="2.0.1", capabilities=("SIGNATURE_GENERATOR.RAW",))
    assert exe == tmp_path / "notation-kmsdemo" and os.access(exe, os.X_OK)
    res = run_cli("plugin", "install", "--file", str(exe))
    assert res.rc == 0, res.err
    assert res.out.strip() == "Successfully installed plugin kmsdemo, version 2.0.1"
    listed = run_cli("plugin", "list", "-o", "json")
    assert listed.rc == 0, listed.err
    assert "kmsdemo" in listed.out and "2.0.1" in listed.out
    # install copied the executable alone: metadata and keys are embedded, no request log is written
    assert sorted(os.listdir(config_dir / "plugins" / "kmsdemo")) == ["notation-kmsdemo"]
