"""Kept so that ``from ocisign.sample_image import write_image_layout`` keeps working for plugin authors.

The helpers live in :mod:`ocisign.testing.sample_image`.
"""

from __future__ import annotations

from ocisign.testing.sample_image import hello_layer, write_image_layout, write_random_layer

__all__ = ["hello_layer", "write_image_layout", "write_random_layer"]
