"""Helpers for tests, benchmarks, the demo and plugin authors (pytest-free, loopback only).

- :mod:`ocisign.testing.registry`: a real ``docker-registry`` on a free loopback port (plain HTTP,
  TLS with a generated CA, htpasswd auth) and a token server.
- :mod:`ocisign.testing.fault_proxy`: a fault-injecting proxy in front of a registry.
- :mod:`ocisign.testing.tsa`: an RFC 3161 timestamping authority issuing real tokens.
- :mod:`ocisign.testing.sample_image`: small but real OCI image layouts.
- :mod:`ocisign.testing.loopback`: the quiet threaded HTTP server and handler base those peers share.
- :mod:`ocisign.testing.import_probe`: which modules ``ocisign ARGV`` imports (start-up tests).

Nothing in the product imports this room except the demo, which starts its local registry
with :class:`ocisign.testing.registry.RegistryProcess`.
"""
