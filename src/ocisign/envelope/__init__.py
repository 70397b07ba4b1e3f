"""Rules shared by the Notary signature envelopes (the JWS and COSE codecs are the ``jws``/``cose`` plugins)."""
