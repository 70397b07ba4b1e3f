"""Built-in plugin file_key (being written)."""
