"""Signing an artifact: the signature manifest, envelope sealing, RFC 3161 timestamping at sign time."""
