"""Reference parsing: ``DIR:TAG`` / ``DIR@DIGEST`` for layouts, ``HOST/REPO[:TAG][@DIGEST]`` for registries.

Layout references follow notation: split at the **last** ``@`` if there is one, else at the
last ``:`` (a lone Windows drive colon ``C:\\x`` is not a separator).
"""

from __future__ import annotations

from ocisign.errors import BadReferenceError, ContentError
from ocisign.lazy_dataclass import dataclass
from ocisign.lazy_re import lazy_re
from ocisign.oci.model import validate_digest

TAG_RE = lazy_re(r"\A[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")
_HOST_RE = lazy_re(
    r"\A(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?\Z"
)
_SCHEME_RE = lazy_re(r"\A[A-Za-z][A-Za-z0-9+.-]*://")
_REPO_RE = lazy_re(r"\A[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*\Z")


@dataclass(frozen=True)
class LayoutRef:
    """A parsed ``--oci-layout`` reference."""

    path: str
    #: tag or digest as typed
    reference: str

    @property
    def is_digest(self) -> bool:
        """True for ``@sha256:…`` references."""
        return self.reference.startswith(("sha256:", "sha512:"))

    def __str__(self) -> str:
        sep = "@" if self.is_digest else ":"
        return f"{self.path}{sep}{self.reference}"


def _check_digest(value: str, text: str) -> str:
    try:
        return validate_digest(value, where=f"reference {text!r}")
    except ContentError as exc:
        raise BadReferenceError(str(exc)) from None


_TAG_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TAG_REST = _TAG_FIRST | frozenset(".-")


def is_tag(text: str) -> bool:
    """``TAG_RE.match(text)`` (``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``) without compiling the regex."""
    return 0 < len(text) <= 128 and text[0] in _TAG_FIRST and all(c in _TAG_REST for c in text[1:])


def parse_layout_ref(text: str) -> LayoutRef:
    """Split ``PATH:TAG`` or ``PATH@DIGEST`` (last ``@``, else last ``:``)."""
    if "@" in text:
        path, _, ref = text.rpartition("@")
        if not path:
            raise BadReferenceError(f"reference {text!r}: missing oci-layout file path")
        return LayoutRef(path, _check_digest(ref, text))
    idx = text.rfind(":")
    if idx == 1 and text[0].isalpha() and text[2:3] in ("\\", "/"):
        idx = -1  # Windows drive letter
    if idx < 0:
        raise BadReferenceError(f"reference {text!r}: missing tag or digest (use PATH:TAG or PATH@sha256:DIGEST)")
    path, ref = text[:idx], text[idx + 1 :]
    if not path:
        raise BadReferenceError(f"reference {text!r}: missing oci-layout file path")
    if not ref:
        raise BadReferenceError(f"reference {text!r}: missing tag or digest")
    if not is_tag(ref):
        raise BadReferenceError(f"reference {text!r}: invalid tag {ref!r}")
    return LayoutRef(path, ref)


@dataclass(frozen=True)
class RegistryRef:
    """A parsed registry reference ``host[:port]/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The digest when given, else the tag (``latest`` when neither was typed)."""
        return self.digest or self.tag or "latest"

    @property
    def scope(self) -> str:
        """``registry/repository``: the trust-policy scope."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> RegistryRef:
        """The same repository pinned to ``digest``."""
        return RegistryRef(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        out = self.scope
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_registry_ref(text: str) -> RegistryRef:
    """Parse ``host[:port]/repo[:tag][@digest]``; the host part is required (as in notation)."""
    scheme = _SCHEME_RE.match(text)
    if scheme:
        raise BadReferenceError(
            f"reference {text!r}: drop the {scheme.group(0)} scheme: a reference is REGISTRY/REPO:TAG, "
            f"e.g. {text[scheme.end():]!r}"
        )
    rest, digest = text, None
    if "@" in rest:
        rest, _, d = rest.rpartition("@")
        digest = _check_digest(d, text)
    slash = rest.find("/")
    if slash <= 0:
        raise BadReferenceError(f"reference {text!r}: want REGISTRY/REPOSITORY[:TAG|@DIGEST]")
    host, path = rest[:slash], rest[slash + 1 :]
    tag = None
    colon = path.rfind(":")
    if colon >= 0:
        path, tag = path[:colon], path[colon + 1 :]
        if not TAG_RE.match(tag):
            raise BadReferenceError(f"reference {text!r}: invalid tag {tag!r}")
    if not _HOST_RE.match(host):
        raise BadReferenceError(f"reference {text!r}: invalid registry {host!r}")
    if not _REPO_RE.match(path):
        raise BadReferenceError(f"reference {text!r}: invalid repository {path!r} (lowercase path components)")
    return RegistryRef(host, path, tag, digest)


def looks_like_registry_ref(text: str) -> bool:
    """True when ``text`` is a registry reference rather than a local path."""
    if _SCHEME_RE.match(text):
        return True  # parse_registry_ref explains that the scheme must go
    head = text.split("/", 1)[0]
    if "/" not in text or text.startswith((".", "/", "~")):
        return False
    return "." in head or ":" in head or head == "localhost"
