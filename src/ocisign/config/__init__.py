"""The configuration directory in notation's format (signing keys, trust policy, ``config.json``) and project config."""
