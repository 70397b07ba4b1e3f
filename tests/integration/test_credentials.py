"""``ocisign login``/``logout`` and where credentials come from and go: docker's ``config.json``
(auths, credsStore, credHelpers via ``docker-credential-*``; 0600, atomic), ocisign's own
``config.json`` for dedicated config dirs, the old login store (read only), env vars."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocisign.errors import ConfigError
from ocisign.registry.credentials import (
    LoginStore,
    docker_credentials,
    erase_credentials,
    login_config_path,
    lookup,
    normalize_server,
    store_credentials,
)
from ocisign.types import Credentials

USER, PASSWORD = "alice", "wonderland-Pa55"

HELPER = """#!{python}
import json, os, sys
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper-state.json")
db = json.load(open(state)) if os.path.exists(state) else {{}}
action = sys.argv[1]
data = sys.stdin.read()
if action == "get":
    server = data.strip()
    if server not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, "Username": db[server][0], "Secret": db[server][1]}}))
elif action == "store":
    obj = json.loads(data)
    db[obj["ServerURL"]] = [obj["Username"], obj["Secret"]]
    json.dump(db, open(state, "w"))
elif action == "erase":
    server = data.strip()
    if server not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    del db[server]
    json.dump(db, open(state, "w"))
"""


@pytest.fixture
def helper_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``docker-credential-fake`` helper on PATH keeping its state in helper-state.json."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "docker-credential-fake"
    exe.write_text(HELPER.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bindir


def _docker_config(config_dir: Path, obj: dict[str, Any]) -> Path:
    d = config_dir / "docker"  # $DOCKER_CONFIG set by the autouse fixture
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(obj))
    return d / "config.json"


def test_normalize_server() -> None:
    assert normalize_server("https://Registry.Example:5000/v2/") == "registry.example:5000"
    assert normalize_server("localhost:5001") == "localhost:5001"


def test_login_store_is_private_and_atomic(config_dir: Path) -> None:
    store = LoginStore(config_dir / "credentials.json")
    store.put("reg.example:5000", Credentials(username=USER, password=PASSWORD))
    store.put("other.example", Credentials(username="bob", password="builder"))
    mode = stat.S_IMODE((config_dir / "credentials.json").stat().st_mode)
    assert mode == 0o600
    assert store.get("reg.example:5000") == Credentials(username=USER, password=PASSWORD)
    assert store.get("unknown.example") is None
    raw = json.loads((config_dir / "credentials.json").read_text())
    assert raw["auths"]["reg.example:5000"]["auth"] == base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert store.remove("reg.example:5000") and not store.remove("reg.example:5000")
    assert store.get("other.example") is not None
    assert not any(p.name.endswith(".tmp") for p in config_dir.iterdir())


def test_login_store_warns_when_readable_by_others(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LoginStore(config_dir / "credentials.json")
    store.put("reg.example", Credentials(username=USER, password=PASSWORD))
    (config_dir / "credentials.json").chmod(0o644)
    assert store.get("reg.example") is not None
    assert "readable by other users" in capsys.readouterr().err


def test_docker_config_auths_and_helpers(config_dir: Path, helper_bin: Path) -> None:
    auth = base64.b64encode(b"dockeruser:dockerpw").decode()
    _docker_config(config_dir, {
        "auths": {"https://inline.example/v1/": {"auth": auth}, "token.example": {"identitytoken": "refresh-me"}},
        "credHelpers": {"helped.example": "fake"},
    })
    assert docker_credentials("inline.example") == Credentials(username="dockeruser", password="dockerpw")
    assert docker_credentials("token.example") == Credentials(identity_token="refresh-me")
    (helper_bin / "helper-state.json").write_text(json.dumps({"helped.example": ["hu", "hs"]}))
    assert docker_credentials("helped.example") == Credentials(username="hu", password="hs")
    assert docker_credentials("nothing.example") is None
    _docker_config(config_dir, {"auths": {"bad.example": {"auth": "!!notbase64"}}})
    with pytest.raises(ConfigError, match="base64"):
        docker_credentials("bad.example")
    _docker_config(config_dir, {"credsStore": "../../bin/sh"})
    with pytest.raises(ConfigError, match="invalid credential helper"):
        docker_credentials("x.example")


def test_lookup_order_env_then_login_store_then_docker(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"dockeruser:dockerpw").decode()
    _docker_config(config_dir, {"auths": {"reg.example": {"auth": auth}}})
    assert lookup("reg.example", config_dir=config_dir) == Credentials(username="dockeruser", password="dockerpw")
    LoginStore(config_dir / "credentials.json").put("reg.example", Credentials(username=USER, password=PASSWORD))
    assert lookup("reg.example", config_dir=config_dir) == Credentials(username=USER, password=PASSWORD)
    monkeypatch.setenv("OCISIGN_USERNAME", "envuser")
    monkeypatch.setenv("OCISIGN_PASSWORD", "envpw")
    assert lookup("reg.example", config_dir=config_dir) == Credentials(username="envuser", password="envpw")


@pytest.mark.registry
def test_login_then_cp_then_logout(
    run_cli: Callable[..., Any], registry_basic: Any, config_dir: Path, make_layout: Callable[..., Path],
    repo_name: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = registry_basic.host
    layout = make_layout()
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong-password\n"))
    r = run_cli("login", "-u", USER, "--password-stdin", host)
    assert r.rc == 1 and "unauthorized" in r.err and "wrong-password" not in r.err + r.out
    docker_json = config_dir / "docker" / "config.json"
    assert not (config_dir / "credentials.json").exists() and not docker_json.exists()

    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    r = run_cli("login", "-u", USER, "--password-stdin", host)
    assert r.rc == 0, r.err
    assert r.out.strip() == "Login Succeeded"
    assert stat.S_IMODE(docker_json.stat().st_mode) == 0o600
    assert f"stored in {docker_json}" in r.err and "unencrypted" in r.err
    assert PASSWORD not in r.out + r.err
    assert not (config_dir / "credentials.json").exists()

    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{host}/{repo_name}:v1")
    assert r.rc == 0, r.err

    r = run_cli("logout", host)
    assert r.rc == 0 and r.out.strip() == "Logout Succeeded"
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{host}/{repo_name}:v2")
    assert r.rc == 1 and "authentication required" in r.err
    r = run_cli("logout", host)
    assert r.rc == 0 and r.out.strip() == "Logout Succeeded" and "not logged in" in r.err


@pytest.mark.registry
def test_login_through_credential_helper_and_config_dir_flag(
    run_cli: Callable[..., Any], registry_basic: Any, tmp_path: Path, helper_bin: Path,
    make_layout: Callable[..., Path], repo_name: str,
) -> None:
    cfg = tmp_path / "other-config"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    host = registry_basic.host
    r = run_cli("--config-dir", str(cfg), "login", "-u", USER, "-P", PASSWORD, host)
    assert r.rc == 0, r.err
    assert json.loads((helper_bin / "helper-state.json").read_text()) == {host: [USER, PASSWORD]}
    assert not (cfg / "credentials.json").exists()
    layout = make_layout()
    r = run_cli("--config-dir", str(cfg), "cp", "--from-oci-layout", f"{layout}:v1", f"{host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert run_cli("--config-dir", str(cfg), "logout", host).out.strip() == "Logout Succeeded"
    assert json.loads((helper_bin / "helper-state.json").read_text()) == {}


@pytest.mark.registry
def test_docker_config_and_env_credentials_reach_only_their_registry(
    run_cli: Callable[..., Any], registry_basic: Any, config_dir: Path, make_layout: Callable[..., Path],
    repo_name: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    layout = make_layout()
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    _docker_config(config_dir, {"auths": {f"http://{registry_basic.host}": {"auth": auth}}})
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_basic.host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    _docker_config(config_dir, {})
    monkeypatch.setenv("OCISIGN_USERNAME", USER)
    monkeypatch.setenv("OCISIGN_PASSWORD", PASSWORD)
    r = run_cli("cp", "--from-oci-layout", f"{layout}:v1", f"{registry_basic.host}/{repo_name}:v2")
    assert r.rc == 0, r.err


def test_login_usage_errors(run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    r = run_cli("login", "localhost:1")
    assert r.rc == 2 and "user name" in r.err
    r = run_cli("login", "-u", USER, "-P", "x", "--password-stdin", "localhost:1")
    assert r.rc == 2 and "mutually exclusive" in r.err
    r = run_cli("login", "-u", USER, "-P", "x", "not a host!")
    assert r.rc == 2


@pytest.mark.registry
def test_login_accepts_notations_short_password_flag(
    run_cli: Callable[..., Any], registry_basic: Any, config_dir: Path
) -> None:
    r = run_cli("login", "-u", USER, "-p", PASSWORD, registry_basic.host)
    assert r.rc == 0, r.err
    assert "insecure" in r.err  # warned about the password on the command line
    assert docker_credentials(registry_basic.host) == Credentials(username=USER, password=PASSWORD)
    # the top-level -p still loads plugin modules
    r = run_cli("-p", "no:oci_dir", "logout", registry_basic.host)
    assert r.rc == 0 and r.out.strip() == "Logout Succeeded"


# --- where login stores (issue 11 item 13) -----------------------------------------------------------------
def test_store_in_docker_config_keeps_everything_else(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _docker_config(config_dir, {
        "auths": {"other.example": {"auth": "b3RoZXI6cHc="}, "https://reg.example/v1/": {"auth": "b2xkOm9sZA=="}},
        "HttpHeaders": {"User-Agent": "x"}, "experimental": "enabled", "currentContext": "desktop-linux",
    })
    path.chmod(0o644)
    assert login_config_path(config_dir, dedicated=True) == path  # $DOCKER_CONFIG is set: docker's file
    stored = store_credentials(path, "reg.example", Credentials(username=USER, password=PASSWORD))
    assert stored.helper is None and stored.describe() == str(path)
    obj = json.loads(path.read_text())
    assert list(obj) == ["auths", "HttpHeaders", "experimental", "currentContext"]  # order and unknown keys kept
    assert obj["auths"] == {"other.example": {"auth": "b3RoZXI6cHc="},
                            "reg.example": {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith('{\n\t"auths"')  # docker's layout
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temp files left
    assert docker_credentials("reg.example") == Credentials(username=USER, password=PASSWORD)
    assert lookup("reg.example", config_dir=config_dir) == Credentials(username=USER, password=PASSWORD)
    assert erase_credentials(path, "reg.example") is True
    assert erase_credentials(path, "reg.example") is False
    assert json.loads(path.read_text())["auths"] == {"other.example": {"auth": "b3RoZXI6cHc="}}


def test_store_in_a_symlinked_docker_config_writes_the_target(config_dir: Path) -> None:
    real = config_dir / "dotfiles-docker.json"
    real.write_text(json.dumps({"auths": {}}))
    (config_dir / "docker").mkdir()
    link = config_dir / "docker" / "config.json"
    link.symlink_to(real)
    store_credentials(link, "reg.example", Credentials(username=USER, password=PASSWORD))
    assert link.is_symlink() and "reg.example" in json.loads(real.read_text())["auths"]


def test_store_through_the_helper_the_docker_config_names(config_dir: Path, helper_bin: Path) -> None:
    path = _docker_config(config_dir, {"credsStore": "fake", "auths": {}})
    stored = store_credentials(path, "reg.example", Credentials(username=USER, password=PASSWORD))
    assert stored.helper == "fake" and "docker-credential-fake" in stored.describe()
    assert json.loads((helper_bin / "helper-state.json").read_text()) == {"reg.example": [USER, PASSWORD]}
    assert json.loads(path.read_text()) == {"credsStore": "fake", "auths": {}}  # no plain-text copy
    assert lookup("reg.example", config_dir=config_dir) == Credentials(username=USER, password=PASSWORD)
    _docker_config(config_dir, {"credHelpers": {"reg.example": "fake"}})
    assert erase_credentials(path, "reg.example") is True
    assert json.loads((helper_bin / "helper-state.json").read_text()) == {}


def test_dedicated_config_dir_without_docker_config_stays_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"insecureRegistries": ["reg.example"]}))
    assert login_config_path(cfg, dedicated=False) == tmp_path / "home" / ".docker" / "config.json"
    own = login_config_path(cfg, dedicated=True)
    assert own == cfg / "config.json"
    store_credentials(own, "reg.example", Credentials(username=USER, password=PASSWORD))
    assert json.loads(own.read_text())["insecureRegistries"] == ["reg.example"]
    assert not (tmp_path / "home" / ".docker").exists()
    # once ocisign's config.json configures credentials it is the store even without a dedicated dir (notation's rule)
    assert login_config_path(cfg, dedicated=False) == own
    assert lookup("reg.example", config_dir=cfg) == Credentials(username=USER, password=PASSWORD)


def test_old_login_store_is_still_read(config_dir: Path) -> None:
    LoginStore(config_dir / "credentials.json").put("old.example", Credentials(username=USER, password=PASSWORD))
    assert lookup("old.example", config_dir=config_dir) == Credentials(username=USER, password=PASSWORD)


@pytest.mark.registry
def test_login_replaces_the_old_store_entry_and_other_tools_see_it(
    run_cli: Callable[..., Any], registry_basic: Any, config_dir: Path
) -> None:
    host = registry_basic.host
    LoginStore(config_dir / "credentials.json").put(host, Credentials(username="old", password="stale"))
    r = run_cli("login", "-u", USER, "-P", PASSWORD, host)
    assert r.rc == 0, r.err
    assert "Removed the old entry" in r.err
    assert LoginStore(config_dir / "credentials.json").get(host) is None
    # what docker/oras/skopeo read: docker's config.json
    auths = json.loads((config_dir / "docker" / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[host]["auth"]).decode() == f"{USER}:{PASSWORD}"
    r = run_cli("logout", host)
    assert r.rc == 0 and host not in json.loads((config_dir / "docker" / "config.json").read_text())["auths"]


@pytest.mark.registry
def test_config_dir_only_setup_keeps_working(
    run_cli: Callable[..., Any], registry_basic: Any, tmp_path: Path, make_layout: Callable[..., Path],
    repo_name: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--config-dir without $DOCKER_CONFIG: login stores in that dir's config.json (notation's format and
    place), cp uses it, ~/.docker is never touched, logout removes it."""
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.delenv("OCISIGN_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = tmp_path / "project-config"
    host = registry_basic.host
    r = run_cli("--config-dir", str(cfg), "login", "-u", USER, "-P", PASSWORD, host)
    assert r.rc == 0, r.err
    assert f"stored in {cfg / 'config.json'}" in r.err
    assert stat.S_IMODE((cfg / "config.json").stat().st_mode) == 0o600
    assert not (tmp_path / "home" / ".docker").exists()
    layout = make_layout()
    r = run_cli("--config-dir", str(cfg), "cp", "--from-oci-layout", f"{layout}:v1", f"{host}/{repo_name}:v1")
    assert r.rc == 0, r.err
    assert run_cli("--config-dir", str(cfg), "logout", host).rc == 0
    assert json.loads((cfg / "config.json").read_text())["auths"] == {}
