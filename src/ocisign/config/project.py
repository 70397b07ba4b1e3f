"""Project configuration: ``[tool.ocisign]`` in ``pyproject.toml``, or an ``ocisign.toml``.

The file is found from the working directory upward (the search stops at the directory that
holds ``.git``); ``--project-config FILE`` or ``$OCISIGN_PROJECT_CONFIG`` names one directly,
and ``none`` turns the lookup off. In ``ocisign.toml`` the keys are at the top level::

    # pyproject.toml                           # or ocisign.toml (same keys, no table header)
    [tool.ocisign]
    config-dir = ".ocisign"                    # relative to the file's directory
    key = "release"                            # default signing key (a name in signingkeys.json)
    signature-format = "cose"                  # default --signature-format
    trust-policy = "policy/trustpolicy.json"   # trust policy file used instead of the config dir's
    plugins = ["ocisign_acme.plugin"]          # plugin modules to load (like -p MODULE)
    disable-plugins = ["credentials"]          # plugins to block (like -p no:NAME)

    [tool.ocisign.layouts."images/*"]          # glob for layout dirs / tars, relative to the file
    scope = "local/{name}"                     # trust-policy scope for verify --oci-layout
    push = "${REGISTRY:-localhost:5000}/{name}"  # where ocisign-push copies it (tag added)
    tags = ["v1"]                              # tags to sign/verify/push (default: every tag)

``{name}`` is the layout's file name without ``.tar``; ``${VAR}`` and ``${VAR:-default}`` read
the environment. Unknown keys and wrong types are :class:`~ocisign.errors.ConfigError` (exit 2)
naming the file and the key. Reading uses :mod:`tomllib` (``tomli`` before Python 3.11), imported
only when a file is found.
"""

from __future__ import annotations

import os
import re
import sys

from ocisign.errors import ConfigError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:  # pathlib is imported only when a project config file is found or a rule is used
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

#: environment variable naming the project config file (``none`` disables the lookup)
ENV_VAR = "OCISIGN_PROJECT_CONFIG"
OCISIGN_TOML = "ocisign.toml"
PYPROJECT_TOML = "pyproject.toml"
_DISABLED = frozenset({"none", "no", "off", "0"})

_TOP_KEYS = frozenset({"config-dir", "key", "signature-format", "trust-policy", "plugins", "disable-plugins",
                       "layouts"})
_LAYOUT_KEYS = frozenset({"scope", "push", "tags"})
_VAR_RE = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\{name\}"
_TAG_RE = r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z"
#: ``[tool.ocisign]``, ``[tool.ocisign.layouts…]`` or a dotted ``tool.ocisign.key = …``
_TABLE_HINT = r"""(?m)^\s*(\[\s*tool\s*\.\s*["']?ocisign["']?\s*[\].]|tool\s*\.\s*["']?ocisign["']?\s*[.=])"""
#: ``[tool]`` with an ``ocisign = {…}`` / ``ocisign.key = …`` key
_TOOL_TABLE = r"(?m)^\s*\[\s*tool\s*\]"
_OCISIGN_KEY = r"""(?m)^\s*["']?ocisign["']?\s*[.=]"""


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob: ``*`` and ``?`` stay inside one path component, ``**`` spans any number."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("\\A" + "".join(out) + "\\Z")


def _norm(path: str) -> str:
    """``./a/b/`` -> ``a/b``."""
    while path.startswith("./"):
        path = path[2:]
    return path.strip("/")


def layout_name(path: str | os.PathLike[str]) -> str:
    """The ``{name}`` of a layout: its file name without ``.tar`` (and ``.oci``)."""
    parts = [part for part in os.fspath(path).split("/") if part and part != "."]
    name = parts[-1] if parts else ""  # pathlib's name, without importing pathlib
    for suffix in (".tar", ".oci"):
        name = name.removesuffix(suffix)
    return name


class LayoutRule:
    """One ``[tool.ocisign.layouts."GLOB"]`` table (read-only attributes).

    Plain classes rather than dataclasses here: this module is imported by every command that
    builds a CliContext, and dataclass creation costs start-up time.
    """

    __slots__ = ("pattern", "push", "scope", "source", "tags")

    def __init__(self, pattern: str, *, scope: str | None = None, push: str | None = None,
                 tags: tuple[str, ...] = (), source: str = "") -> None:
        self.pattern = pattern
        self.scope = scope
        self.push = push
        self.tags = tags
        #: the file the rule came from (for messages)
        self.source = source

    def __repr__(self) -> str:
        return f"LayoutRule({self.pattern!r}, scope={self.scope!r}, push={self.push!r}, tags={self.tags!r})"

    def matches(self, relpath: str) -> bool:
        """True when the project-relative POSIX path ``relpath`` matches the glob."""
        return glob_to_regex(_norm(self.pattern)).match(_norm(relpath)) is not None


class ProjectConfig:
    """Settings from the project config file; every field is None/empty when there is no file.

    Attributes: ``path`` (the file read, or None), ``root`` (directory that relative paths and
    layout globs are resolved against), ``key`` (default signing key name), ``signature_format``
    (default envelope format), ``trust_policy`` (policy file used instead of the config dir's),
    ``config_dir`` (``--config-dir`` still wins), ``plugins`` (modules to load),
    ``disable_plugins`` (plugin names to block), ``layouts`` (LayoutRule tuple, file order).
    """

    __slots__ = ("_root", "_root_text", "config_dir", "disable_plugins", "key", "layouts", "path", "plugins",
                 "signature_format", "trust_policy")

    def __init__(
        self,
        *,
        path: Path | None = None,
        root: Path | None = None,
        key: str | None = None,
        signature_format: str | None = None,
        trust_policy: Path | None = None,
        config_dir: Path | None = None,
        plugins: tuple[str, ...] = (),
        disable_plugins: tuple[str, ...] = (),
        layouts: tuple[LayoutRule, ...] = (),
    ) -> None:
        self.path = path
        self._root = root
        self._root_text = os.getcwd() if root is None else ""  # Path.cwd() made on first use
        self.key = key
        self.signature_format = signature_format
        self.trust_policy = trust_policy
        self.config_dir = config_dir
        self.plugins = plugins
        self.disable_plugins = disable_plugins
        self.layouts = layouts

    def __repr__(self) -> str:
        return f"ProjectConfig(path={self.path!r}, key={self.key!r}, layouts={self.layouts!r})"

    @property
    def root(self) -> Path:
        """The directory relative paths and layout globs are resolved against."""
        if self._root is None:
            from pathlib import Path

            self._root = Path(self._root_text)
        return self._root

    @root.setter
    def root(self, value: Path) -> None:
        self._root = value

    @property
    def found(self) -> bool:
        """True when a project config file was read."""
        return self.path is not None

    def relpath(self, layout: str | os.PathLike[str]) -> str | None:
        """``layout`` relative to :attr:`root` in POSIX form, or None when it lies outside."""
        from pathlib import Path

        p = Path(layout)
        absolute = Path(os.path.abspath(p if p.is_absolute() else Path.cwd() / p))
        try:
            return absolute.relative_to(Path(os.path.abspath(self.root))).as_posix()
        except ValueError:
            return None

    def layout_rule(self, layout: str | os.PathLike[str]) -> LayoutRule | None:
        """The first rule (in file order) whose glob matches the layout path, or None."""
        rel = self.relpath(layout)
        if rel is None:
            return None
        for rule in self.layouts:
            if rule.matches(rel):
                return rule
        return None

    def scope_for(self, layout: str | os.PathLike[str]) -> str | None:
        """The trust-policy scope configured for a layout (``verify --oci-layout`` default ``--scope``)."""
        rule = self.layout_rule(layout)
        if rule is None or rule.scope is None:
            return None
        return self.expand(rule.scope, layout, key=f"layouts.{rule.pattern!r}.scope")

    def push_target_for(self, layout: str | os.PathLike[str]) -> str | None:
        """The registry repository (``host/repo``, maybe with a tag) a layout is pushed to."""
        rule = self.layout_rule(layout)
        if rule is None or rule.push is None:
            return None
        return self.expand(rule.push, layout, key=f"layouts.{rule.pattern!r}.push")

    def tags_for(self, layout: str | os.PathLike[str]) -> tuple[str, ...]:
        """Tags configured for a layout; empty means every tag in the layout."""
        rule = self.layout_rule(layout)
        return rule.tags if rule else ()

    def layout_paths(self) -> list[Path]:
        """Existing layouts (directories with ``oci-layout``, or ``.tar`` files) matching any rule."""
        found: dict[Path, None] = {}
        for rule in self.layouts:
            pattern = _norm(rule.pattern)
            for candidate in sorted(self.root.glob(pattern)):
                if (candidate.is_dir() and (candidate / "oci-layout").is_file()) or (
                    candidate.is_file() and candidate.suffix == ".tar"
                ):
                    found.setdefault(candidate, None)
        return list(found)

    def expand(self, template: str, layout: str | os.PathLike[str], *, key: str) -> str:
        """Substitute ``{name}`` and ``${VAR}`` / ``${VAR:-default}`` in a layout setting."""

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "{name}":
                return layout_name(layout)
            var, default = m.group(1), m.group(2)
            value = os.environ.get(var)
            if value:
                return value
            if default is not None:
                return default
            raise ConfigError(f"{self.path}: {key}: environment variable {var} is not set (use ${{{var}:-default}})")

        return re.sub(_VAR_RE, repl, template)


# --- reading ------------------------------------------------------------------------------------
def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with open(path, "rb") as fh:
            doc: dict[str, Any] = tomllib.load(fh)
            return doc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read project config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, not {value!r}")
    return value


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings, not {value!r}")
    return tuple(value)


def _check_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} (known keys: {', '.join(sorted(allowed))})")


def parse_config(table: Mapping[str, Any], *, path: Path, prefix: str) -> ProjectConfig:
    """Validate a ``[tool.ocisign]`` table (or an ``ocisign.toml`` document) read from ``path``.

    ``prefix`` is how the table is named in messages (``tool.ocisign.`` or empty).
    """
    from pathlib import Path

    _check_keys(table, _TOP_KEYS, f"{path}: [{prefix.rstrip('.')}]" if prefix else str(path))
    root = path.parent

    def where(key: str) -> str:
        return f"{path}: {prefix}{key}"

    def rel_path(key: str) -> Path | None:
        if key not in table:
            return None
        p = Path(os.path.expanduser(_str(table[key], where(key))))
        return p if p.is_absolute() else root / p

    rules: list[LayoutRule] = []
    layouts = table.get("layouts", {})
    if not isinstance(layouts, dict):
        raise ConfigError(f"{where('layouts')} must be a table of \"GLOB\" = {{scope, push, tags}} tables")
    for pattern, rule in layouts.items():
        rw = f"{prefix}layouts.{pattern!r}" if "/" in pattern or "*" in pattern else f"{prefix}layouts.{pattern}"
        if not isinstance(rule, dict):
            raise ConfigError(f"{path}: {rw} must be a table with scope, push and/or tags")
        _check_keys(rule, _LAYOUT_KEYS, f"{path}: [{rw}]")
        tags = _str_list(rule["tags"], f"{path}: {rw}.tags") if "tags" in rule else ()
        for tag in tags:
            if not re.match(_TAG_RE, tag):
                raise ConfigError(f"{path}: {rw}.tags: invalid tag {tag!r}")
        rules.append(
            LayoutRule(
                pattern=pattern,
                scope=_str(rule["scope"], f"{path}: {rw}.scope") if "scope" in rule else None,
                push=_str(rule["push"], f"{path}: {rw}.push") if "push" in rule else None,
                tags=tags,
                source=str(path),
            )
        )
    fmt = _str(table["signature-format"], where("signature-format")) if "signature-format" in table else None
    return ProjectConfig(
        path=path,
        root=root,
        key=_str(table["key"], where("key")) if "key" in table else None,
        signature_format=fmt,
        trust_policy=rel_path("trust-policy"),
        config_dir=rel_path("config-dir"),
        plugins=_str_list(table["plugins"], where("plugins")) if "plugins" in table else (),
        disable_plugins=(
            _str_list(table["disable-plugins"], where("disable-plugins")) if "disable-plugins" in table else ()
        ),
        layouts=tuple(rules),
    )


def read_project_config(path: str | os.PathLike[str]) -> ProjectConfig:
    """Read an ``ocisign.toml`` or the ``[tool.ocisign]`` table of a ``pyproject.toml``."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: project config file not found")
    doc = _load_toml(p)
    if p.name == PYPROJECT_TOML:
        tool = doc.get("tool", {})
        table = tool.get("ocisign") if isinstance(tool, dict) else None
        if table is None:
            raise ConfigError(f"{p}: has no [tool.ocisign] table")
        if not isinstance(table, dict):
            raise ConfigError(f"{p}: tool.ocisign must be a table")
        return parse_config(table, path=p.absolute(), prefix="tool.ocisign.")
    return parse_config(doc, path=p.absolute(), prefix="")


def _has_ocisign_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    # cheap pre-check (parsing TOML costs start-up time): only files that plausibly hold the table
    if "ocisign" not in text or not (
        re.search(_TABLE_HINT, text) or (re.search(_TOOL_TABLE, text) and re.search(_OCISIGN_KEY, text))
    ):
        return False
    doc = _load_toml(pyproject)
    tool = doc.get("tool")
    return isinstance(tool, dict) and "ocisign" in tool


def find_project_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``ocisign.toml``, or ``pyproject.toml`` with ``[tool.ocisign]``, from ``start`` upward.

    ``ocisign.toml`` wins over ``pyproject.toml`` in the same directory. The search ends at the
    directory that holds ``.git`` (the repository root) or at the file-system root. (os.path: the
    search runs for every command, pathlib only when a file is found.)
    """
    directory = os.path.abspath(start if start is not None else os.getcwd())
    while True:
        for name in (OCISIGN_TOML, PYPROJECT_TOML):
            text = os.path.join(directory, name)
            if os.path.isfile(text):
                from pathlib import Path

                if name == OCISIGN_TOML or _has_ocisign_table(Path(text)):
                    return Path(text)
        if os.path.exists(os.path.join(directory, ".git")):
            return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load_project_config(explicit: str | os.PathLike[str] | None = None, *, start: str | None = None) -> ProjectConfig:
    """The project config for a CLI run.

    ``explicit`` (``--project-config``) wins, then ``$OCISIGN_PROJECT_CONFIG``, then the upward
    search from ``start`` (default: the working directory). ``none`` disables project config.
    """
    choice = os.fspath(explicit) if explicit is not None else os.environ.get(ENV_VAR, "")
    if choice.lower() in _DISABLED and choice:
        return ProjectConfig()
    if choice:
        return read_project_config(choice)
    found = find_project_config(start)
    return read_project_config(found) if found else ProjectConfig()
