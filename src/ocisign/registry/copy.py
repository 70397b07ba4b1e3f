"""The copy engine behind ``ocisign cp``: an artifact, and with ``recursive`` every referrer of
it (and of its child manifests, and referrers of referrers), from any Target to any Target.

Works purely through :class:`ocisign.types.Target` / :class:`ocisign.types.TargetWriter`, using
optional capabilities when a side offers them (found with ``getattr``):

* source ``blob_path(desc) -> Path``: the uploader reads the file itself (hashing it once);
* writer ``push_blob_from(desc, opener, source=, on_bytes=, verify=)``: retryable streamed
  upload, with cross-repository mount when ``source`` is on the same registry;
* writer ``blob_exists(desc)``: HEAD a blob;
* writer ``index_referrer(desc, data)``: list an already-present referrer in the referrers
  index without pushing it again;
* writer ``flush_referrers()``: write pending referrers indexes now (before the tag).

Reads first: the destination tag (when it already names the root, the root counts as present
and the tag is not pushed again), then HEADs of the manifests it cannot vouch for. Writes in
order: every blob (in parallel, ``concurrency`` workers; HEAD-skip, mount, else streamed
upload), then child manifests, indexes, the root (by digest), its referrers (each after its
subject, with their own children first), the referrers index, and the tag last. A manifest
that exists at the destination is skipped with its whole sub-graph, as oras does; if a parent
is then refused with ``MANIFEST_BLOB_UNKNOWN`` (a phantom child), its successors are pushed
again once.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock: a re-push never imports threading
import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from ocisign.errors import AuthError, ContentError, LayoutError, OcisignError, RegistryError
from ocisign.oci.model import ALL_MANIFEST_TYPES, MAX_INDEX_DEPTH, Descriptor, Manifest, parse_manifest

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from typing import IO, Any, TextIO

    from ocisign.types import Target, TargetWriter

#: refuse graphs with more nodes than this (hostile sources)
MAX_NODES = 100_000


class Node:
    """A manifest or index in the graph being copied.

    A plain slotted class rather than a dataclass: ``cp`` imports this module on every run and
    a dataclass costs ~0.5 ms to create at import.
    """

    __slots__ = ("data", "desc", "entry", "is_child", "manifest")

    def __init__(
        self, desc: Descriptor, data: bytes, manifest: Manifest, *, entry: Descriptor | None = None,
        is_child: bool = False,
    ) -> None:
        self.desc = desc
        self.data = data
        self.manifest = manifest
        #: descriptor to record for a referrer (carries artifactType and annotations)
        self.entry = entry
        #: children manifests are listed=False in layouts
        self.is_child = is_child


class CopyResult:
    """What a copy did (a plain slotted class, like :class:`Node`)."""

    __slots__ = ("bytes_sent", "pushed", "referrers", "referrers_left", "root", "seconds", "skipped", "tag")

    def __init__(self, root: Descriptor, tag: str | None) -> None:
        self.root = root
        self.tag = tag
        #: blobs and manifests sent (uploaded, mounted or PUT)
        self.pushed: list[tuple[Descriptor, str]] = []
        #: blobs and manifests the destination already had
        self.skipped: list[Descriptor] = []
        self.referrers: list[Descriptor] = []
        #: without ``recursive``: how many referrers (signatures…) the source root has that were not copied
        self.referrers_left = 0
        self.bytes_sent = 0
        self.seconds = 0.0

    def __repr__(self) -> str:
        return (f"CopyResult(root={self.root.digest}, tag={self.tag!r}, pushed={len(self.pushed)}, "
                f"skipped={len(self.skipped)}, bytes_sent={self.bytes_sent})")

    def to_json(self) -> dict[str, Any]:
        """JSON summary (``-o json``)."""

        def d(desc: Descriptor, how: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {"mediaType": desc.media_type, "digest": desc.digest, "size": desc.size}
            if how:
                out["action"] = how
            return out

        return {
            "digest": self.root.digest,
            "mediaType": self.root.media_type,
            "size": self.root.size,
            "tag": self.tag,
            "referrers": [
                {**d(r), **({"artifactType": r.artifact_type} if r.artifact_type else {})} for r in self.referrers
            ],
            "pushed": [d(x, how) for x, how in self.pushed],
            "skipped": [d(x) for x in self.skipped],
            "bytesPushed": self.bytes_sent,
            "seconds": round(self.seconds, 3),
        }


class Progress:
    """Per-blob lines and a running byte/rate line on a terminal; silent when disabled."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._lock = _thread.allocate_lock()
        self._bytes = 0
        self._total = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._line = False

    def add_total(self, n: int) -> None:
        """Announce ``n`` more bytes to transfer."""
        with self._lock:
            self._total += n

    def on_bytes(self, n: int) -> None:
        """``n`` bytes sent (negative when an attempt is rolled back)."""
        if not self.enabled:
            return
        with self._lock:
            self._bytes += n
            now = time.monotonic()
            if now - self._last >= 0.2:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self._bytes / max(now - self._start, 1e-6)
        self.stream.write(
            f"\r{_human(self._bytes)} / {_human(self._total)}  {_human(rate)}/s\x1b[K"
        )
        self.stream.flush()
        self._line = True

    def status(self, word: str, desc: Descriptor) -> None:
        """An oras-style line: ``Copied  1a2b3c4d5e6f application/…``."""
        if not self.enabled:
            return
        with self._lock:
            prefix = "\r\x1b[K" if self._line else ""
            self._line = False
            self.stream.write(f"{prefix}{word:<8}{desc.digest.split(':', 1)[-1][:12]} {desc.media_type}\n")
            self.stream.flush()

    def finish(self) -> None:
        """Clear the running line."""
        if self.enabled and self._line:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class Graph:
    """The manifests and blobs reachable from a root (and its referrers), in push order."""

    def __init__(self, src: Target) -> None:
        self.src = src
        self.nodes: dict[str, Node] = {}
        #: manifests in push order (children before parents, subjects before referrers)
        self.order: list[str] = []
        self.blobs: dict[str, Descriptor] = {}
        #: blob digests needed by each manifest (direct successors)
        self.blob_users: dict[str, list[str]] = {}

    def _count(self) -> None:
        if len(self.nodes) + len(self.blobs) > MAX_NODES:
            raise ContentError(f"{self.src.location}: more than {MAX_NODES} manifests and blobs to copy")

    def load(self, desc: Descriptor) -> Node:
        """Fetch and parse one manifest (not yet added)."""
        if desc.media_type not in ALL_MANIFEST_TYPES:
            raise ContentError(f"{self.src.location}@{desc.digest}: {desc.media_type} is not a manifest type")
        data = self.src.fetch(desc.plain())
        m = parse_manifest(data, media_type=desc.media_type, where=f"{self.src.location}@{desc.digest}")
        return Node(desc=desc.plain(), data=data, manifest=m)

    def add(self, node: Node, depth: int = 0) -> None:
        """Add ``node`` and everything under it (children first)."""
        if node.desc.digest in self.nodes:
            return
        if depth > MAX_INDEX_DEPTH:
            raise ContentError(f"{self.src.location}: indexes nested deeper than {MAX_INDEX_DEPTH} levels")
        self.nodes[node.desc.digest] = node
        self._count()
        users: list[str] = []
        for child in node.manifest.children():
            if child.media_type in ALL_MANIFEST_TYPES and node.manifest.is_index:
                if child.digest not in self.nodes:
                    sub = self.load(child)
                    sub.is_child = True
                    self.add(sub, depth + 1)
                continue
            self.blobs.setdefault(child.digest, child.plain() if not child.urls else child)
            users.append(child.digest)
        self.blob_users[node.desc.digest] = users
        self.order.append(node.desc.digest)

    def manifests_under(self, digest: str) -> Iterator[str]:
        """``digest`` and every child manifest under it."""
        stack = [digest]
        seen: set[str] = set()
        while stack:
            d = stack.pop()
            if d in seen or d not in self.nodes:
                continue
            seen.add(d)
            yield d
            node = self.nodes[d]
            if node.manifest.is_index:
                stack.extend(c.digest for c in node.manifest.manifests)

    def add_referrers(self, warn: Callable[[str], None]) -> list[Descriptor]:
        """Add every referrer (recursively) of the manifests already in the graph."""
        found: list[Descriptor] = []
        queue = list(self.order)
        i = 0
        while i < len(queue):
            subject = self.nodes[queue[i]]
            i += 1
            for ref in self.src.referrers(subject.desc):
                if ref.digest in self.nodes or ref.media_type not in ALL_MANIFEST_TYPES:
                    continue
                node = self.load(ref)
                subj = node.manifest.subject
                if subj is None or subj.digest != subject.desc.digest:
                    warn(f"{self.src.location}: ignoring referrer {ref.digest}: "
                         f"its subject is not {subject.desc.digest}")
                    continue
                node.entry = Descriptor(
                    media_type=ref.media_type,
                    digest=ref.digest,
                    size=ref.size,
                    artifact_type=ref.artifact_type or node.manifest.effective_artifact_type,
                    annotations=ref.annotations if ref.annotations is not None else node.manifest.annotations,
                )
                before = len(self.order)
                self.add(node)
                found.append(node.entry)
                queue.extend(self.order[before:])
        return found


def _file_opener(path: str | os.PathLike[str]) -> Callable[[], AbstractContextManager[IO[bytes]]]:
    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise LayoutError(f"{path}: cannot open blob: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LayoutError(f"{path}: blob is not a regular file")
        with os.fdopen(fd, "rb", buffering=0) as fh:
            yield fh

    return opener


class Copier:
    """One copy from ``src`` to ``dst``."""

    def __init__(
        self,
        src: Target,
        dst: Target,
        *,
        concurrency: int = 4,
        progress: Progress | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.concurrency = max(1, concurrency)
        self.progress = progress or Progress(enabled=False)
        self.warn = warn or (lambda text: print(f"Warning: {text}", file=sys.stderr))
        self._lock = _thread.allocate_lock()

    def copy(
        self, reference: str, *, tag: str | None, recursive: bool, expect_digest: str | None = None
    ) -> CopyResult:
        """Copy what ``reference`` names in the source; tag it ``tag`` at the destination.

        ``expect_digest`` (a destination given by digest) must equal the resolved digest;
        nothing is written otherwise.
        """
        start = time.monotonic()
        root_desc = self.src.resolve(reference)
        if expect_digest and expect_digest != root_desc.digest:
            raise ContentError(
                f"destination digest {expect_digest} does not match the source artifact {root_desc.digest}"
            )
        graph = Graph(self.src)
        root = graph.load(root_desc)
        graph.add(root)
        result = CopyResult(root=root.desc, tag=tag)
        if recursive:
            result.referrers = graph.add_referrers(self.warn)
        else:
            result.referrers_left = self._count_referrers(root.desc)
        # the tag first: when it already names the root, the root is present (no HEAD for it) and
        # the tag is not pushed again -- a re-push is then one request plus referrer checks
        tagged = bool(tag) and self._tagged_already(tag or "", root.desc.digest)
        with self.dst.writer() as writer:
            needed = self._needed_manifests(graph, root.desc.digest, present={root.desc.digest} if tagged else set())
            for digest in graph.order:
                if digest not in needed:
                    result.skipped.append(graph.nodes[digest].desc)
            blobs = {b for m in needed for b in graph.blob_users.get(m, [])}
            self._push_blobs(writer, [graph.blobs[b] for b in blobs], result)
            for digest in graph.order:
                node = graph.nodes[digest]
                if digest in needed:
                    self._push_manifest(writer, graph, node, root.desc.digest, tag, result)
                elif node.entry is not None:
                    index = getattr(writer, "index_referrer", None)
                    if index is not None:
                        index(node.entry, node.data)
                    else:
                        writer.push_manifest(node.entry, node.data, listed=True)
            flush = getattr(writer, "flush_referrers", None)
            if flush is not None:
                flush()
            if tag and not tagged:
                writer.push_manifest(root.desc, root.data, tag=tag)
        self.progress.finish()
        result.seconds = time.monotonic() - start
        return result

    def _count_referrers(self, subject: Descriptor) -> int:
        """Referrers of ``subject`` in the source (best effort: 0 when they cannot be listed)."""
        try:
            return sum(1 for r in self.src.referrers(subject) if r.media_type in ALL_MANIFEST_TYPES)
        except (OcisignError, OSError):
            return 0

    # --- existence ------------------------------------------------------------------------------
    def _tagged_already(self, tag: str, digest: str) -> bool:
        """True when the destination's ``tag`` already names ``digest`` (compared by digest: a
        re-push then writes nothing). A missing, unreadable or refused tag means the tag is
        pushed; a registry that cannot be reached or keeps failing (network, 408/429/5xx after
        the retries) fails the copy here, as the existence checks after it would."""
        try:
            return self.dst.resolve(tag).digest == digest
        except RegistryError as exc:
            status = getattr(exc, "status", None)
            if not isinstance(exc, AuthError) and (status is None or status in (408, 429) or status >= 500):
                raise
            return False
        except OcisignError:
            return False

    def _needed_manifests(self, graph: Graph, root: str, *, present: set[str]) -> set[str]:
        """Manifests the destination lacks; a present manifest covers its whole sub-graph.
        ``present``: manifests already known to be there (not asked again)."""
        tops = [root, *(d for d, n in graph.nodes.items() if n.entry is not None)]
        covered: set[str] = set()
        needed: set[str] = set()
        level = tops
        while level:
            level = [d for d in dict.fromkeys(level) if d not in covered and d not in needed]
            if not level:
                break
            ask = [d for d in level if d not in present]
            answers = dict(zip(ask, self._map(lambda d: self.dst.exists(graph.nodes[d].desc), ask), strict=True))
            nxt: list[str] = []
            for d in level:
                ok = answers.get(d, True)
                if ok:
                    covered.update(graph.manifests_under(d))
                else:
                    needed.add(d)
                    node = graph.nodes[d]
                    if node.manifest.is_index:
                        nxt.extend(c.digest for c in node.manifest.manifests if c.digest in graph.nodes)
            level = nxt
        return needed - covered

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(fn, items))

    # --- blobs ----------------------------------------------------------------------------------
    def _opener(self, desc: Descriptor) -> tuple[Callable[[], AbstractContextManager[IO[bytes]]], bool]:
        """(opener, verify): a file opener hashed by the uploader, or the source's verified stream."""
        blob_path = getattr(self.src, "blob_path", None)
        if blob_path is not None:
            path = blob_path(desc)
            if isinstance(path, (str, os.PathLike)):  # a file to open (no pathlib import for the check)
                return _file_opener(path), True
        return (lambda: self.src.open_blob(desc)), False

    def _push_blob(self, writer: TargetWriter, desc: Descriptor, result: CopyResult, *, force: bool = False) -> None:
        exists = getattr(writer, "blob_exists", None) or self.dst.exists
        if not force and exists(desc):
            with self._lock:
                result.skipped.append(desc)
            self.progress.status("Exists", desc)
            return
        if desc.urls and not self.src.exists(desc):
            self.warn(f"skipping foreign layer {desc.digest} (not in the source; it has urls)")
            return
        opener, verify = self._opener(desc)
        self.progress.add_total(desc.size)
        self.progress.status("Copying", desc)
        push_from = getattr(writer, "push_blob_from", None)
        if push_from is not None:
            how = push_from(desc, opener, source=self.src, on_bytes=self.progress.on_bytes, verify=verify)
        else:
            with opener() as fh:
                writer.push_blob(desc, fh)
            self.progress.on_bytes(desc.size)
            how = "uploaded"
        with self._lock:
            result.pushed.append((desc, how))
            if how == "uploaded":
                result.bytes_sent += desc.size
        self.progress.status("Mounted" if how == "mounted" else "Copied", desc)

    def _push_blobs(self, writer: TargetWriter, blobs: list[Descriptor], result: CopyResult) -> None:
        if not blobs:
            return
        blobs = sorted(blobs, key=lambda d: -d.size)  # biggest first: best use of the workers
        if self.concurrency == 1 or len(blobs) == 1:
            for b in blobs:
                self._push_blob(writer, b, result)
            return
        import concurrent.futures

        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [pool.submit(self._push_blob, writer, b, result) for b in blobs]
            for fut in concurrent.futures.as_completed(futures):
                exc = fut.exception()
                if exc is not None:
                    for f in futures:
                        f.cancel()
                    raise exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # --- manifests ------------------------------------------------------------------------------
    def _push_manifest(
        self, writer: TargetWriter, graph: Graph, node: Node, root: str, tag: str | None, result: CopyResult
    ) -> None:
        desc = node.entry or node.desc
        listed = node.entry is not None or (node.desc.digest == root and not tag)
        for attempt in (0, 1):
            try:
                writer.push_manifest(desc, node.data, listed=listed)
                break
            except RegistryError as exc:
                if attempt or "MANIFEST_BLOB_UNKNOWN" not in getattr(exc, "codes", ()):
                    raise
                self.warn(f"{self.dst.location}: {node.desc.digest} refused for missing content; "
                          "pushing its successors again")
                self._repush_successors(writer, graph, node, result)
        with self._lock:
            result.pushed.append((node.desc, "pushed"))
        self.progress.status("Copied", node.desc)

    def _repush_successors(self, writer: TargetWriter, graph: Graph, node: Node, result: CopyResult) -> None:
        for digest in graph.blob_users.get(node.desc.digest, []):
            self._push_blob(writer, graph.blobs[digest], result, force=True)
        if node.manifest.is_index:
            for child in node.manifest.manifests:
                sub = graph.nodes.get(child.digest)
                if sub is not None:
                    self._repush_successors(writer, graph, sub, result)
                    writer.push_manifest(sub.desc, sub.data, listed=False)


def copy(
    src: Target,
    reference: str,
    dst: Target,
    *,
    tag: str | None,
    recursive: bool = False,
    concurrency: int = 4,
    progress: Progress | None = None,
    warn: Callable[[str], None] | None = None,
    expect_digest: str | None = None,
) -> CopyResult:
    """Copy ``reference`` (and with ``recursive`` its referrers) from ``src`` to ``dst``."""
    copier = Copier(src, dst, concurrency=concurrency, progress=progress, warn=warn)
    return copier.copy(reference, tag=tag, recursive=recursive, expect_digest=expect_digest)
