"""Hook specifications: the contract between the ocisign host and its plugins.

Every hook is named ``ocisign_<noun|verb>``. Registration hooks take no arguments and yield
records from :mod:`ocisign.types`; the plugin manager merges them by name and raises
PluginError on duplicates. Lookup hooks (credentials, trust store) are ``firstresult``.
Policy evaluation collects every plugin's result and fails closed.

Plugins implement hooks with ``@ocisign.hookimpl`` and are found through the ``ocisign``
entry-point group::

    [project.entry-points.ocisign]
    acme = "ocisign_acme.plugin"

Only :mod:`ocisign.manager` calls hooks; the rest of ocisign uses its typed methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pluggy

__all__ = [
    "hookspec",
    "ocisign_envelope_formats",
    "ocisign_evaluate_policy",
    "ocisign_layout_handlers",
    "ocisign_push_finished",
    "ocisign_registry_credentials",
    "ocisign_signature_created",
    "ocisign_signers",
    "ocisign_transports",
    "ocisign_trust_store",
    "ocisign_verification_plugin",
]

if TYPE_CHECKING:
    from cryptography import x509

    from ocisign.extplugin.discovery import ExternalPlugin
    from ocisign.oci.model import Descriptor
    from ocisign.types import (
        Credentials,
        EnvelopeFormat,
        LayoutHandler,
        PolicyResult,
        SignerFactory,
        Target,
        Transport,
        VerificationContext,
    )

hookspec = pluggy.HookspecMarker("ocisign")


@hookspec
def ocisign_layout_handlers() -> Iterable[LayoutHandler]:
    """Register kinds of local OCI layout (layout discovery).

    All implementations are called; names must be unique. For a path given with
    ``--oci-layout``, exactly one handler's ``detect`` must claim it (``--layout-type NAME``
    picks one directly). Built-ins: ``oci`` (directory) and ``oci-archive`` (tar).

    **Example**::

        import ocisign
        from ocisign.types import LayoutHandler

        @ocisign.hookimpl
        def ocisign_layout_handlers():
            yield LayoutHandler(name="oci-zip", detect=lambda p: p.suffix == ".zip", open=ZipLayout)
    """
    return ()


@hookspec
def ocisign_signers(config_dir: str | None) -> Iterable[SignerFactory]:
    """Register signing backends, keyed by scheme name.

    A signing key in ``signingkeys.json`` with ``keyPath``/``certPath`` uses the built-in
    ``file`` scheme; a key with ``"pluginName": "NAME"`` uses the factory named NAME.
    ``config_dir`` is this run's config directory (None: the environment's); implementations
    may leave it out. The built-in ``notation_plugins`` yields one factory per notation plugin
    installed under ``<config_dir>/plugins``.

    **Example**::

        @ocisign.hookimpl
        def ocisign_signers():
            yield SignerFactory(name="vault", create=lambda key: VaultSigner(key["id"], key["pluginConfig"]))
    """
    return ()


@hookspec
def ocisign_envelope_formats() -> Iterable[EnvelopeFormat]:
    """Register signature envelope formats, keyed by media type (and short name).

    Built-ins: ``jws`` (``application/jose+json``) and ``cose`` (``application/cose``).

    **Example**::

        @ocisign.hookimpl
        def ocisign_envelope_formats():
            yield EnvelopeFormat(name="jws", media_type="application/jose+json", seal=seal, open=open_)
    """
    return ()


@hookspec
def ocisign_transports() -> Iterable[Transport]:
    """Register push/pull transports for remote references (the built-in ``registry``).

    ``Transport.open(host, repository, options)`` returns a Target that ``cp``, ``list``,
    ``inspect``, ``verify`` and ``sign`` use for registry references.

    **Example**::

        @ocisign.hookimpl
        def ocisign_transports():
            yield Transport(name="registry", open=RegistryTarget)
    """
    return ()


@hookspec(firstresult=True)
def ocisign_registry_credentials(host: str, config_dir: str | None) -> Credentials | None:
    """Credentials for registry ``host``; the first non-None result wins.

    ``config_dir`` is ocisign's configuration directory for this run (``--config-dir``) or
    None for the default; implementations may leave the argument out of their signature.

    The built-in reader (ocisign login store, docker ``config.json``, credential helpers,
    ``OCISIGN_USERNAME``/``OCISIGN_PASSWORD``) is ``trylast`` so site plugins go first.

    **Example**::

        @ocisign.hookimpl
        def ocisign_registry_credentials(host):
            if host == "registry.example.com":
                return Credentials(username="ci", password=os.environ["CI_REGISTRY_TOKEN"])
            return None
    """
    return None


@hookspec(firstresult=True)
def ocisign_trust_store(store_type: str, name: str, config_dir: str | None) -> Sequence[x509.Certificate] | None:
    """Certificates of trust store ``store_type:name`` (``ca``, ``signingAuthority``, ``tsa``).

    First non-None result wins; the built-in reader of ``truststore/x509/<type>/<name>/`` under
    ``config_dir`` (this run's config directory; None means the environment's) is ``trylast``.
    Return None when you do not know the store; raise an OcisignError for a broken store.
    Implementations may omit the ``config_dir`` parameter.

    **Example**::

        @ocisign.hookimpl
        def ocisign_trust_store(store_type, name):
            if (store_type, name) == ("ca", "corp"):
                return [x509.load_pem_x509_certificate(fetch_corp_root())]
            return None
    """
    return None


@hookspec(firstresult=True)
def ocisign_verification_plugin(name: str, config_dir: str | None) -> ExternalPlugin | None:
    """The installed notation verification plugin ``name`` (``io.cncf.notary.verificationPlugin``).

    First non-None result wins; None when no plugin of that name is installed. The built-in
    ``notation_plugins`` looks in ``<config_dir>/plugins/<name>/notation-<name>`` and raises
    PluginError for an unfit executable (symlink, not executable). The result must offer
    ``metadata(plugin_config)`` and ``verify_signature(request)`` like
    :class:`ocisign.extplugin.discovery.ExternalPlugin`.

    **Example**::

        @ocisign.hookimpl
        def ocisign_verification_plugin(name, config_dir):
            if name == "acme-verifier":
                return ExternalPlugin(name=name, path=Path("/opt/acme/notation-acme-verifier"))
            return None
    """
    return None


@hookspec
def ocisign_evaluate_policy(context: VerificationContext) -> PolicyResult | None:
    """Decide whether an artifact is trusted; every plugin gets a veto.

    All implementations are called. Any ``fail`` denies, ``log`` results are printed as
    warnings, and at least one ``pass`` is required (no pass at all means fail). The built-in
    ``trust_policy`` plugin runs the Notary Project verification. Return None to abstain.
    ``context.envelopes`` holds the fetched signatures, ``context.policy`` the selected
    trust-policy statement, and ``context.open_envelope`` / ``context.trust_store`` parse
    envelopes and read trust stores. A plugin that raises denies the artifact.

    **Example**::

        @ocisign.hookimpl
        def ocisign_evaluate_policy(context):
            if context.scope.startswith("prod/") and not context.signatures:
                return PolicyResult(source="acme", outcome="fail", reason="prod images must be signed")
            return None
    """
    return None


@hookspec
def ocisign_signature_created(target: Target, subject: Descriptor, signature: Descriptor) -> None:
    """Notification after a signature manifest was stored (audit logs, metrics).

    **Example**::

        @ocisign.hookimpl
        def ocisign_signature_created(target, subject, signature):
            audit.info("signed %s in %s as %s", subject.digest, target.location, signature.digest)
    """


@hookspec
def ocisign_push_finished(source: str, destination: str, pushed: Sequence[Descriptor]) -> None:
    """Notification after ``cp`` finished copying ``pushed`` descriptors to ``destination``.

    **Example**::

        @ocisign.hookimpl
        def ocisign_push_finished(source, destination, pushed):
            notify_slack(f"{destination}: {len(pushed)} manifests/blobs pushed")
    """
