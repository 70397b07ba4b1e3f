"""Built-in plugin cose (being written)."""
