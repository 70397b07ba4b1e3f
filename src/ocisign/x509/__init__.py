"""X.509 and ASN.1: the DER reader and writer, distinguished names, signing-chain rules, test certificates."""
