"""``ocisign login`` and ``ocisign logout`` (one module serves both; ``args._command`` says which).

``login [-u USER] [-P PASSWORD | --password-stdin] [--insecure-registry|--plain-http] REGISTRY``
checks the credentials against the registry (``GET /v2/`` through the Basic or Bearer
challenge) and stores them where docker, oras, skopeo and notation look: the credential helper
named by the chosen ``config.json`` (``credHelpers[REGISTRY]`` or ``credsStore``), else its
``auths`` (plain text, with a warning; mode 0600, atomic, other entries kept). The file is
docker's ``config.json``, or ocisign's own when it configures credentials or the config dir is
dedicated (``--config-dir`` … without ``$DOCKER_CONFIG``); see
:mod:`ocisign.registry.credentials`. ``login`` says on stderr where it stored them, and drops
the host's entry from the old ``<config dir>/credentials.json``. Missing user name or password
are prompted for when standard input is a terminal. The password flag is ``-p``/``-P``/
``--password`` here (notation's ``login -p``); prefer ``--password-stdin``.

``logout REGISTRY`` forgets them again, in the same place and in the old store.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ocisign.cli.options import add_credential_options, add_transport_options, read_password
from ocisign.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


#: ``-p`` is the password here, as in ``notation login -u USER -p PASSWORD`` (see ocisign.cli.app)
PLUGIN_SHORT_FLAG = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``login`` and ``logout`` (the credential flags only matter for login)."""
    parser.add_argument("server", metavar="REGISTRY", help="registry host[:port]")
    g = parser.add_argument_group("registry options")
    add_credential_options(g, short_p=True)
    add_transport_options(g)


def _registry_host(text: str) -> str:
    from ocisign.oci.refs import parse_registry_ref
    from ocisign.registry.credentials import normalize_server

    host = normalize_server(text)
    if not host:
        raise UsageError("missing registry host")
    try:
        return parse_registry_ref(f"{host}/x").registry
    except UsageError:
        raise UsageError(f"invalid registry {text!r} (want host[:port])") from None


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Log in or out."""
    host = _registry_host(args.server)
    if getattr(args, "_command", "login") == "logout":
        return _logout(host, ctx)
    return _login(host, args, ctx)


def _store_path(ctx: CliContext) -> Path:
    """The ``config.json`` login/logout use (a dedicated config dir keeps them there)."""
    from ocisign.registry.credentials import login_config_path

    dedicated = bool(getattr(ctx.args, "config_dir", None) or ctx.project.config_dir
                     or os.environ.get("OCISIGN_CONFIG_DIR"))
    return login_config_path(ctx.config_dir.root, dedicated=dedicated)


def _login(host: str, args: argparse.Namespace, ctx: CliContext) -> int:
    from ocisign.registry.client import RegistryClient
    from ocisign.registry.credentials import LoginStore, store_credentials
    from ocisign.types import Credentials, RemoteOptions

    username = args.username
    password = read_password(args)
    interactive = sys.stdin.isatty() and not args.password_stdin
    if not username:
        if not interactive:
            raise UsageError("login needs a user name (-u/--username)")
        username = input("Username: ").strip()
    if password is None:
        if not interactive:
            raise UsageError("login needs a password (-P/--password or --password-stdin)")
        import getpass

        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("user name and password must not be empty")
    plain = bool(args.plain_http or args.insecure_registry)
    if plain and (args.insecure or args.ca_file):
        raise UsageError("--plain-http/--insecure-registry cannot be combined with --insecure or --ca-file")
    options = RemoteOptions(plain_http=plain, insecure=args.insecure, ca_file=args.ca_file,
                            username=username, password=password, timeout=args.timeout)
    client = RegistryClient(host, options)
    try:
        client.ping()
    finally:
        client.close()
    creds = Credentials(username=username, password=password)
    stored = store_credentials(_store_path(ctx), host, creds)
    if stored.helper is None:
        ctx.warn(f"your password is stored unencrypted in {stored.path}; configure a credential helper "
                 "(\"credsStore\" in that file) to avoid it")
    print(f"Credentials for {host} stored in {stored.describe()}", file=sys.stderr)
    if LoginStore(ctx.config_dir.credentials).remove(host):
        print(f"Removed the old entry for {host} from {ctx.config_dir.credentials} "
              "(ocisign no longer stores credentials there)", file=sys.stderr)
    ctx.out("Login Succeeded")
    return 0


def _logout(host: str, ctx: CliContext) -> int:
    from ocisign.registry.credentials import LoginStore, erase_credentials

    removed = erase_credentials(_store_path(ctx), host)
    removed = LoginStore(ctx.config_dir.credentials).remove(host) or removed
    if not removed:
        ctx.warn(f"not logged in to {host}")
    ctx.out("Logout Succeeded")  # as notation and docker print it either way
    return 0
