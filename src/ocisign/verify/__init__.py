"""Verification: the Notary verdict for an artifact or envelope (``verification``), timestamp tokens
(``timestamp_token`` parsing, ``timestamp`` verification), revocation (``revocation`` with
``revocation_results``, ``revocation_http``, ``crl_cache``)."""
