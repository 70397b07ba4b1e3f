"""Build small but real OCI image layouts: the demo's hello-world image, test and bench inputs.

The result looks like what ``docker buildx build -o type=oci`` writes: ``oci-layout``,
``index.json`` with the tag in ``org.opencontainers.image.ref.name``, and blobs for an image
config (``CMD echo hello world``), gzip layers and the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

from ocisign.oci.model import MT_IMAGE_CONFIG, MT_INDEX, MT_MANIFEST, canonical_json, sha256_digest

__all__ = [
    "MT_LAYER_GZIP",
    "MT_LAYER_TAR",
    "hello_layer",
    "write_image_layout",
    "write_random_layer",
]

MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def _write_blob(root: Path, data: bytes) -> str:
    digest = sha256_digest(data)
    path = root / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.write_bytes(data)
    return digest


def hello_layer() -> bytes:
    """A reproducible gzip layer holding ``/hello.txt``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        body = b"hello world\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(body), 0o644, 0
        tf.addfile(info, io.BytesIO(body))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def write_random_layer(root: Path, size: int, *, seed: int = 0, chunk: int = 1 << 20) -> tuple[str, int]:
    """Stream an incompressible ``size``-byte layer blob to disk; returns (digest, size)."""
    h = hashlib.sha256()
    tmp = root / "blobs" / "sha256" / f".tmp-{seed}"
    with open(tmp, "wb") as fh:
        left = size
        while left > 0:
            piece = os.urandom(min(chunk, left))
            fh.write(piece)
            h.update(piece)
            left -= len(piece)
    tmp.rename(root / "blobs" / "sha256" / h.hexdigest())
    return "sha256:" + h.hexdigest(), size


def write_image_layout(
    root: str | os.PathLike[str],
    *,
    tag: str | None = "v1",
    layer_sizes: Sequence[int] = (),
    name: str = "hello-world",
) -> dict[str, object]:
    """Create an OCI layout at ``root`` (created if missing) holding one image.

    With no ``layer_sizes`` the image has one tiny hello-world layer; otherwise one random
    layer per size. Returns the manifest descriptor as JSON.
    """
    r = Path(root)
    (r / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    layers: list[dict[str, object]] = []
    diff_ids: list[str] = []
    if layer_sizes:
        for i, size in enumerate(layer_sizes):
            digest, sz = write_random_layer(r, size, seed=i)
            layers.append({"mediaType": MT_LAYER_TAR, "digest": digest, "size": sz})
            diff_ids.append(digest)
    else:
        layer = hello_layer()
        layers.append({"mediaType": MT_LAYER_GZIP, "digest": _write_blob(r, layer), "size": len(layer)})
        diff_ids.append(sha256_digest(gzip.decompress(layer)))
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh", "-c", "echo hello world"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": 'CMD ["/bin/sh" "-c" "echo hello world"]',
                         "empty_layer": True}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_IMAGE_CONFIG, "digest": _write_blob(r, config), "size": len(config)},
            "layers": layers,
        }
    )
    desc: dict[str, object] = {"mediaType": MT_MANIFEST, "digest": _write_blob(r, manifest), "size": len(manifest)}
    entry = dict(desc)
    if tag:
        entry["annotations"] = {
            "io.containerd.image.name": f"docker.io/library/{name}:{tag}",
            "org.opencontainers.image.created": "2024-01-01T00:00:00Z",
            "org.opencontainers.image.ref.name": tag,
        }
    entry["platform"] = {"architecture": "amd64", "os": "linux"}
    (r / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (r / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry]}))
    return desc
