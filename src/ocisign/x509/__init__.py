"""X.509 and ASN.1: the DER reader (``der``) and writer (``der_writer``), signature checks by key type
(``signatures``), extension lookup (``extensions``), distinguished names (``dn``), Go's issuer checks
(``chain``; the Notary chain rules built on them are :mod:`ocisign.envelope.chain`), test
certificates (``testcert``), per-certificate memos (``memo``), a certificate's DER and the encoding
enums (``encoding``)."""
