"""``ocisign completion bash|zsh|fish|powershell``: print a shell completion script (as ``notation
completion`` does), generated from the command parsers by :mod:`ocisign.cli.completion`.

::

    eval "$(ocisign completion bash)"                                   # ~/.bashrc
    eval "$(ocisign completion zsh)"                                    # ~/.zshrc
    ocisign completion fish > ~/.config/fish/completions/ocisign.fish
    ocisign completion powershell | Out-String | Invoke-Expression     # $PROFILE
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shell."""
    from ocisign.cli.completion import SHELLS

    parser.add_argument("shell", choices=SHELLS, help="the shell to print a completion script for")


def run(args: argparse.Namespace, ctx: object) -> int:
    """Print the script on stdout; reads and writes nothing else."""
    import sys

    from ocisign.cli.completion import script

    sys.stdout.write(script(args.shell))
    return 0
