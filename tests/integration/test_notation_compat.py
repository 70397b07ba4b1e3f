"""Compatibility with notation (v1.3.2 and main) and oras command lines and output, as a user of
those tools (or a test written against them) would notice it: flag spellings, exact stdout/stderr
lines, JSON shapes and the files written."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocisign.oci.model import MT_INDEX, MT_MANIFEST
from ocisign.oci.referrers_tag import referrers_tag
from ocisign.testing.fault_proxy import Action, FaultProxy, ProxyRequest

Run = Callable[..., Any]
DIGEST_RE = r"sha256:[0-9a-f]{64}"


@pytest.fixture
def signed(run_cli: Run, make_layout: Callable[..., Path], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A signed hello-world layout (relative path ``./hello-world`` from the cwd) and its digest."""
    monkeypatch.chdir(tmp_path)
    make_layout("hello-world")
    assert run_cli("cert", "generate-test", "--default", "wabbit-networks.io").rc == 0
    res = run_cli("sign", "--oci-layout", "./hello-world:v1")
    assert res.rc == 0, res.err
    digest = re.fullmatch(rf"Successfully signed \./hello-world@({DIGEST_RE})\n", res.out)
    assert digest, res.out
    return tmp_path / "hello-world", digest.group(1)


def _policy(scope: str = "local/hello-world") -> dict[str, Any]:
    return {"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": [scope], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:wabbit-networks.io"], "trustedIdentities": ["*"]}]}


# --- generate-test, list, inspect, verify output ---------------------------------------------------
def test_generate_test_prints_notations_lines(run_cli: Run, config_dir: Path) -> None:
    res = run_cli("cert", "generate-test", "--default", "wabbit-networks.io")
    assert res.rc == 0, res.err
    key, crt = config_dir / "localkeys/wabbit-networks.io.key", config_dir / "localkeys/wabbit-networks.io.crt"
    lines = res.out.splitlines()
    assert lines[0] == "generating RSA Key with 2048 bits"
    assert re.fullmatch(r"generated certificate expiring on \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[1])
    assert lines[2:] == [
        f"wrote key: {key}", f"wrote certificate: {crt}",
        "Successfully added wabbit-networks.io.crt to named store wabbit-networks.io of type ca",
        "wabbit-networks.io: added to the key list", "wabbit-networks.io: mark as default signing key",
    ]
    store = config_dir / "truststore/x509/ca/wabbit-networks.io"
    assert (store / "wabbit-networks.io.crt").read_bytes() == crt.read_bytes()
    doc = json.loads((config_dir / "signingkeys.json").read_text())
    assert doc == {"default": "wabbit-networks.io",
                   "keys": [{"name": "wabbit-networks.io", "keyPath": str(key), "certPath": str(crt)}]}


def test_list_tree_and_no_signature_line(run_cli: Run, signed: tuple[Path, str],
                                         make_layout: Callable[..., Path]) -> None:
    _, digest = signed
    res = run_cli("list", "--oci-layout", f"./hello-world@{digest}")
    assert res.rc == 0 and res.err == ""
    assert re.fullmatch(
        rf"\./hello-world@{digest}\n└── application/vnd\.cncf\.notary\.signature\n    └── {DIGEST_RE}\n", res.out)
    make_layout("unsigned")
    res = run_cli("ls", "--oci-layout", "./unsigned:v1")
    assert res.rc == 0 and res.out == f"./unsigned@{digest} has no associated signature\n"
    assert res.err.startswith("Warning: Always list the artifact using digest(@sha256:...) rather than a tag(:v1)")


def test_inspect_json_has_notation_1_3_shape(run_cli: Run, signed: tuple[Path, str]) -> None:
    _, digest = signed
    res = run_cli("inspect", "--oci-layout", f"./hello-world@{digest}", "-o", "json")
    assert res.rc == 0, res.err
    out = json.loads(res.out)
    assert list(out) == ["mediaType", "Signatures"] and out["mediaType"] == MT_MANIFEST
    [sig] = out["Signatures"]
    assert list(sig) == ["mediaType", "digest", "signatureAlgorithm", "signedAttributes", "userDefinedAttributes",
                         "unsignedAttributes", "certificates", "signedArtifact"]
    assert sig["signatureAlgorithm"] == "RSASSA-PSS-SHA-256" and sig["userDefinedAttributes"] is None
    assert list(sig["certificates"][0]) == ["SHA256Fingerprint", "issuedTo", "issuedBy", "expiry"]
    assert sig["certificates"][0]["issuedTo"] == "CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US"
    assert res.out.startswith('{\n    "mediaType": ')  # json.MarshalIndent with 4 spaces


def test_verify_success_line_and_metadata_table(run_cli: Run, signed: tuple[Path, str], tmp_path: Path) -> None:
    _, digest = signed
    assert run_cli("sign", "--oci-layout", f"./hello-world@{digest}", "-m", "buildId=123", "-m", "a=b").rc == 0
    (tmp_path / "tp.json").write_text(json.dumps(_policy()))
    assert run_cli("policy", "import", "tp.json").rc == 0
    res = run_cli("verify", "--oci-layout", f"./hello-world@{digest}", "--scope", "local/hello-world",
                  "-m", "buildId=123")
    assert res.rc == 0, res.err
    assert res.out == (
        f"Successfully verified signature for ./hello-world@{digest}\n"
        "\nThe artifact was signed with the following user metadata.\n\n"
        "KEY       VALUE   \n"
        "a         b       \n"
        "buildId   123     \n"
    )


def test_verify_failure_lines_use_notations_wording(run_cli: Run, signed: tuple[Path, str], tmp_path: Path,
                                                   make_layout: Callable[..., Path]) -> None:
    _, digest = signed
    (tmp_path / "tp.json").write_text(json.dumps(_policy()))
    assert run_cli("policy", "import", "tp.json").rc == 0
    make_layout("unsigned")
    res = run_cli("verify", "--oci-layout", f"./unsigned@{digest}", "--scope", "local/hello-world")
    assert res.rc == 1 and res.out == ""
    assert res.err == (f'Error: signature verification failed: no signature is associated with "./unsigned@{digest}", '
                       "make sure the artifact was signed successfully\n")
    res = run_cli("verify", "--oci-layout", f"./hello-world@{digest}", "--scope", "local/elsewhere")
    assert res.rc == 1 and res.out == ""
    assert res.err.startswith("Error: signature verification failed: ")
    assert "has no applicable trust policy statement" in res.err
    res = run_cli("verify", "--oci-layout", f"./hello-world@{digest}", "--scope", "local/hello-world", "-m", "x=y")
    assert res.rc == 1
    assert res.err.splitlines()[-1] == (
        f"Error: signature verification failed for all the signatures associated with ./hello-world@{digest}")


# --- Go boolean flags and notation's referrers flags -----------------------------------------------
def test_force_referrers_tag_flag_spellings_and_exclusions(run_cli: Run, signed: tuple[Path, str]) -> None:
    _, digest = signed
    for spelling in ("--force-referrers-tag", "--force-referrers-tag=false", "--force-referrers-tag=True",
                     "--allow-referrers-api"):
        res = run_cli("sign", "--oci-layout", spelling, f"./hello-world@{digest}")
        assert res.rc == 2 and "cannot be used together" in res.err, spelling
    res = run_cli("sign", "--force-referrers-tag=maybe", "localhost:5000/x@" + digest)
    assert res.rc == 2 and "--force-referrers-tag" in res.err


def test_allow_referrers_api_is_accepted_with_notations_warning(run_cli: Run, signed: tuple[Path, str],
                                                               tmp_path: Path) -> None:
    _, digest = signed
    ref = f"./hello-world@{digest}"
    warning = "Warning: flag '--allow-referrers-api' is deprecated and will be removed in future versions.\n"
    plain = run_cli("list", "--oci-layout", ref)
    res = run_cli("list", "--oci-layout", "--allow-referrers-api", ref)
    assert res.rc == 0 and res.out == plain.out and res.err == warning
    res = run_cli("inspect", "--oci-layout", "--allow-referrers-api=false", ref)
    assert res.rc == 0 and res.err == warning
    (tmp_path / "tp.json").write_text(json.dumps(_policy()))
    assert run_cli("policy", "import", "tp.json").rc == 0
    res = run_cli("verify", "--oci-layout", "--allow-referrers-api", ref, "--scope", "local/hello-world")
    assert res.rc == 0 and res.err == warning and res.out.startswith("Successfully verified signature for")


@pytest.fixture
def subject_proxy(registry_plain: Any) -> Iterator[FaultProxy]:
    """A proxy that makes docker-registry look like it has the referrers API (``OCI-Subject`` on manifest PUTs)."""

    def rule(r: ProxyRequest) -> Action | None:
        if r.method == "PUT" and "/manifests/sha256:" in r.path:
            return Action(response_headers={"OCI-Subject": "sha256:" + "0" * 64})
        return None

    with FaultProxy(registry_plain.url, rule=rule) as p:
        yield p


def _tag_index(host: str, repo: str, digest: str) -> list[str] | None:
    from ocisign.errors import NotFoundError
    from ocisign.registry.client import RegistryClient
    from ocisign.types import RemoteOptions

    client = RegistryClient(host, RemoteOptions())
    try:
        _, data = client.get_manifest(repo, referrers_tag(digest), accept=MT_INDEX)
    except NotFoundError:
        return None
    finally:
        client.close()
    return [m["digest"] for m in json.loads(data)["manifests"]]


@pytest.mark.registry
def test_sign_force_referrers_tag_keeps_the_tag_index(run_cli: Run, signed: tuple[Path, str],
                                                      subject_proxy: FaultProxy, repo_name: str) -> None:
    _, digest = signed
    ref = f"{subject_proxy.host}/{repo_name}"
    assert run_cli("cp", "--from-oci-layout", f"./hello-world@{digest}", f"{ref}:v1").rc == 0
    # the registry "has" the referrers API: by default (notation 2) no tag index is written
    res = run_cli("sign", f"{ref}@{digest}", "--force-referrers-tag=false")
    assert res.rc == 0, res.err
    assert _tag_index(subject_proxy.host, repo_name, digest) is None
    # notation 1.3's default, --force-referrers-tag: the tag index is kept as well
    res = run_cli("sign", f"{ref}@{digest}", "--force-referrers-tag")
    assert res.rc == 0, res.err
    [sig] = _tag_index(subject_proxy.host, repo_name, digest) or []
    assert re.fullmatch(DIGEST_RE, sig)
    res = run_cli("sign", f"{ref}@{digest}", "--allow-referrers-api")
    assert res.rc == 0 and "use '--force-referrers-tag=false' instead." in res.err


# --- oras cp per-side flags ---------------------------------------------------------------------------
@pytest.mark.registry
def test_cp_accepts_oras_per_side_flags(run_cli: Run, signed: tuple[Path, str], registry_plain: Any,
                                        subject_proxy: FaultProxy, repo_name: str) -> None:
    _, digest = signed
    dst = f"{registry_plain.host}/{repo_name}"
    res = run_cli("cp", "-r", "--from-oci-layout", "./hello-world:v1", f"{dst}:v1,latest", "--to-plain-http")
    assert res.rc == 0, res.err
    assert res.out == f"Copied [oci-layout] ./hello-world:v1 => [registry] {dst}:v1\nTagged latest\nDigest: {digest}\n"
    res = run_cli("list", f"{dst}:latest")
    assert res.rc == 0 and res.out.startswith(f"{dst}@{digest}\n") and res.out.count("sha256:") == 2
    res = run_cli("cp", "-r", f"{dst}:v1", "--to-oci-layout", "./copy:v1", "--from-plain-http",
                  "--from-distribution-spec", "v1.1-referrers-tag")
    assert res.rc == 0, res.err
    assert "└── " in run_cli("list", "--oci-layout", "./copy:v1").out
    # through a registry that "has" the referrers API: only v1.1-referrers-tag writes the tag index
    via = f"{subject_proxy.host}/{repo_name}-api"
    assert run_cli("cp", "-r", "--from-oci-layout", "./hello-world:v1", f"{via}:v1").rc == 0
    assert _tag_index(subject_proxy.host, f"{repo_name}-api", digest) is None
    via = f"{subject_proxy.host}/{repo_name}-tag"
    res = run_cli("cp", "-r", "--from-oci-layout", "./hello-world:v1", f"{via}:v1",
                  "--to-distribution-spec", "v1.1-referrers-tag")
    assert res.rc == 0, res.err
    assert len(_tag_index(subject_proxy.host, f"{repo_name}-tag", digest) or []) == 1


def test_cp_to_several_tags_like_oras(run_cli: Run, signed: tuple[Path, str], tmp_path: Path) -> None:
    _, digest = signed
    res = run_cli("cp", "-r", "--from-oci-layout", "--to-oci-layout", "./hello-world:v1", "./copy:a,b,c")
    assert res.rc == 0, res.err
    assert res.out == (f"Copied [oci-layout] ./hello-world:v1 => [oci-layout] ./copy:a\n"
                       f"Tagged b\nTagged c\nDigest: {digest}\n")
    index = json.loads((tmp_path / "copy/index.json").read_text())
    tags = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
            for m in index["manifests"] if "org.opencontainers.image.ref.name" in m.get("annotations", {})}
    assert tags == {"a": digest, "b": digest, "c": digest}
    assert run_cli("list", "--oci-layout", f"./copy@{digest}").out.count("└── sha256:") == 1
    res = run_cli("cp", "--from-oci-layout", "--to-oci-layout", "./hello-world:v1", "./copy:a,b/c")
    assert res.rc == 2 and "invalid tag 'b/c'" in res.err


def test_cp_per_side_flag_errors(run_cli: Run, signed: tuple[Path, str]) -> None:
    res = run_cli("cp", "--from-oci-layout", "./hello-world:v1", "localhost:5999/x:v1", "--to-distribution-spec", "v2")
    assert res.rc == 2 and "unknown distribution specification flag: v2" in res.err
    res = run_cli("cp", "--from-oci-layout", "./hello-world:v1", "localhost:5999/x:v1",
                  "--to-plain-http", "--to-insecure")
    assert res.rc == 2 and "--to-plain-http cannot be combined" in res.err


# --- policy, key, cert, logout ------------------------------------------------------------------------
def test_policy_import_and_show_like_notation(run_cli: Run, config_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "tp.json"
    raw = json.dumps(_policy()).encode()  # no trailing newline
    src.write_bytes(raw)
    res = run_cli("policy", "import", str(src))
    assert res.rc == 0 and res.out == "Trust policy configuration imported successfully.\n"
    show = run_cli("policy", "show")
    assert show.rc == 0 and show.out == raw.decode()  # the file's bytes, nothing added
    res = run_cli("policy", "import", "--force", str(src))
    assert res.rc == 0 and res.out == "Trust policy configuration imported successfully.\n"
    assert "Warning: existing trust policy configuration file will be overwritten\n" in res.err
    # an invalid policy in place is replaced without --force (notation does not ask about it)
    (config_dir / "trustpolicy.json").write_text('{"version": "1.0", "trustPolicies": []}')
    res = run_cli("policy", "import", str(src))
    assert res.rc == 0, res.err
    assert (config_dir / "trustpolicy.json").read_bytes() == raw
    # a valid one is not replaced without --force when there is no terminal to ask on
    res = run_cli("policy", "import", str(src))
    assert res.rc == 2 and "--force" in res.err


def test_key_delete_prints_notations_lines(run_cli: Run, config_dir: Path) -> None:
    for name in ("a", "b", "c"):
        assert run_cli("cert", "generate-test", name).rc == 0
    assert run_cli("key", "update", "--default", "b").rc == 0
    res = run_cli("key", "delete", "a")
    assert res.rc == 0 and res.out == "Removed a from Notation signing key list. The source key still exists.\n"
    res = run_cli("key", "delete", "b")
    assert res.out == "Removed default key b from Notation signing key list. The source key still exists.\n"
    assert (config_dir / "localkeys/b.key").exists()
    assert run_cli("cert", "generate-test", "--default", "d").rc == 0
    res = run_cli("key", "delete", "c", "d")
    assert res.out == ("Removed the following keys from Notation signing key list. The source keys still exist.\n"
                       "c\nd (default)\n")
    res = run_cli("key", "ls")
    assert res.out == "NAME   KEY PATH   CERTIFICATE PATH   ID   PLUGIN NAME   \n"


def test_cert_add_prints_paths_as_given(run_cli: Run, make_keypair: Callable[..., Any], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair("ec256", chain_len=2)
    monkeypatch.chdir(tmp_path)
    Path("root.crt").write_bytes(kp.chain[1].public_bytes(Encoding.PEM))
    res = run_cli("cert", "add", "-t", "ca", "-s", "acme", "root.crt")
    assert res.rc == 0, res.err
    assert res.out == "Successfully added following certificates to named store acme of type ca:\nroot.crt\n"
    res = run_cli("cert", "ls")
    assert res.out == ("STORE TYPE   STORE NAME   CERTIFICATE   \n"
                       "ca           acme         root.crt      \n")


def test_logout_when_not_logged_in(run_cli: Run) -> None:
    res = run_cli("logout", "registry.example:5000")
    assert res.rc == 0 and res.out == "Logout Succeeded\n" and "not logged in" in res.err


def test_nothing_else_is_written_by_read_only_commands(run_cli: Run, signed: tuple[Path, str],
                                                       config_dir: Path) -> None:
    layout, digest = signed
    before = sorted(os.listdir(config_dir)), (layout / "index.json").read_bytes()
    for args in (("list", "--oci-layout", "--allow-referrers-api", f"./hello-world@{digest}"),
                 ("inspect", "--oci-layout", f"./hello-world@{digest}")):
        assert run_cli(*args).rc == 0
    assert (sorted(os.listdir(config_dir)), (layout / "index.json").read_bytes()) == before


@pytest.mark.parametrize("command", ["sign", "list", "inspect", "verify"])
def test_registry_reference_needs_a_tag_or_digest(run_cli: Run, command: str, tmp_path: Path) -> None:
    # notation never assumes "latest"; nothing is contacted (no registry listens on this port)
    assert run_cli("cert", "generate-test", "--default", "wabbit-networks.io").rc == 0
    (tmp_path / "tp.json").write_text(json.dumps(_policy("*")))
    assert run_cli("policy", "import", str(tmp_path / "tp.json")).rc == 0
    res = run_cli(command, "localhost:1/hello-world")
    assert res.rc == 2 and "invalid reference: no tag or digest" in res.err
    res = run_cli("cp", "localhost:1/hello-world", "localhost:1/copy:v1")
    assert res.rc == 2 and "no tag or digest" in res.err
