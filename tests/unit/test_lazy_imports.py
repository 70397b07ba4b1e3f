"""Start-up stays light: the CLI and command parsers must not import cryptography, cbor2 or urllib3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocisign.cli.app import COMMANDS
from ocisign.testing.import_probe import imported_modules

HEAVY = ("cryptography", "cbor2", "urllib3")

PROBE = textwrap.dedent("""
    import json, sys
    import ocisign.cli.app
    from ocisign.cli.app import build_parser
    argv = sys.argv[1:]
    if argv:
        build_parser(argv[0]).parse_args(argv)
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})))
""")


def heavy_modules(argv: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "argv",
    [[], ["list", "--oci-layout", "x:v1"], ["inspect", "-o", "json", "x.io/r:v1"], ["sign", "--oci-layout", "x:v1"],
     ["cert", "ls"], ["key", "ls"]],
)
def test_importing_the_cli_and_building_parsers_stays_light(argv: list[str]) -> None:
    assert heavy_modules(argv) == []


def test_every_command_parser_stays_light() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.cli.app import COMMANDS, build_parser
        for command in COMMANDS:
            try:
                build_parser(command)
            except ModuleNotFoundError:
                pass  # a command module another engineer has not written yet
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
    assert {"list", "inspect", "sign", "cert", "key"} <= set(COMMANDS)


def test_version_does_not_import_heavy_modules() -> None:
    code = textwrap.dedent("""
        import json, sys
        from ocisign.cli.app import main
        try:
            main(["--version"])
        except SystemExit:
            pass
        rc = main(["version"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"cryptography", "cbor2", "urllib3"})
        print(json.dumps([rc, heavy]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    rc, heavy = json.loads(proc.stdout.splitlines()[-1])
    assert rc == 0 and heavy == []
    assert all(m not in heavy for m in HEAVY)


# --- what each command imports when it runs (issue 12: start-up) ------------------------------------
MODULES_PROBE = textwrap.dedent("""
    import json, sys
    from ocisign.cli.app import main
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:
        rc = exc.code
    print(json.dumps([rc, sorted(sys.modules)]))
""")


def run_and_list_all_modules(argv: list[str], tmp_path: Path) -> tuple[int, set[str]]:
    """Run ``ocisign ARGV`` in a fresh interpreter; (exit code, every module it imported)."""
    env = {"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path / "cfg"),
           "OCISIGN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", MODULES_PROBE, *argv], capture_output=True, text=True, timeout=60,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    rc, mods = json.loads(proc.stdout.splitlines()[-1])
    return rc, set(mods)


WATCHED = ("cryptography", "cbor2", "urllib3", "pluggy", "importlib.metadata", "argparse", "email")


def run_and_list_imports(argv: list[str], tmp_path: Path) -> tuple[int, set[str]]:
    """Run ``ocisign ARGV`` in a fresh interpreter; (exit code, :data:`WATCHED` packages it imported)."""
    rc, mods = run_and_list_all_modules(argv, tmp_path)
    return rc, {w for w in WATCHED for m in mods if m == w or m.startswith(w + ".")}


def test_version_imports_no_parser_no_pluggy_no_metadata_scan(tmp_path: Path) -> None:
    rc, mods = run_and_list_imports(["--version"], tmp_path)
    assert rc == 0 and mods == set()


def test_help_imports_no_pluggy(tmp_path: Path) -> None:
    rc, mods = run_and_list_imports(["--help"], tmp_path)
    assert rc == 0 and mods == {"argparse"}
    rc, mods = run_and_list_imports(["verify", "--help"], tmp_path)
    assert rc == 0 and mods == {"argparse"}


def test_list_on_a_layout_imports_no_crypto_no_http_and_reuses_the_entry_point_index(tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    argv = ["list", "--oci-layout", f"{tmp_path / 'img'}:v1"]
    rc, first = run_and_list_imports(argv, tmp_path)  # cold: no index, and no distribution declares the group
    assert rc == 0 and first == {"argparse"}  # the quick look answers: no scan, no pluggy
    assert not (tmp_path / "cache").exists()  # read-only: list writes nothing, not even the index
    run_and_list_imports(["sign", "--oci-layout", f"{tmp_path / 'img'}:v1"], tmp_path)  # a writer: stores it
    assert (tmp_path / "cache" / "entry-points-v1.json").is_file()
    rc, warm = run_and_list_imports(argv, tmp_path)
    assert rc == 0 and warm == {"argparse"}  # no scan, no pluggy, no cryptography, cbor2, urllib3


@pytest.mark.parametrize(("argv", "allowed"), [
    (["sign", "--help"], {"argparse"}),
    (["cert", "ls"], {"argparse", "pluggy"}),
    (["policy", "show"], {"argparse", "pluggy"}),
])
def test_commands_import_only_what_they_use(argv: list[str], allowed: set[str], tmp_path: Path) -> None:
    run_and_list_imports(["--version"], tmp_path)
    _, mods = run_and_list_imports(argv, tmp_path)
    assert mods <= allowed | {"importlib.metadata"}
    assert not mods & {"cryptography", "cbor2", "urllib3"}


def test_verify_and_inspect_of_a_jws_layout_import_no_http_no_cbor(tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    ref = f"{tmp_path / 'img'}:v1"
    rc, _ = run_and_list_imports(["cert", "generate-test", "--default", "pin"], tmp_path)
    assert rc == 0
    (tmp_path / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:pin"], "trustedIdentities": ["*"]}]}))
    assert run_and_list_imports(["policy", "import", str(tmp_path / "policy.json")], tmp_path)[0] == 0
    rc, signed = run_and_list_imports(["sign", "--oci-layout", ref], tmp_path)  # also writes the index
    assert rc == 0 and not signed & {"urllib3", "cbor2"}
    for argv in (["verify", "--oci-layout", "--scope", "local/pin", ref], ["inspect", "--oci-layout", ref]):
        rc, mods = run_and_list_imports(argv, tmp_path)
        assert rc == 0, argv
        assert mods <= {"argparse", "pluggy", "cryptography", "email"}, (argv, mods)


def test_list_sign_and_verify_on_a_layout_import_only_the_built_ins_and_records_they_use(tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    ref = f"{tmp_path / 'img'}:v1"
    assert run_and_list_all_modules(["cert", "generate-test", "--default", "pin"], tmp_path)[0] == 0
    (tmp_path / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:pin"], "trustedIdentities": ["*"]}]}))
    assert run_and_list_all_modules(["policy", "import", str(tmp_path / "policy.json")], tmp_path)[0] == 0

    rc, signed = run_and_list_all_modules(["sign", "--oci-layout", ref], tmp_path)
    assert rc == 0
    # a layout: no registry stack (ssl), no RFC 3161 client, no notation plugin runner, no verifier
    assert not {m for m in signed if m.startswith(("ocisign.registry", "ocisign.verify", "ocisign.extplugin"))}
    assert not signed & {"ssl", "ocisign.sign.timestamping", "ocisign.plugins.trust_policy", "subprocess"}

    rc, listed = run_and_list_all_modules(["list", "--oci-layout", ref], tmp_path)
    assert rc == 0
    # the directory handler; the tar handler's stand-in answers "not a tar" for a directory itself
    assert {m for m in listed if m.startswith("ocisign.plugins.")} == {"ocisign.plugins.oci_dir"}
    assert not {m for m in listed if m.startswith(("ocisign.envelope", "ocisign.x509", "ocisign.config.trustpolicy"))}
    # argparse's help formatter width without shutil; tar reading, temp files and times are not needed
    assert not listed & {"shutil", "tempfile", "datetime", "ocisign.oci.tar_index"}

    rc, verified = run_and_list_all_modules(["verify", "--oci-layout", "--scope", "local/pin", ref], tmp_path)
    assert rc == 0
    assert not {m for m in verified if m.startswith(("ocisign.registry", "ocisign.sign"))}
    assert not verified & {"ocisign.plugins.file_key", "ocisign.plugins.registry", "ocisign.plugins.credentials",
                           "ocisign.plugins.notation_plugins", "ssl"}


def test_version_imports_no_typing() -> None:
    code = "import sys\nfrom ocisign.cli.app import main\nmain(['--version'])\nprint('typing' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"OCISIGN_PROJECT_CONFIG": "none", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"


# --- registry commands: one HTTP stack, the standard library's (issue 12 goal 4) -------------------------
@pytest.mark.registry
def test_cp_list_sign_and_verify_on_a_registry_never_import_urllib3(registry_plain: object, tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    ref = f"{registry_plain.host}/lazy/{tmp_path.name}:v1"  # type: ignore[attr-defined]
    cp = ["cp", "--from-oci-layout", f"{tmp_path / 'img'}:v1", ref]
    rc, pushed = run_and_list_all_modules(cp, tmp_path)
    assert rc == 0
    assert "http.client" in pushed  # it did talk HTTP, on the standard library
    assert not {m for m in pushed if m.split(".")[0] in {"urllib3", "cryptography", "cbor2"}}

    # a re-push of an up-to-date tag: one GET of the tag, a digest comparison, nothing else
    rc, again = run_and_list_all_modules(cp, tmp_path)
    assert rc == 0
    assert not {m for m in again if m.split(".")[0] in {"urllib3", "cryptography", "cbor2", "concurrent"}}
    assert not {m for m in again if m.startswith(("ocisign.envelope", "ocisign.x509", "ocisign.verify",
                                                   "ocisign.sign", "ocisign.extplugin"))}

    assert run_and_list_all_modules(["cert", "generate-test", "--default", "pin"], tmp_path)[0] == 0
    (tmp_path / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:pin"], "trustedIdentities": ["*"]}]}))
    assert run_and_list_all_modules(["policy", "import", str(tmp_path / "policy.json")], tmp_path)[0] == 0
    for argv in (["sign", ref], ["list", ref], ["verify", ref]):
        rc, mods = run_and_list_all_modules(argv, tmp_path)
        assert rc == 0, argv
        assert "http.client" in mods and not {m for m in mods if m.split(".")[0] == "urllib3"}, argv


#: what a re-push (``cp --from-oci-layout`` of a tag the registry already has) must not import: its
#: time is start-up, so nothing for branches it does not take (parser, threads, uploads' workers,
#: credentials when the registry asks for none, dataclasses, the entry-point scan, crypto)
REPUSH_FORBIDDEN = {"argparse", "gettext", "threading", "concurrent.futures", "dataclasses", "shutil",
                    "tempfile", "importlib.metadata", "cryptography", "urllib3", "ocisign.cli.compat_flags",
                    "ocisign.registry.credentials", "ocisign.plugins.credentials", "ocisign.config.signingkeys",
                    "ocisign.oci.referrers_tag", "ocisign.envelope", "ocisign.x509", "ocisign.sign", "ocisign.verify",
                    "ocisign.extplugin"}


@pytest.mark.registry
def test_a_re_push_imports_only_what_one_get_of_the_tag_needs(registry_plain: object, tmp_path: Path) -> None:
    """Pins the re-push's imports (every import statement it runs, see :data:`LEAN_PROBE`); the
    command line is parsed by ``cp.fast_parse``, without argparse."""
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    ref = f"{registry_plain.host}/repush/{tmp_path.name}:v1"  # type: ignore[attr-defined]
    cp = ["cp", "--from-oci-layout", "img:v1", ref]
    rc, fresh = lean_modules(cp, tmp_path)  # the fresh push uploads (threads) and stores the entry-point index
    assert rc == 0 and "concurrent.futures" in fresh
    for argv in (cp, ["cp", "-r", "--from-oci-layout", "img:v1", ref], ["copy", "--from-oci-layout", "-o", "json",
                                                                        "img:v1", ref]):
        rc, mods = lean_modules(argv, tmp_path)
        assert rc == 0, argv
        assert "http.client" in mods and "ocisign.registry.copy" in mods, argv  # it did ask the registry
        banned = {m for m in mods if m in REPUSH_FORBIDDEN or m.startswith(tuple(f"{b}." for b in REPUSH_FORBIDDEN))}
        assert not banned, (argv, sorted(banned))
        if "pluggy" not in mods:  # pluggy's hook markers need inspect (the built-ins stop using them: nopluggy)
            assert "inspect" not in mods, argv
    # the same re-push through the parser (an abbreviated flag) imports argparse: the pin is not vacuous
    rc, parsed = lean_modules(["cp", "--from-oci-lay", "img:v1", ref], tmp_path)
    assert rc == 0 and "argparse" in parsed


@pytest.mark.registry
def test_a_re_push_with_stored_credentials_runs_no_credential_helper_machinery(
        registry_basic: object, registry_user: tuple[str, str], tmp_path: Path) -> None:
    """Credentials from ``config.json``'s ``auths``: no ``subprocess``/``shutil`` (they are for
    credential helpers, imported only when one is configured)."""
    import base64

    from ocisign.testing.sample_image import write_image_layout

    host = registry_basic.host  # type: ignore[attr-defined]
    (tmp_path / "cfg").mkdir()
    auth = base64.b64encode(":".join(registry_user).encode()).decode()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    write_image_layout(tmp_path / "img")
    cp = ["cp", "--from-oci-layout", "img:v1", f"{host}/repush/{tmp_path.name}:v1"]
    assert lean_modules(cp, tmp_path)[0] == 0  # fresh push
    rc, mods = lean_modules(cp, tmp_path)
    assert rc == 0
    assert "ocisign.registry.credentials" in mods  # it did look the credentials up
    assert not mods & {"subprocess", "shutil", "argparse", "threading"}, sorted(mods & {"subprocess", "shutil"})
# --- issue 12: the lean core (no typing, dataclasses, inspect, pathlib or pluggy for list) -------
#: what ``list --oci-layout`` must not import (each costs milliseconds of start-up)
LIST_FORBIDDEN = {"typing", "dataclasses", "inspect", "pathlib", "pluggy", "cryptography", "urllib3", "threading",
                  "importlib.metadata", "email", "shutil", "tempfile", "datetime", "ocisign.oci.tar_index",
                  "hashlib"}  # manifests are checked with CPython's own SHA-2 (no OpenSSL start-up)


def lean_modules(argv: list[str], tmp_path: Path, *, project_search: bool = False) -> tuple[int, set[str]]:
    """Run ``ocisign ARGV`` in a fresh interpreter (working directory ``tmp_path``); (exit code, modules)."""
    env = {"PATH": "/usr/bin:/bin", "OCISIGN_CONFIG_DIR": str(tmp_path / "cfg"),
           "OCISIGN_CACHE_DIR": str(tmp_path / "cache")}
    if not project_search:
        env["OCISIGN_PROJECT_CONFIG"] = "none"
    rc, mods, _ = imported_modules(argv, env=env, cwd=str(tmp_path))
    return rc, mods


def test_version_imports_no_enum_typing_or_pluggy(tmp_path: Path) -> None:
    rc, mods = lean_modules(["--version"], tmp_path)
    assert rc == 0
    assert not mods & {"enum", "typing", "pluggy", "re", "argparse", "ocisign.errors"}, mods


@pytest.mark.parametrize("argv", [["--help"], ["list", "--help"], ["verify", "--help"], ["sign", "--help"]])
def test_help_imports_no_typing_or_pluggy(argv: list[str], tmp_path: Path) -> None:
    """argparse imports re, and re imports enum: --help cannot avoid enum, but needs no typing or pluggy."""
    rc, mods = lean_modules(argv, tmp_path)
    assert rc == 0
    assert not mods & {"typing", "pluggy", "dataclasses", "inspect", "cryptography", "urllib3"}, mods


@pytest.mark.parametrize("project_search", [False, True])
def test_list_on_a_layout_imports_no_typing_dataclasses_inspect_pathlib_or_pluggy(project_search: bool,
                                                                                    tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    assert lean_modules(["sign", "--oci-layout", "img:v1"], tmp_path)[0] != 0  # no key: fails, stores the index
    for ref in ("img:v1", f"{tmp_path / 'img'}:v1"):
        rc, mods = lean_modules(["list", "--oci-layout", ref], tmp_path, project_search=project_search)
        assert rc == 0
        assert not mods & LIST_FORBIDDEN, sorted(mods & LIST_FORBIDDEN)
        assert {m for m in mods if m.startswith("ocisign.plugins.")} <= {"ocisign.plugins.oci_dir",
                                                                         "ocisign.plugins.oci_archive"}


# --- issue 12 round 2: no pluggy for any command when only the built-ins are registered ----------------
def _lean_signed_layout(tmp_path: Path) -> str:
    """A layout signed in both formats with a test key, and a trust policy trusting it; its reference."""
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    assert lean_modules(["cert", "generate-test", "--default", "pin"], tmp_path)[0] == 0
    (tmp_path / "policy.json").write_text(json.dumps({"version": "1.0", "trustPolicies": [{
        "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:pin"], "trustedIdentities": ["*"]}]}))
    assert lean_modules(["policy", "import", "policy.json"], tmp_path)[0] == 0
    return "img:v1"


def test_sign_verify_and_inspect_on_a_layout_import_no_pluggy(tmp_path: Path) -> None:
    """The built-in plugins mark their hooks with ``ocisign.lazy_plugins.hookimpl``: importing them (the
    envelope formats, signer, trust store and policy) never imports pluggy (the probe records every
    import statement run, so a module that only asks for pluggy is caught too)."""
    ref = _lean_signed_layout(tmp_path)
    runs = [["sign", "--oci-layout", ref], ["sign", "--oci-layout", "--signature-format", "cose", ref],
            ["verify", "--oci-layout", "--scope", "local/pin", ref], ["inspect", "--oci-layout", ref],
            ["inspect", "--oci-layout", "-o", "json", ref]]
    for argv in runs:
        rc, mods = lean_modules(argv, tmp_path)
        assert rc == 0, argv
        assert "pluggy" not in mods and not {m for m in mods if m.startswith("pluggy.")}, argv
        assert "ocisign.pluggy_manager" not in mods, argv
        # the key is loaded and certificates encoded without cryptography's serialization package
        # (it imports the OpenSSH key code and the cipher modules)
        assert "cryptography.hazmat.primitives.serialization" not in mods, argv
        assert "cryptography.hazmat.primitives.ciphers" not in mods, argv
        if argv[0] != "sign":  # reading needs no protocol classes (typing.Protocol)
            assert "ocisign.protocols" not in mods, argv
    # they did load the built-ins (the test would pass vacuously otherwise)
    assert {"ocisign.plugins.jws", "ocisign.plugins.cose", "ocisign.plugins.trust_policy",
            "ocisign.plugins.truststore_files"} <= lean_modules(runs[2], tmp_path)[1]
    assert "ocisign.plugins.file_key" in lean_modules(runs[0], tmp_path)[1]


@pytest.mark.registry
def test_cp_to_a_registry_imports_no_pluggy(registry_plain: object, tmp_path: Path) -> None:
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "img")
    ref = f"{registry_plain.host}/nopluggy/{tmp_path.name}:v1"  # type: ignore[attr-defined]
    cp = ["cp", "--from-oci-layout", "img:v1", ref]
    for _ in range(2):  # a fresh push, then a re-push of an up-to-date tag
        rc, mods = lean_modules(cp, tmp_path)
        assert rc == 0
        assert "ocisign.plugins.registry" in mods and "http.client" in mods  # it did push over HTTP
        assert "pluggy" not in mods and "ocisign.pluggy_manager" not in mods
