"""``ocisign version``."""

from __future__ import annotations

import argparse
import platform

from ocisign import __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace, ctx: object) -> int:
    """Print the version like ``notation version``."""
    print("ocisign - sign and verify OCI artifacts with Notary Project signatures.\n")
    print(f"Version:        {__version__}")
    print(f"Python version: {platform.python_version()}")
    return 0
