"""External Notary Project plugins (``notation-<name>`` executables) and their protocol.

The "Plugin Extensibility" specification: a plugin is an executable
``<config>/plugins/<name>/notation-<name>`` that ocisign runs as ``notation-<name> <command>``
with a JSON request on stdin; it answers JSON on stdout (exit 0) or an error response on stderr
(non-zero exit). Rooms:

* :mod:`ocisign.extplugin.protocol`: commands, capabilities, request builders and validated
  response records (contract version ``1.0``);
* :mod:`ocisign.extplugin.runner`: running one command (no shell, timeout, 64 MiB output cap,
  environment without registry credentials, error responses turned into one line);
* :mod:`ocisign.extplugin.discovery`: finding installed plugins and asking their metadata;
* :mod:`ocisign.extplugin.install`: ``plugin install`` (file, .zip, .tar.gz, https URL) and ``uninstall``;
* :mod:`ocisign.extplugin.signing`: Signers for ``SIGNATURE_GENERATOR.RAW`` and ``.ENVELOPE``;
* :mod:`ocisign.extplugin.verification`: the ``io.cncf.notary.verificationPlugin`` steps of verification.

The built-in pluggy plugin ``ocisign.plugins.notation_plugins`` bridges them into the hooks.
"""
