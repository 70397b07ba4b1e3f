"""The "Example" section of each command's ``--help`` (as notation and oras print one).

Keyed by the command path (``"cert add"``); :func:`epilog` formats one. Every example line is
parsed by the real parser in the tests (tests/unit/test_cli_ux.py), so they stay accurate.
"""

from __future__ import annotations

__all__ = ["EXAMPLES", "epilog"]

#: command path -> example command lines (each a full ``ocisign …`` line, optionally ``  # comment``)
EXAMPLES: dict[str, tuple[str, ...]] = {
    "sign": (
        "ocisign sign --oci-layout "
        "./hello-world@sha256:4b67f28742fd39de8c28948aa31ed0fd89237cfd5ec5aae97599ba011f7a7e5b",
        "ocisign sign --key release --signature-format cose -e 720h -m build=1234 localhost:5000/hello-world:v1",
        "ocisign sign --plugin vault --id prod-key --plugin-config region=eu localhost:5000/app:v1",
        "ocisign sign --timestamp-url http://timestamp.example.com --timestamp-root-cert ./tsa-root.pem "
        "--oci-layout ./hello-world:v1",
    ),
    "verify": (
        "ocisign verify --oci-layout ./hello-world:v1 --scope local/hello-world",
        "ocisign verify -o json -m build=1234 localhost:5000/hello-world:v1",
    ),
    "list": (
        "ocisign list --oci-layout ./hello-world:v1",
        "ocisign list -o json localhost:5000/hello-world:v1",
    ),
    "inspect": (
        "ocisign inspect --oci-layout ./hello-world:v1",
        "ocisign inspect -o json localhost:5000/hello-world:v1",
    ),
    "cert": ("ocisign cert list", "ocisign cert add -t ca -s acme ./acme-root.crt"),
    "cert add": ("ocisign cert add -t ca -s acme ./acme-root.crt ./acme-intermediate.crt",),
    "cert list": ("ocisign cert list", "ocisign cert list -t ca -s acme -o json"),
    "cert show": ("ocisign cert show -t ca -s acme acme-root.crt",),
    "cert delete": ("ocisign cert delete -t ca -s acme acme-root.crt", "ocisign cert delete -t ca -s acme --all -y"),
    "cert generate-test": ("ocisign cert generate-test --default wabbit-networks.io",),
    "cert cleanup-test": ("ocisign cert cleanup-test -y wabbit-networks.io",),
    "key": ("ocisign key list", "ocisign key add release --key-file release.key --cert-file release.crt"),
    "key add": (
        "ocisign key add release --key-file release.key --cert-file release-chain.crt --default",
        "ocisign key add kms --plugin vault --id prod-key --plugin-config region=eu",
    ),
    "key list": ("ocisign key list", "ocisign key list -o json"),
    "key update": ("ocisign key update --default release",),
    "key delete": ("ocisign key delete old-key",),
    "policy": ("ocisign policy show", "ocisign policy import ./trustpolicy.json"),
    "policy import": (
        "ocisign policy import ./trustpolicy.json",
        "ocisign policy import --force -   # the policy from standard input",
    ),
    "policy show": ("ocisign policy show", "ocisign policy show -o json"),
    "policy init": (
        "ocisign policy init --name release --trust-store ca:acme --trusted-identity '*' "
        "--scope localhost:5000/hello-world",
    ),
    "cp": (
        "ocisign cp -r --from-oci-layout ./hello-world:v1 localhost:5000/hello-world:v1",
        "ocisign cp -r localhost:5000/hello-world:v1 --to-oci-layout ./copy:v1",
        "ocisign cp -r --from-oci-layout --to-oci-layout ./hello-world:v1 ./backup.tar:v1",
    ),
    "login": ("echo \"$TOKEN\" | ocisign login -u ci --password-stdin registry.example.com",),
    "logout": ("ocisign logout registry.example.com",),
    "layout": ("ocisign layout check ./hello-world",),
    "layout check": ("ocisign layout check ./hello-world", "ocisign layout check hello-world.tar"),
    "layout extract": ("ocisign layout extract hello-world.tar ./unpacked",),
    "layout pack": ("ocisign layout pack ./hello-world hello-world.tar",),
    "plugin": ("ocisign plugin list",),
    "plugin list": ("ocisign plugin list",),
    "hook": (
        "ocisign hook ocisign-check-layout build/hello-world",
        "ocisign hook ocisign-lint-policy policy/trustpolicy.json",
    ),
    "completion": (
        "ocisign completion bash > ~/.local/share/bash-completion/completions/ocisign",
        "ocisign completion fish > ~/.config/fish/completions/ocisign.fish",
    ),
    "demo": ("ocisign demo", "ocisign demo --keep ./demo-work"),
    "version": ("ocisign version",),
}


def epilog(path: str) -> str | None:
    """The ``Example:`` section for ``path`` (None when there is none)."""
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    return "Example:\n" + "\n".join(f"  $ {line}" for line in lines)
