"""Built-in plugin oci_archive (being written)."""
