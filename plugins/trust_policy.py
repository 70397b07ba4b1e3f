"""Built-in plugin trust_policy (being written)."""
