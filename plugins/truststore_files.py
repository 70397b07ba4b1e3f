"""Built-in plugin truststore_files (being written)."""
