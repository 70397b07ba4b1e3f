"""Project config: [tool.ocisign] in pyproject.toml or ocisign.toml, found from the cwd upward."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from ocisign.config.project import (
    find_project_config,
    glob_to_regex,
    layout_name,
    load_project_config,
    read_project_config,
)
from ocisign.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


FULL = """\
    [project]
    name = "app"

    [tool.ocisign]
    config-dir = ".ocisign"
    key = "release"
    signature-format = "cose"
    trust-policy = "policy/trustpolicy.json"
    plugins = ["ocisign_acme.plugin"]
    disable-plugins = ["credentials"]

    [tool.ocisign.layouts."images/*"]
    scope = "local/{name}"
    push = "${OCISIGN_TEST_REGISTRY:-localhost:5000}/team/{name}"
    tags = ["v1", "latest"]

    [tool.ocisign.layouts."./dist/**/*.tar"]
    scope = "registry.example.com/dist/{name}"
"""


def test_full_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCISIGN_TEST_REGISTRY", raising=False)
    path = write(tmp_path / "pyproject.toml", FULL)
    cfg = read_project_config(path)
    assert cfg.found and cfg.path == path and cfg.root == tmp_path
    assert cfg.key == "release" and cfg.signature_format == "cose"
    assert cfg.config_dir == tmp_path / ".ocisign"
    assert cfg.trust_policy == tmp_path / "policy" / "trustpolicy.json"
    assert cfg.plugins == ("ocisign_acme.plugin",) and cfg.disable_plugins == ("credentials",)
    monkeypatch.chdir(tmp_path)
    assert cfg.scope_for("images/hello-world") == "local/hello-world"
    assert cfg.scope_for(tmp_path / "images" / "web.tar") == "local/web"
    assert cfg.push_target_for("images/hello-world") == "localhost:5000/team/hello-world"
    monkeypatch.setenv("OCISIGN_TEST_REGISTRY", "127.0.0.1:5999")
    assert cfg.push_target_for("./images/hello-world/") == "127.0.0.1:5999/team/hello-world"
    assert cfg.tags_for("images/x") == ("v1", "latest")
    assert cfg.scope_for("dist/a/b/app.tar") == "registry.example.com/dist/app"
    assert cfg.scope_for("dist/app.tar") == "registry.example.com/dist/app"
    # '*' stays inside one path component; unmatched and outside paths get nothing
    assert cfg.scope_for("images/nested/deep") is None
    assert cfg.scope_for("other/x") is None
    assert cfg.scope_for(tmp_path.parent / "elsewhere") is None
    assert cfg.tags_for("other/x") == ()


def test_first_matching_rule_wins_in_file_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "ocisign.toml", """\
        [layouts."images/special"]
        scope = "local/special-scope"
        [layouts."images/*"]
        scope = "local/{name}"
    """)
    monkeypatch.chdir(tmp_path)
    cfg = load_project_config()
    assert cfg.scope_for("images/special") == "local/special-scope"
    assert cfg.scope_for("images/other") == "local/other"


def test_unset_variable_without_default_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCISIGN_NOPE", raising=False)
    path = write(tmp_path / "ocisign.toml", """\
        [layouts."img"]
        push = "${OCISIGN_NOPE}/img"
    """)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"ocisign\.toml: layouts\.'img'\.push: environment variable OCISIGN_NOPE"):
        read_project_config(path).push_target_for("img")


def test_search_upward_ocisign_toml_wins_and_stops_at_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write(tmp_path / "ocisign.toml", 'key = "outside"\n')  # above the repository: never read
    nested = repo / "a" / "b"
    nested.mkdir(parents=True)
    assert find_project_config(nested) is None
    write(repo / "pyproject.toml", '[project]\nname = "x"\n')  # no [tool.ocisign]: not a project config
    assert find_project_config(nested) is None
    write(repo / "pyproject.toml", '[tool.ocisign]\nkey = "repo"\n')
    assert find_project_config(nested) == repo / "pyproject.toml"
    write(repo / "a" / "pyproject.toml", '[tool.black]\nline-length = 1\n')
    assert find_project_config(nested) == repo / "pyproject.toml"
    write(repo / "ocisign.toml", 'key = "toml"\n')
    assert find_project_config(nested) == repo / "ocisign.toml"
    assert load_project_config(start=str(nested)).key == "toml"


def test_no_file_gives_empty_config(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    cfg = load_project_config(start=str(tmp_path))
    assert not cfg.found and cfg.key is None and cfg.layouts == () and cfg.scope_for("x") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[tool.ocisign]\nkeys = "x"\n', r"pyproject\.toml: \[tool\.ocisign\]: unknown key 'keys'"),
        ('[tool.ocisign.layouts."img/*"]\nscopes = "a/b"\n',
         r"pyproject\.toml: \[tool\.ocisign\.layouts\.'img/\*'\]: unknown key 'scopes'"),
        ('[tool.ocisign]\nkey = 3\n', r"pyproject\.toml: tool\.ocisign\.key must be a non-empty string"),
        ('[tool.ocisign]\nplugins = "acme"\n', r"tool\.ocisign\.plugins must be a list of non-empty strings"),
        ('[tool.ocisign]\nlayouts = ["a"]\n', r"tool\.ocisign\.layouts must be a table"),
        ('[tool.ocisign.layouts]\nimg = "a/b"\n', r"tool\.ocisign\.layouts\.img must be a table"),
        ('[tool.ocisign.layouts.img]\ntags = ["bad tag"]\n', r"layouts\.img\.tags: invalid tag 'bad tag'"),
        ('[tool.ocisign\n', r"pyproject\.toml: invalid TOML"),
        ('[tool]\nocisign = 1\n', r"tool\.ocisign must be a table"),
    ],
)
def test_invalid_pyproject(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "pyproject.toml", text)
    with pytest.raises(ConfigError, match=message):
        read_project_config(path)


def test_unknown_key_in_ocisign_toml_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "ocisign.toml", 'signature_format = "jws"\n')
    with pytest.raises(ConfigError, match=r"ocisign\.toml: unknown key 'signature_format' \(known keys: .*"
                       r"signature-format"):
        read_project_config(path)


def test_cli_reports_bad_project_config_with_exit_2(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "pyproject.toml", '[tool.ocisign]\ndefault-key = "x"\n')
    monkeypatch.chdir(tmp_path)
    res = run_cli("plugin", "list")
    assert res.rc == 2
    assert str(tmp_path / "pyproject.toml") in res.err and "unknown key 'default-key'" in res.err
    assert len(res.err.strip().splitlines()) == 1
    # 'none' turns the lookup off; an explicit missing file is an error
    assert run_cli("--project-config", "none", "plugin", "list").rc == 0
    monkeypatch.setenv("OCISIGN_PROJECT_CONFIG", "none")
    assert run_cli("plugin", "list").rc == 0
    res = run_cli("--project-config", str(tmp_path / "missing.toml"), "plugin", "list")
    assert res.rc == 2 and "missing.toml: project config file not found" in res.err


def test_explicit_file_and_env(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path / "conf" / "ocisign.toml", 'disable-plugins = ["oci_archive"]\n')
    monkeypatch.chdir(tmp_path)
    names = {p["name"] for p in json.loads(run_cli("plugin", "list", "-o", "json").out)}
    assert "oci_archive" in names
    res = run_cli("--project-config", str(good), "plugin", "list", "-o", "json")
    assert res.rc == 0 and "oci_archive" not in {p["name"] for p in json.loads(res.out)}
    monkeypatch.setenv("OCISIGN_PROJECT_CONFIG", str(good))
    assert "oci_archive" not in {p["name"] for p in json.loads(run_cli("plugin", "list", "-o", "json").out)}
    # an explicit pyproject.toml without the table is an error, not silently ignored
    bare = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    res = run_cli("--project-config", str(bare), "plugin", "list")
    assert res.rc == 2 and "has no [tool.ocisign] table" in res.err


def test_project_plugins_are_loaded(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    mod_dir = tmp_path / "mods"
    write(mod_dir / "proj_local_plugin.py", """\
        import ocisign

        @ocisign.hookimpl
        def ocisign_signature_created(target, subject, signature):
            pass
    """)
    monkeypatch.syspath_prepend(str(mod_dir))
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    write(proj / "ocisign.toml", 'plugins = ["proj_local_plugin"]\n')
    monkeypatch.chdir(proj)
    try:
        res = run_cli("plugin", "list", "-o", "json")
        assert res.rc == 0, res.err
        info = {p["name"]: p for p in json.loads(res.out)}
        assert info["proj_local_plugin"]["hooks"] == ["ocisign_signature_created"]
        write(proj / "ocisign.toml", 'plugins = ["no_such_module_xyz"]\n')
        res = run_cli("plugin", "list")
        assert res.rc == 3 and "no_such_module_xyz" in res.err
    finally:
        sys.modules.pop("proj_local_plugin", None)


def test_config_dir_precedence(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                               config_dir: Path) -> None:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    write(proj / "pyproject.toml", '[tool.ocisign]\nconfig-dir = "keys"\n')
    monkeypatch.chdir(proj)
    # the project's config dir beats $OCISIGN_CONFIG_DIR (set by the test fixture) ...
    res = run_cli("cert", "generate-test", "proj-key")
    assert res.rc == 0, res.err
    assert (proj / "keys" / "localkeys" / "proj-key.crt").is_file()
    assert not (config_dir / "localkeys").exists()
    # ... and --config-dir beats the project's
    other = tmp_path / "other"
    res = run_cli("--config-dir", str(other), "cert", "generate-test", "other-key")
    assert res.rc == 0, res.err
    assert (other / "localkeys" / "other-key.crt").is_file()
    assert not (proj / "keys" / "localkeys" / "other-key.crt").exists()


def test_layout_paths_expand_globs(tmp_path: Path, make_layout) -> None:  # type: ignore[no-untyped-def]
    from ocisign.testing.sample_image import write_image_layout

    write_image_layout(tmp_path / "images" / "a")
    write_image_layout(tmp_path / "images" / "b")
    (tmp_path / "images" / "not-a-layout").mkdir()
    (tmp_path / "images" / "c.tar").write_bytes(b"")
    (tmp_path / "images" / "notes.txt").write_text("x")
    path = write(tmp_path / "ocisign.toml", '[layouts."images/*"]\nscope = "local/{name}"\n')
    cfg = read_project_config(path)
    assert [p.name for p in cfg.layout_paths()] == ["a", "b", "c.tar"]


def test_glob_and_name_helpers() -> None:
    assert glob_to_regex("a/*/c").match("a/b/c")
    assert not glob_to_regex("a/*/c").match("a/b/x/c")
    assert glob_to_regex("a/**/c").match("a/c") and glob_to_regex("a/**/c").match("a/b/x/c")
    assert glob_to_regex("img-[0-9]").match("img-3") and not glob_to_regex("img-[!0-9]").match("img-3")
    assert glob_to_regex("v?.tar").match("v1.tar") and not glob_to_regex("v?.tar").match("v1/tar")
    assert layout_name("images/hello-world.tar") == "hello-world"
    assert layout_name("images/app.oci.tar") == "app"
    assert layout_name("./images/app/") == "app"
