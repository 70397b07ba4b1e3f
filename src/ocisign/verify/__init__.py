"""Verification: the Notary verdict for an artifact or envelope, timestamp tokens, revocation (OCSP/CRL)."""
