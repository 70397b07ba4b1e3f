"""OCI content: the model (media types, descriptors, manifests), references, layout directories and tars.

The public names of :mod:`ocisign.oci.model` are re-exported here, so ``from ocisign.oci import
Descriptor`` keeps working for plugin authors; the other modules of this room are internal.
"""

from __future__ import annotations

from ocisign.oci.model import *  # noqa: F403
from ocisign.oci.model import __all__ as __all__
