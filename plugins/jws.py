"""Built-in plugin jws (being written)."""
