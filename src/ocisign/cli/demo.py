"""The first-five-minutes demo: ``ocisign demo``.

Builds a real hello-world OCI image layout (config, one layer, ``CMD echo hello world``, tag
``v1``, as ``docker buildx build -o type=oci`` writes it), then runs the whole workflow with a
throw-away config directory (the user's keys and trust policy are never touched):

generate a test certificate, sign, list, inspect, import a trust policy, show it, verify with a
scope, show that an unsigned copy is refused, sign with a KMS plugin (the suite's test notation
plugin, installed with ``plugin install --file``, its certificate in its own trust store), list and
verify that signature, copy the image with its signatures to a local
registry (``docker-registry`` started on loopback when it is installed), then list and verify
on the registry. Every command is printed before it runs, then its output and its stderr lines on
the same stream (one transcript, in order, also under tox), then a summary; the exit code is 1
when any step did not end as expected.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

from ocisign.errors import UsageError
from ocisign.testing.registry import find_registry_binary, free_port

CERT_NAME = "ocisign-demo"
IMAGE = "hello-world"
LAYOUT_SCOPE = f"local/{IMAGE}"
#: the stand-in KMS: plugin name, the key id it serves, its certificate's CN (= trust store name)
#: and the scope whose policy statement trusts only that certificate
KMS_PLUGIN = "kms"
KMS_KEY_ID = "alias/ocisign-demo"
KMS_CERT_NAME = "ocisign-demo-kms"
KMS_SCOPE = f"local/kms/{IMAGE}"
INSTALL_HINT = (
    "docker-registry is not installed, so the registry steps are skipped. Get it with "
    "'sudo apt-get install docker-registry' (Debian/Ubuntu; the binary is /usr/bin/docker-registry), "
    "or run any OCI registry yourself (for example 'docker run -d -p 5000:5000 registry:2') and pass "
    "'--registry localhost:5000'."
)


@dataclasses.dataclass
class Step:
    """One demo step: an ``ocisign`` command (or a built-in action) and how it ended."""

    title: str
    argv: list[str]
    expect_rc: int = 0
    rc: int | None = None
    seconds: float = 0.0
    skipped: str = ""
    stdout: str = ""
    stderr: str = ""

    @property
    def command(self) -> str:
        """The command line as a user would type it."""
        return " ".join(["ocisign", *self.argv]) if self.argv else self.title

    @property
    def ok(self) -> bool:
        """True when skipped, or when the exit code is the expected one."""
        return bool(self.skipped) or self.rc == self.expect_rc

    @property
    def status(self) -> str:
        """ok / FAILED / skipped, with a note for expected failures."""
        if self.skipped:
            return "skipped"
        if self.rc == self.expect_rc:
            return "ok" if self.expect_rc == 0 else f"ok (exit {self.rc}, as expected)"
        return f"FAILED (exit {self.rc}, expected {self.expect_rc})"

    def to_json(self) -> dict[str, object]:
        """JSON record for ``-o json``."""
        return {"title": self.title, "command": self.command, "expectedExitCode": self.expect_rc,
                "exitCode": self.rc, "ok": self.ok, "skipped": self.skipped or None,
                "seconds": round(self.seconds, 3), "stdout": self.stdout, "stderr": self.stderr}


# --- a local registry -------------------------------------------------------------------------
@contextlib.contextmanager
def local_registry(storage: Path, port: int, binary: str) -> Iterator[str]:
    """Run ``docker-registry`` on 127.0.0.1:``port`` with storage in ``storage`` (the launcher of
    :mod:`ocisign.testing.registry`, deletes enabled so the registry behaves like a real
    deployment for the referrers-tag fallback). Yields ``localhost:PORT``; the process is
    stopped on exit. A registry that does not come up is a UsageError."""
    from ocisign.testing.registry import RegistryProcess, RegistryStartError

    try:
        proc = RegistryProcess(storage, port=port, binary=binary)
    except RegistryStartError as exc:
        raise UsageError(str(exc)) from None
    try:
        yield f"localhost:{port}"
    finally:
        proc.stop()


# --- the demo -----------------------------------------------------------------------------------
def trust_policy(registry: str | None) -> dict[str, object]:
    """The demo's trust policy, strict verification: the demo certificate for the demo scopes, and
    only the KMS plugin's certificate (its own trust store) for :data:`KMS_SCOPE`, so verifying
    with that scope passes through the KMS signature alone."""
    scopes = [LAYOUT_SCOPE] + ([f"{registry}/{IMAGE}"] if registry else [])
    return {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "ocisign-demo",
                "registryScopes": scopes,
                "signatureVerification": {"level": "strict"},
                "trustStores": [f"ca:{CERT_NAME}"],
                "trustedIdentities": [f"x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN={CERT_NAME}"],
            },
            {
                "name": "ocisign-demo-kms",
                "registryScopes": [KMS_SCOPE],
                "signatureVerification": {"level": "strict"},
                "trustStores": [f"ca:{KMS_CERT_NAME}"],
                "trustedIdentities": [f"x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN={KMS_CERT_NAME}"],
            },
        ],
    }


def write_kms(directory: Path) -> Path:
    """The stand-in KMS in ``directory``: an RSA key and a test certificate (CN
    :data:`KMS_CERT_NAME`) that stay there, and the suite's test notation plugin as one executable
    serving them as key :data:`KMS_KEY_ID`. Returns the plugin executable."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ocisign.fsutil import create_exclusive
    from ocisign.testing.notation_plugin import write_installable_plugin
    from ocisign.x509.testcert import make_test_certificate

    directory.mkdir(mode=0o700)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path, cert_path = directory / f"{KMS_CERT_NAME}.key", directory / f"{KMS_CERT_NAME}.crt"
    create_exclusive(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), mode=0o600)
    cert = make_test_certificate(key, KMS_CERT_NAME)
    create_exclusive(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return write_installable_plugin(directory, KMS_PLUGIN, keys={KMS_KEY_ID: (key_path, cert_path)})


@contextlib.contextmanager
def _demo_environment(work: Path, config_dir: Path) -> Iterator[None]:
    """cwd = ``work``, ``$OCISIGN_CONFIG_DIR`` = ``config_dir``, no project config; restored on exit."""
    saved = {k: os.environ.get(k) for k in ("OCISIGN_CONFIG_DIR", "OCISIGN_PROJECT_CONFIG")}
    old_cwd = os.getcwd()
    os.environ["OCISIGN_CONFIG_DIR"] = str(config_dir)
    os.environ["OCISIGN_PROJECT_CONFIG"] = "none"
    os.chdir(work)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Demo:
    """Runs the steps and prints them (``text``) or collects them (``json``)."""

    def __init__(self, out: TextIO, *, json_output: bool) -> None:
        self.out = out
        self.json_output = json_output
        self.steps: list[Step] = []

    def say(self, text: str = "") -> None:
        """Narration (text mode only)."""
        if not self.json_output:
            print(text, file=self.out, flush=True)

    def run(self, title: str, argv: Sequence[str], *, expect_rc: int = 0) -> Step:
        """Run ``ocisign ARGV`` in-process, printing the command and its output."""
        from ocisign.cli.app import main

        step = Step(title, list(argv), expect_rc)
        self.steps.append(step)
        self.say(f"\n# {len(self.steps)}. {title}")
        self.say(f"$ {step.command}")
        start = time.perf_counter()
        if self.json_output:
            o, e = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
                step.rc = main(step.argv)
            step.stdout, step.stderr = o.getvalue(), e.getvalue()
        else:  # one stream, in order: the step's stderr (warnings, errors) goes into the transcript too
            sys.stdout.flush()
            sys.stderr.flush()
            with contextlib.redirect_stdout(self.out), contextlib.redirect_stderr(self.out):
                step.rc = main(step.argv)
            self.out.flush()
        step.seconds = time.perf_counter() - start
        if not step.ok:
            self.say(f"!! step {len(self.steps)} {step.status}")
        return step

    def skip(self, title: str, argv: Sequence[str], reason: str) -> None:
        """Record a step that cannot run here."""
        step = Step(title, list(argv), skipped=reason)
        self.steps.append(step)
        self.say(f"\n# {len(self.steps)}. {title}\n$ {step.command}\n(skipped: {reason})")

    def action(self, title: str, func: Callable[[], object]) -> Step:
        """A step done by the demo itself (building the image, writing the policy file)."""
        step = Step(title, [])
        self.steps.append(step)
        self.say(f"\n# {len(self.steps)}. {title}")
        start = time.perf_counter()
        try:
            func()
            step.rc = 0
        except OSError as exc:
            step.rc, step.stderr = 1, str(exc)
            self.say(f"!! {exc}")
        step.seconds = time.perf_counter() - start
        return step

    def summary(self) -> None:
        """The table printed at the end."""
        self.say("\n" + "=" * 78)
        self.say("Summary")
        width = max(len(s.status) for s in self.steps)
        for i, s in enumerate(self.steps, 1):
            self.say(f"{i:>2}. {s.status:<{width}}  {s.seconds:6.2f}s  {s.command}")
        failed = [s for s in self.steps if not s.ok]
        skipped = [s for s in self.steps if s.skipped]
        verdict = "demo FAILED" if failed else "demo finished: every step ended as expected"
        if skipped and not failed:
            verdict += f" ({len(skipped)} registry step(s) skipped)"
        self.say(verdict)


def run_demo(
    *,
    keep: str | os.PathLike[str] | None = None,
    registry: str | None = None,
    registry_port: int | None = None,
    no_registry: bool = False,
    json_output: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the demo; returns 0 when every step ended as expected, else 1.

    ``keep``: directory to keep the work in (must not exist or be empty); otherwise a temporary
    directory is removed at the end. ``registry``: an already running registry (``HOST:PORT``)
    instead of starting ``docker-registry``; ``registry_port``: the port to start it on.
    """
    stream = out or sys.stdout
    if keep is not None:
        work = Path(keep).absolute()
        if work.exists() and (not work.is_dir() or any(work.iterdir())):
            raise UsageError(f"--keep {keep}: directory exists and is not empty")
        work.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="ocisign-demo-")
        work = Path(cleanup.name)
    try:
        return _run(work, registry=registry, registry_port=registry_port, no_registry=no_registry,
                    json_output=json_output, out=stream, kept=keep is not None)
    finally:
        if cleanup is not None:
            cleanup.cleanup()


def _kms_steps(demo: Demo, work: Path, layout: str) -> None:
    """Signing with a KMS plugin: install it, trust its certificate, add its key, sign, list, verify."""
    demo.say("\nSigning with a KMS plugin: ./kms stands in for a KMS -- the suite's test notation plugin "
             "(./kms/notation-kms) serves a key that stays in ./kms.")
    demo.action(f"write ./kms (a stand-in KMS: its key, its certificate {KMS_CERT_NAME}, "
                f"the plugin ./kms/notation-{KMS_PLUGIN})", lambda: write_kms(work / "kms"))
    demo.run("install the notation plugin into the config dir",
             ["plugin", "install", "--file", f"./kms/notation-{KMS_PLUGIN}"])
    demo.run(f"trust the KMS certificate: its own trust store ca:{KMS_CERT_NAME}, named by the policy for {KMS_SCOPE}",
             ["cert", "add", "--type", "ca", "--store", KMS_CERT_NAME, f"./kms/{KMS_CERT_NAME}.crt"])
    demo.run("add the plugin's key as signing key 'kms'",
             ["key", "add", "kms", "--plugin", KMS_PLUGIN, "--id", KMS_KEY_ID])
    demo.run("sign the image with the KMS key (the plugin signs, ocisign builds the envelope)",
             ["sign", "--key", "kms", "--oci-layout", layout])
    demo.run("list the signatures of the image: the demo key's and the KMS key's", ["list", "--oci-layout", layout])
    demo.run(f"verify with scope {KMS_SCOPE}, whose policy trusts only the KMS certificate",
             ["verify", "--oci-layout", layout, "--scope", KMS_SCOPE])


def _run(work: Path, *, registry: str | None, registry_port: int | None, no_registry: bool,
         json_output: bool, out: TextIO, kept: bool) -> int:
    from ocisign.testing.sample_image import write_image_layout

    config_dir = work / "config"
    config_dir.mkdir(mode=0o700, exist_ok=True)
    demo = Demo(out, json_output=json_output)
    binary = None if (registry or no_registry) else find_registry_binary()
    port = registry_port or free_port()
    reg_host = registry or (f"localhost:{port}" if binary else None)
    demo.say(f"ocisign demo: working in {work}")
    demo.say(f"throw-away config dir: {config_dir} (your own keys and trust policy are not used)")

    with _demo_environment(work, config_dir):
        layout = f"./{IMAGE}:v1"
        demo.say("\nThe image: config, one layer, CMD echo hello world, tag v1 -- the layout "
                 "'docker buildx build -o type=oci,tar=false' writes.")
        demo.action(f"build ./{IMAGE} (OCI image layout, tag v1)",
                    lambda: write_image_layout(work / IMAGE, tag="v1", name=IMAGE))
        demo.run("generate a test key and self-signed certificate, make it the default signing key",
                 ["cert", "generate-test", "--default", CERT_NAME])
        demo.run("sign the image in the layout (JWS envelope, stored as a referrer in the layout)",
                 ["sign", "--oci-layout", layout])
        demo.run("list the signatures of the image", ["list", "--oci-layout", layout])
        demo.run("inspect the signature: algorithm, signed attributes, certificate chain",
                 ["inspect", "--oci-layout", layout])
        policy_file = work / "trustpolicy.json"
        demo.action("write ./trustpolicy.json (trust the demo certificate for the demo scopes, "
                    f"the KMS certificate for {KMS_SCOPE})",
                    lambda: policy_file.write_text(json.dumps(trust_policy(reg_host), indent=4) + "\n"))
        demo.run("import the trust policy into the config dir", ["policy", "import", "./trustpolicy.json"])
        demo.run("show the trust policy in effect", ["policy", "show"])
        demo.run("verify the image in the layout against the policy (scope for a local layout)",
                 ["verify", "--oci-layout", layout, "--scope", LAYOUT_SCOPE])
        demo.action(f"build ./{IMAGE}-unsigned (the same image without a signature)",
                    lambda: write_image_layout(work / f"{IMAGE}-unsigned", tag="v1", name=IMAGE))
        demo.run("verification fails closed: the unsigned copy is refused (exit code 1 expected)",
                 ["verify", "--oci-layout", f"./{IMAGE}-unsigned:v1", "--scope", LAYOUT_SCOPE], expect_rc=1)
        _kms_steps(demo, work, layout)

        remote = f"{reg_host}/{IMAGE}:v1" if reg_host else f"localhost:{port}/{IMAGE}:v1"
        registry_steps: list[tuple[str, list[str]]] = [
            ("copy the image with its signatures to the registry",
             ["cp", "-r", "--from-oci-layout", layout, remote]),
            ("list the signatures on the registry", ["list", remote]),
            ("verify the image on the registry (scope = registry/repository)", ["verify", remote]),
        ]
        if reg_host is None:
            reason = "--no-registry" if no_registry else "docker-registry is not installed"
            if not no_registry:
                demo.say(f"\nNote: {INSTALL_HINT}")
            for title, argv in registry_steps:
                demo.skip(title, argv, reason)
        else:
            with contextlib.ExitStack() as stack:
                if binary:
                    demo.say(f"\n# starting {binary} on 127.0.0.1:{port} (storage in {work / 'registry'})")
                    try:
                        stack.enter_context(local_registry(work / "registry", port, binary))
                    except UsageError as exc:
                        demo.say(f"!! {exc}")
                        demo.steps.append(Step("start docker-registry", [], rc=1, stderr=str(exc)))
                        registry_steps = []
                for title, argv in registry_steps:
                    demo.run(title, argv)

    demo.summary()
    if kept:
        demo.say(f"\nKept everything in {work}: ./{IMAGE} (signed layout), ./config (config dir), "
                 f"./trustpolicy.json, ./kms (the stand-in KMS). Try: OCISIGN_CONFIG_DIR={config_dir} "
                 f"ocisign inspect --oci-layout {work / IMAGE}:v1")
    failed = [s for s in demo.steps if not s.ok]
    if json_output:
        print(json.dumps({"ok": not failed, "workDir": str(work) if kept else None,
                          "registry": reg_host, "steps": [s.to_json() for s in demo.steps]}, indent=2),
              file=out)
    return 1 if failed else 0
