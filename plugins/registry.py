"""Built-in plugin registry (being written)."""
