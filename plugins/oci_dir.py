"""Built-in plugin oci_dir (being written)."""
