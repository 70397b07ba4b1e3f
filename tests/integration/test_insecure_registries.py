"""notation's ``config.json`` ``insecureRegistries`` switches listed hosts to plain HTTP."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ocisign
from ocisign.cli.context import CliContext
from ocisign.errors import ConfigError
from ocisign.manager import get_plugin_manager
from ocisign.types import RemoteOptions, Transport


class Capture:
    """A stand-in ``registry`` transport that records the options it is opened with."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, RemoteOptions]] = []

    @ocisign.hookimpl
    def ocisign_transports(self) -> Iterator[Transport]:
        def _open(host: str, repo: str, options: RemoteOptions) -> Any:
            self.opened.append((host, options))
            return None

        yield Transport(name="registry", open=_open)


def context(config_dir: Path) -> tuple[CliContext, Capture]:
    ctx = CliContext(argparse.Namespace(config_dir=str(config_dir), project_config="none"))
    pm = get_plugin_manager(load_entrypoints=False, disabled=["registry"])
    cap = Capture()
    pm.register(cap, name="capture")
    ctx.set_pm(pm)
    return ctx, cap


def test_listed_host_uses_plain_http(config_dir: Path) -> None:
    (config_dir / "config.json").write_text(json.dumps({"insecureRegistries": ["registry.internal:5000"]}))
    ctx, cap = context(config_dir)
    ctx.open_registry("registry.internal:5000", "app", RemoteOptions())
    ctx.open_registry("registry.example.com", "app", RemoteOptions())
    assert [(h, o.plain_http) for h, o in cap.opened] == [
        ("registry.internal:5000", True), ("registry.example.com", False)]


def test_bad_insecure_registries_is_a_config_error(config_dir: Path) -> None:
    (config_dir / "config.json").write_text(json.dumps({"insecureRegistries": "registry.internal"}))
    ctx, _ = context(config_dir)
    with pytest.raises(ConfigError, match="insecureRegistries"):
        ctx.open_registry("registry.internal", "app", RemoteOptions())
