"""Built-in plugin credentials (being written)."""
