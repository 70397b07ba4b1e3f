"""The rough edges a new user hits (issue 11, items 6–12): plugin failures, cp without -r, -o json for
the config listings, pipes, completion, examples, "did you mean", one error format, small messages, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocisign.config.configdir import ConfigDir
from ocisign.config.signingkeys import KeyRecord, edit_signing_keys

Run = Callable[..., Any]


@pytest.fixture
def default_key(config_dir: Path, make_keypair: Callable[..., Any]) -> Any:
    kp = make_keypair("ec256")
    with edit_signing_keys(ConfigDir(config_dir)) as keys:
        keys.add(KeyRecord(name="k", key_path=str(kp.key_path), cert_path=str(kp.cert_path)), make_default=True)
    return kp


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write an importable plugin module; returns its name."""
    names: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, body: str) -> str:
        (tmp_path / f"{name}.py").write_text("import ocisign\n" + body)
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def _index(layout: Path) -> list[dict[str, Any]]:
    return json.loads((layout / "index.json").read_text())["manifests"]  # type: ignore[no-any-return]


# --- 6: a plugin hook that raises ------------------------------------------------------------------------
def test_signature_created_failure_names_plugin_and_hook_and_says_the_signature_was_stored(
        run_cli: Run, make_layout: Callable[..., Path], default_key: Any,
        plugin_module: Callable[[str, str], str]) -> None:
    name = plugin_module("audit_boom", "@ocisign.hookimpl\n"
                         "def ocisign_signature_created(target, subject, signature):\n"
                         "    raise RuntimeError('audit log unreachable')\n")
    root = make_layout()
    before = _index(root)
    res = run_cli("-p", name, "sign", "--oci-layout", f"{root}:v1")
    assert res.rc == 3, res.err
    sig = [m for m in _index(root) if m not in before]
    assert len(sig) == 1  # the signature WAS stored …
    line = res.err.splitlines()[-1]
    assert "plugin 'audit_boom' failed in ocisign_signature_created: RuntimeError: audit log unreachable" in line
    assert f"the signature {sig[0]['digest']} of {before[0]['digest']} was stored" in line  # … and we say so
    assert "internal error" not in res.err


def test_push_finished_failure_says_the_copy_was_made(run_cli: Run, make_layout: Callable[..., Path],
                                                      tmp_path: Path,
                                                      plugin_module: Callable[[str, str], str]) -> None:
    name = plugin_module("notify_boom", "@ocisign.hookimpl\n"
                         "def ocisign_push_finished(source, destination, pushed):\n"
                         "    raise ValueError('webhook down')\n")
    root = make_layout()
    res = run_cli("-p", name, "cp", "--from-oci-layout", "--to-oci-layout", f"{root}:v1", str(tmp_path / "copy"))
    assert res.rc == 3
    assert "plugin 'notify_boom' failed in ocisign_push_finished: ValueError: webhook down" in res.err
    assert "was made" in res.err and (tmp_path / "copy" / "index.json").exists()


def test_a_builtin_that_raises_stays_an_internal_error(pm: Any) -> None:
    """Only third-party plugins are blamed: a crash in ocisign's own plugins is a bug (exit 4)."""
    import types

    import ocisign as host

    fake = types.ModuleType("ocisign.plugins.fake_builtin")

    @host.hookimpl
    def ocisign_push_finished(source: str, destination: str, pushed: Any) -> None:
        raise KeyError("bug")

    fake.ocisign_push_finished = ocisign_push_finished  # type: ignore[attr-defined]
    pm.register(fake, name="fake_builtin")
    with pytest.raises(KeyError):
        pm.push_finished("a", "b", [])


# --- 7: cp without -r says what it left behind ---------------------------------------------------------
def test_cp_without_r_says_how_many_referrers_were_left_behind(run_cli: Run, make_layout: Callable[..., Path],
                                                                default_key: Any, tmp_path: Path) -> None:
    root = make_layout()
    for _ in range(2):
        assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 0
    res = run_cli("cp", "--from-oci-layout", "--to-oci-layout", f"{root}:v1", str(tmp_path / "plain"))
    assert res.rc == 0, res.err
    assert "2 referrers (signatures or other artifacts) of sha256:" in res.err
    assert "were not copied; add -r to copy them" in res.err
    assert len(_index(tmp_path / "plain")) == 1
    res = run_cli("cp", "-r", "--from-oci-layout", "--to-oci-layout", f"{root}:v1", str(tmp_path / "all"))
    assert res.rc == 0 and "not copied" not in res.err
    assert len(_index(tmp_path / "all")) == 3


def test_cp_of_an_unsigned_artifact_does_not_warn(run_cli: Run, make_layout: Callable[..., Path],
                                                  tmp_path: Path) -> None:
    res = run_cli("cp", "--from-oci-layout", "--to-oci-layout", f"{make_layout()}:v1", str(tmp_path / "c"))
    assert res.rc == 0 and res.err == ""


# --- 8: -o json for the config listings; files from pipes and stdin --------------------------------------
def test_key_list_json_has_a_stable_shape(run_cli: Run, default_key: Any) -> None:
    res = run_cli("key", "list", "-o", "json")
    assert res.rc == 0, res.err
    assert json.loads(res.out) == {"default": "k", "keys": [{
        "name": "k", "default": True, "keyPath": str(default_key.key_path), "certPath": str(default_key.cert_path),
        "id": None, "pluginName": None, "pluginConfig": None}]}
    assert run_cli("key", "ls").out.startswith("NAME")  # notation's table stays the default


def test_cert_list_json(run_cli: Run, make_keypair: Callable[..., Any], tmp_path: Path, config_dir: Path) -> None:
    assert json.loads(run_cli("cert", "ls", "-o", "json").out) == {"certificates": []}
    kp = make_keypair("ec256", chain_len=1)
    root = tmp_path / "root.pem"
    root.write_bytes(kp.cert_path.read_bytes())
    assert run_cli("cert", "add", "-t", "ca", "-s", "acme", str(root)).rc == 0
    res = run_cli("cert", "list", "-o", "json")
    path = config_dir / "truststore" / "x509" / "ca" / "acme" / "root.pem"
    assert json.loads(res.out) == {"certificates": [
        {"storeType": "ca", "storeName": "acme", "file": "root.pem", "path": str(path)}]}


POLICY = {"version": "1.0", "trustPolicies": [{
    "name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}


def test_policy_show_json_reports_path_validity_and_the_document(run_cli: Run, config_dir: Path) -> None:
    (config_dir / "trustpolicy.json").write_text(json.dumps(POLICY))
    res = run_cli("policy", "show", "-o", "json")
    assert res.rc == 0, res.err
    assert json.loads(res.out) == {"path": str(config_dir / "trustpolicy.json"), "valid": True, "problems": [],
                                   "policy": POLICY}
    (config_dir / "trustpolicy.json").write_text('{"version": "9"}')
    out = json.loads(run_cli("policy", "show", "-o", "json").out)
    assert out["valid"] is False and out["problems"] and out["policy"] == {"version": "9"}


def test_policy_import_reads_a_pipe_and_stdin(run_cli: Run, config_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import os
    import threading
    import time

    fifo = tmp_path / "fifo"  # what `policy import <(…)` hands us: a pipe, not a regular file
    os.mkfifo(fifo)
    data = json.dumps(POLICY).encode()

    def feed(delay: float) -> None:
        time.sleep(delay)  # the writer may come after ocisign opened the FIFO: that is not end-of-file
        with fifo.open("wb") as fh:
            fh.write(data)

    for delay in (0.0, 0.3):
        writer = threading.Thread(target=feed, args=(delay,), daemon=True)  # never blocks the run's exit
        writer.start()
        res = run_cli("policy", "import", "--force", str(fifo))
        writer.join(5)
        assert res.rc == 0, res.err
        assert (config_dir / "trustpolicy.json").read_bytes() == data

    other = {**POLICY, "trustPolicies": [{**POLICY["trustPolicies"][0], "name": "q"}]}  # type: ignore[dict-item]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(other).encode())))
    res = run_cli("policy", "import", "--force", "-")
    assert res.rc == 0, res.err
    assert json.loads((config_dir / "trustpolicy.json").read_text())["trustPolicies"][0]["name"] == "q"


def test_policy_import_pipe_is_bounded_and_devices_are_refused(run_cli: Run, config_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("ocisign.cli.commands.policy.MAX_IMPORT_SIZE", 10)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(POLICY).encode())))
    res = run_cli("policy", "import", "-")
    assert res.rc == 2 and "standard input: larger than 10 bytes" in res.err
    res = run_cli("policy", "import", "/dev/null")
    assert res.rc == 2 and "not a regular file or a pipe" in res.err
    assert not (config_dir / "trustpolicy.json").exists()


# --- 9: completion, examples, did you mean -----------------------------------------------------------------
def _bash_complete(script: str, *words: str) -> list[str]:
    import shutil
    import subprocess

    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover - every CI image has bash
        pytest.skip("no bash")
    words_text = " ".join(f"'{w}'" for w in words)
    probe = (f"{script}\nCOMP_WORDS=({words_text}); COMP_CWORD={len(words) - 1}; COMPREPLY=(); _ocisign\n"
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    out = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


def test_bash_completion_follows_the_parsers(run_cli: Run) -> None:
    res = run_cli("completion", "bash")
    assert res.rc == 0 and res.err == ""
    script = res.out
    assert _bash_complete(script, "ocisign", "ver") == ["verify", "version"]
    assert _bash_complete(script, "ocisign", "certificate", "generate") == ["generate-test"]  # an alias
    assert "--output" in _bash_complete(script, "ocisign", "cert", "ls", "--")
    assert _bash_complete(script, "ocisign", "key", "list", "-o", "") == ["text", "json"]
    assert "--signature-format" in _bash_complete(script, "ocisign", "-d", "sign", "--oci-layout", "--sig")
    assert _bash_complete(script, "ocisign", "completion", "f") == ["fish"]


@pytest.mark.parametrize("shell", ["zsh", "fish", "powershell"])
def test_other_shells_get_a_script_naming_every_command(run_cli: Run, shell: str) -> None:
    from ocisign.cli.app import COMMANDS

    res = run_cli("completion", shell)
    assert res.rc == 0 and res.out
    for name in COMMANDS:
        assert f"'/{name}'" in res.out, name
    assert "'/cert/generate-test'" in res.out
    assert run_cli("completion", "tcsh").rc == 2


def test_every_example_in_help_parses_with_the_real_parser() -> None:
    import shlex

    from ocisign.cli.app import COMMANDS, build_parser
    from ocisign.cli.examples import EXAMPLES

    assert {p.split()[0] for p in EXAMPLES} == set(COMMANDS)  # every command has an example
    for path, lines in EXAMPLES.items():
        for line in lines:
            words = shlex.split(line, comments=True)
            argv = words[words.index("ocisign") + 1:]
            if ">" in argv:
                argv = argv[:argv.index(">")]
            assert argv[:len(path.split())] == path.split(), line
            args = build_parser(argv[0]).parse_args(argv)  # SystemExit (a failed test) when a flag is wrong
            assert args._command == argv[0]


def test_help_shows_an_example_section(run_cli: Run) -> None:
    for argv in (["sign", "--help"], ["cert", "add", "--help"], ["completion", "--help"]):
        res = run_cli(*argv)
        assert res.rc == 0
        assert "\nExample:\n  $ ocisign " in res.out, argv


def test_a_mistyped_command_gets_a_suggestion(run_cli: Run) -> None:
    res = run_cli("verfy", "--oci-layout", "x:v1")
    assert res.rc == 2 and res.out == ""
    assert res.err == ("Error: unknown command 'verfy'; did you mean 'verify'? "
                       "(see 'ocisign --help' for the list)\n")
    res = run_cli("-d", "zzzz")
    assert res.rc == 2 and "unknown command 'zzzz' (see" in res.err


# --- 10: one error format --------------------------------------------------------------------------------
def test_every_error_is_one_error_line_in_notations_format(run_cli: Run, make_layout: Callable[..., Path],
                                                           tmp_path: Path) -> None:
    res = run_cli("sign", "--no-such-flag", "x:v1")  # argparse: the usage, then the error line
    assert res.rc == 2
    usage, error = res.err.rstrip("\n").rsplit("\n", 1)
    assert usage.startswith("usage: ocisign")
    assert error == "Error: unrecognized arguments: --no-such-flag"
    res = run_cli("sign")  # no reference: one error line naming both ways to give one
    assert res.rc == 2 and res.err == "Error: the following arguments are required: REFERENCE (or --refs-from FILE)\n"
    res = run_cli("list", "--oci-layout", f"{tmp_path / 'missing'}:v1")  # an OcisignError
    assert res.rc == 1 and res.err.count("\n") == 1 and res.err.startswith("Error: ")
    (tmp_path / "bad.json").write_text("{}")
    res = run_cli("policy", "import", str(tmp_path / "bad.json"))  # a policy with problems
    assert res.rc == 2 and res.err.startswith("Error: ")
    res = run_cli("cert", "add", "-t", "nope", "-s", "x", "f.pem")
    assert res.rc == 2 and res.err == "Error: unsupported store type: nope (choose one of: ca, signingAuthority, tsa)\n"


def test_a_policy_plugins_reason_is_printed_once(run_cli: Run, make_layout: Callable[..., Path], default_key: Any,
                                                 config_dir: Path, tmp_path: Path,
                                                 plugin_module: Callable[[str, str], str]) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    name = plugin_module("site_deny", "from ocisign.types import PolicyResult\n"
                         "@ocisign.hookimpl\n"
                         "def ocisign_evaluate_policy(context):\n"
                         "    return PolicyResult(source='site', outcome='fail', reason='needs two signatures')\n")
    root = make_layout()
    store = config_dir / "truststore" / "x509" / "ca" / "acme"
    store.mkdir(parents=True)
    (store / "root.pem").write_bytes(default_key.chain[-1].public_bytes(Encoding.PEM))
    (config_dir / "trustpolicy.json").write_text(json.dumps(POLICY))
    assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 0
    res = run_cli("-p", name, "verify", "--oci-layout", f"{root}:v1", "--scope", "local/x")
    assert res.rc == 1
    assert res.err.count("needs two signatures") == 1
    assert res.err.splitlines()[-1] == "Error: denied by plugin site: needs two signatures"


# --- 11: small messages ------------------------------------------------------------------------------------
def test_p_with_a_path_says_it_takes_a_module_name(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "plugin.py").write_text("")
    res = run_cli("-p", "./plugin.py", "plugin", "list")
    assert res.rc == 2
    assert res.err == ("Error: -p takes a module name, not a path: './plugin.py'; put the file's directory on "
                       "PYTHONPATH (or install it) and use '-p plugin'\n")


def test_a_missing_tag_lists_the_layouts_tags_bounded(run_cli: Run, make_layout: Callable[..., Path]) -> None:
    root = make_layout()
    res = run_cli("list", "--oci-layout", f"{root}:v2")
    assert res.rc == 1 and res.err.rstrip().endswith("tag not found in index.json (the layout's tags: v1)")
    index = json.loads((root / "index.json").read_text())
    entry = index["manifests"][0]
    index["manifests"] = [{**entry, "annotations": {"org.opencontainers.image.ref.name": f"t{i:02}"}}
                          for i in range(12)]
    (root / "index.json").write_text(json.dumps(index))
    res = run_cli("inspect", "--oci-layout", f"{root}:v1")
    assert res.rc == 1
    assert "(the layout's tags: t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, … (2 more))" in res.err


def test_a_reference_with_a_scheme_says_to_drop_it(run_cli: Run) -> None:
    for argv in (["list", "https://localhost:5000/hello-world:v1"],
                 ["cp", "https://localhost:5000/hello-world:v1", "localhost:5000/b:v1"]):
        res = run_cli(*argv)
        assert res.rc == 2, argv
        assert res.err == ("Error: reference 'https://localhost:5000/hello-world:v1': drop the https:// scheme: "
                           "a reference is REGISTRY/REPO:TAG, e.g. 'localhost:5000/hello-world:v1'\n")


def test_layout_check_of_a_reference_says_it_takes_a_path(run_cli: Run, make_layout: Callable[..., Path]) -> None:
    root = make_layout()
    res = run_cli("layout", "check", f"{root}:v1")
    assert res.rc == 2
    assert f"layout check takes a path (a layout directory or tar), not a reference: use " \
           f"'ocisign layout check {root}'" in res.err
    assert run_cli("layout", "check", str(root)).rc == 0


def test_confirmation_without_a_terminal_refuses_instead_of_doing_nothing(
        run_cli: Run, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    assert run_cli("cert", "generate-test", "keep").rc == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # CI: no terminal, nothing to read
    res = run_cli("cert", "cleanup-test", "keep")
    assert res.rc == 2 and "standard input is not a terminal; add -y (--yes) to confirm" in res.err
    assert (config_dir / "localkeys" / "keep.key").exists()
    res = run_cli("cert", "delete", "-t", "ca", "-s", "keep", "--all")
    assert res.rc == 2 and "add -y" in res.err
    assert (config_dir / "truststore" / "x509" / "ca" / "keep").is_dir()


def test_an_unknown_key_is_the_same_usage_error_as_no_default_key(run_cli: Run, make_layout: Callable[..., Path],
                                                                  default_key: Any, config_dir: Path) -> None:
    root = make_layout()
    res = run_cli("sign", "--oci-layout", f"{root}:v1", "-k", "nokey")
    assert res.rc == 2 and "signing key 'nokey' not found in signingkeys.json; known keys: k" in res.err
    assert run_cli("key", "update", "--default", "nokey").rc == 2
    (config_dir / "signingkeys.json").write_text('{"keys": []}')
    assert run_cli("sign", "--oci-layout", f"{root}:v1").rc == 2  # no default key: the same exit code


# --- 12: the demo: one stream in order, no test tools under tox -------------------------------------------
def test_demo_transcript_is_one_stream_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from ocisign.cli.demo import run_demo

    out = io.StringIO()
    assert run_demo(no_registry=True, out=out) == 0
    text = out.getvalue()
    assert capsys.readouterr().err == ""  # nothing went around the transcript
    unsigned = text.index("$ ocisign verify --oci-layout ./hello-world-unsigned:v1")
    error = text.index("Error: signature verification failed: no signature is associated with")
    summary = text.index("\nSummary\n")
    assert unsigned < error < summary  # the step's stderr line sits under its command
    assert text.index("$ ocisign sign --oci-layout") < text.index("Warning: Always sign the artifact using digest")


def test_tox_demo_env_installs_no_test_extra() -> None:
    import configparser

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(Path(__file__).resolve().parents[2] / "tox.ini")
    assert tox["testenv"]["extras"].strip() == "test"
    assert tox["testenv:demo"].get("extras", None) is not None, "the demo env must override extras"
    assert tox["testenv:demo"]["extras"].strip() == ""


def test_a_mistyped_subcommand_or_choice_gets_a_suggestion(run_cli: Run) -> None:
    res = run_cli("cert", "ad")
    assert res.rc == 2 and res.err.rstrip().endswith("; did you mean 'add'?")
    res = run_cli("key", "list", "-o", "jsn")
    assert res.rc == 2 and res.err.rstrip().endswith("; did you mean 'json'?")
    res = run_cli("completion", "tcsh")
    assert res.rc == 2 and "did you mean" not in res.err
