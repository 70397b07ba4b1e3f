"""Registry authentication: anonymous, Basic and the Bearer token flow (distribution token spec).

One :class:`RegistryAuth` per registry origin. It caches the scheme the registry asked for and
bearer tokens per scope set, fetches tokens from the challenge's ``realm``, and decides where
credentials may go:

* ``Authorization`` is only ever attached to requests for the registry's own origin (scheme,
  host and port); :mod:`ocisign.registry.transport` enforces that for redirects and streamed
  uploads, :mod:`ocisign.registry.client` for upload ``Location`` and pagination ``Link`` URLs.
* A token ``realm`` must be ``http``/``https``; an ``https`` registry never sends credentials to
  an ``http`` realm; an IP-literal realm on a loopback, link-local, private or unspecified
  address is refused unless it is the registry's own host; and credentials (Basic to the token
  endpoint) are only sent to a realm on the registry's own host name, or to hosts listed in
  ``$OCISIGN_TRUSTED_REALM_HOSTS`` (comma-separated). Anonymous token requests may go to other
  public hosts, as Docker Hub's ``auth.docker.io`` needs.

Token responses are read with a size bound; ``token`` and ``access_token`` are both accepted;
a missing ``expires_in`` means 60 seconds.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock: a re-push never imports threading
import json
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence

from ocisign.errors import AuthError
from ocisign.lazy_dataclass import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    from ocisign.types import Credentials

#: token endpoint responses larger than this are refused
MAX_TOKEN_RESPONSE = 1 << 20
#: default token lifetime when the server does not say (distribution token spec)
DEFAULT_TOKEN_LIFETIME = 60.0
#: refresh a token this many seconds before it expires
TOKEN_EXPIRY_MARGIN = 5.0


class Origin:
    """Scheme, lower-case host and explicit port of a URL: the unit credentials are bound to.

    An immutable value (equal and hashable by its three parts). A plain slotted class rather than
    a dataclass: every registry client builds one, and a dataclass costs ~0.5 ms to process.
    """

    __slots__ = ("host", "port", "scheme")

    scheme: str
    host: str
    port: int

    def __init__(self, scheme: str, host: str, port: int) -> None:
        object.__setattr__(self, "scheme", scheme)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Origin is immutable: cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Origin):
            return NotImplemented
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)

    def __hash__(self) -> int:
        return hash((self.scheme, self.host, self.port))

    def __repr__(self) -> str:
        return f"Origin(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r})"

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an absolute ``http(s)`` URL (default ports filled in)."""
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            port = 443 if scheme == "https" else 80
        return cls(scheme, host, port)


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lower case) and its parameters."""

    scheme: str
    params: Mapping[str, str]


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (quoted strings may hold commas)."""
    out: list[Challenge] = []
    for value in values:
        out.extend(_parse_one_header(value))
    return out


def _parse_one_header(text: str) -> list[Challenge]:
    i, n = 0, len(text)
    out: list[Challenge] = []
    scheme: str | None = None
    params: dict[str, str] = {}

    def skip_ws(j: int) -> int:
        while j < n and text[j] in " \t":
            j += 1
        return j

    while i < n:
        i = skip_ws(i)
        start = i
        while i < n and text[i] not in " \t,=":
            i += 1
        token = text[start:i]
        i = skip_ws(i)
        if i < n and text[i] == "=" and scheme is not None and token:
            i = skip_ws(i + 1)
            if i < n and text[i] == '"':
                i += 1
                buf: list[str] = []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(text[i])
                    i += 1
                i += 1
                value = "".join(buf)
            else:
                vstart = i
                while i < n and text[i] not in ",":
                    i += 1
                value = text[vstart:i].strip()
            params[token.lower()] = value
        elif token:
            if scheme is not None:
                out.append(Challenge(scheme, params))
            scheme, params = token.lower(), {}
        i = skip_ws(i)
        if i < n and text[i] == ",":
            i += 1
    if scheme is not None:
        out.append(Challenge(scheme, params))
    return out


def _trusted_realm_hosts() -> set[str]:
    return {h.strip().lower() for h in os.environ.get("OCISIGN_TRUSTED_REALM_HOSTS", "").split(",") if h.strip()}


def check_realm(realm: str, registry: Origin, *, with_credentials: bool) -> str:
    """Validate a bearer ``realm`` URL for ``registry``; return it or raise AuthError."""
    parts = urllib.parse.urlsplit(realm)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise AuthError(f"registry {registry.host}: refusing token realm {safe_url(realm)!r} (not an http(s) URL)")
    if registry.scheme == "https" and scheme == "http":
        raise AuthError(
            f"registry {registry.host}: refusing plain-http token realm {safe_url(realm)!r} for an https registry"
        )
    import ipaddress

    host = parts.hostname.lower()
    same_host = host == registry.host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and not same_host and (
        ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified or ip.is_multicast or ip.is_reserved
    ):
        raise AuthError(
            f"registry {registry.host}: refusing token realm on internal address {host} (not the registry's host)"
        )
    if with_credentials and not same_host and host not in _trusted_realm_hosts():
        raise AuthError(
            f"registry {registry.host}: refusing to send credentials to token realm on another host {host} "
            "(add it to OCISIGN_TRUSTED_REALM_HOSTS to allow)"
        )
    return realm


def safe_url(url: str) -> str:
    """A URL without userinfo, query or fragment (safe for messages)."""
    try:
        p = urllib.parse.urlsplit(url)
        netloc = p.netloc.rsplit("@", 1)[-1]
        return urllib.parse.urlunsplit((p.scheme, netloc, p.path, "", ""))
    except ValueError:
        return "<invalid URL>"


def basic_header(creds: Credentials) -> str:
    """``Basic base64(user:password)``."""
    import base64  # only with credentials: an anonymous registry client never needs it

    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass
class _Token:
    value: str
    expires_at: float


#: fetch(method, url, headers, body) -> (status, headers, body bytes); no redirects, bounded body
TokenFetch = Callable[[str, str, Mapping[str, str], "bytes | None"], "tuple[int, Mapping[str, str], bytes]"]


class RegistryAuth:
    """Authentication state for one registry origin (thread-safe)."""

    def __init__(
        self,
        registry: Origin,
        credentials: Callable[[], Credentials | None],
        fetch: TokenFetch,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self._credentials_source = credentials
        self._credentials: Credentials | None = None
        self._credentials_loaded = False
        self._fetch = fetch
        self._clock = clock
        self._lock = _thread.RLock()
        self._scheme: str | None = None
        self._realm: str | None = None
        self._service: str | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}

    # --- credentials --------------------------------------------------------------------------
    def credentials(self) -> Credentials | None:
        """The credentials for this registry, looked up once (None: anonymous)."""
        with self._lock:
            if not self._credentials_loaded:
                creds = self._credentials_source()
                if creds is not None and not (creds.username or creds.password or creds.identity_token):
                    creds = None
                self._credentials = creds
                self._credentials_loaded = True
            return self._credentials

    @property
    def scheme(self) -> str | None:
        """``basic``, ``bearer`` or None while unknown / anonymous."""
        return self._scheme

    # --- request side -------------------------------------------------------------------------
    def authorization(self, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes``, or None (anonymous)."""
        with self._lock:
            if self._scheme == "basic":
                creds = self.credentials()
                return basic_header(creds) if creds else None
            if self._scheme == "bearer":
                key = _scope_key(scopes)
                tok = self._tokens.get(key)
                if tok is None or tok.expires_at <= self._clock():
                    tok = self._fetch_token(key)
                return f"Bearer {tok.value}"
            return None

    def on_unauthorized(self, headers: Iterable[str], scopes: Sequence[str], sent: str | None) -> None:
        """React to a 401: learn the scheme, drop stale tokens, fetch a new one.

        ``headers`` are the ``WWW-Authenticate`` values, ``sent`` the Authorization value that
        was rejected. Raises AuthError when retrying cannot help.
        """
        challenges = parse_challenges(headers)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        with self._lock:
            if bearer is not None:
                realm = bearer.params.get("realm", "")
                if not realm:
                    raise AuthError(f"registry {self.registry.host}: bearer challenge without a realm")
                check_realm(realm, self.registry, with_credentials=self.credentials() is not None)
                self._scheme = "bearer"
                self._realm = realm
                self._service = bearer.params.get("service")
                challenged = [s for s in bearer.params.get("scope", "").split(" ") if s]
                key = _scope_key([*scopes, *challenged])
                current = self._tokens.get(_scope_key(scopes))
                if (sent and current is not None and sent != f"Bearer {current.value}"
                        and current.expires_at > self._clock() and not challenged_error(bearer)):
                    return  # another thread already replaced the rejected token: retry with it
                if sent and sent.startswith("Bearer "):
                    stale = sent[len("Bearer ") :]
                    self._tokens = {k: t for k, t in self._tokens.items() if t.value != stale}
                self._tokens[_scope_key(scopes)] = self._fetch_token(key)
                return
            if basic is not None:
                creds = self.credentials()
                if creds is None or not creds.username:
                    raise AuthError(
                        f"registry {self.registry.host}: authentication required (use ocisign login or -u/-P)"
                    )
                if sent and sent.startswith("Basic "):
                    raise AuthError(f"registry {self.registry.host}: unauthorized: username or password rejected")
                self._scheme = "basic"
                return
        raise AuthError(f"registry {self.registry.host}: unauthorized (no supported authentication challenge)")

    # --- token flow ---------------------------------------------------------------------------
    def _fetch_token(self, scopes: tuple[str, ...]) -> _Token:
        assert self._realm is not None
        creds = self.credentials()
        realm = check_realm(self._realm, self.registry, with_credentials=creds is not None)
        query: list[tuple[str, str]] = []
        if self._service:
            query.append(("service", self._service))
        query.extend(("scope", s) for s in scopes)
        headers: dict[str, str] = {"Accept": "application/json"}
        body: bytes | None = None
        if creds is not None and creds.identity_token:
            form = [("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                    ("client_id", "ocisign"), *query]
            if scopes:
                form = [f for f in form if f[0] != "scope"] + [("scope", " ".join(scopes))]
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            method, url = "POST", realm
        else:
            if creds is not None:
                headers["Authorization"] = basic_header(creds)
            sep = "&" if urllib.parse.urlsplit(realm).query else "?"
            url = realm + (sep + urllib.parse.urlencode(query) if query else "")
            method = "GET"
        status, _hdrs, data = self._fetch(method, url, headers, body)
        if status in (401, 403):
            who = "credentials rejected" if creds else "anonymous access denied"
            raise AuthError(f"registry {self.registry.host}: token server refused ({status}): {who}")
        if status != 200:
            raise AuthError(f"registry {self.registry.host}: token server answered HTTP {status}")
        return self._parse_token(data)

    def _parse_token(self, data: bytes) -> _Token:
        try:
            obj = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AuthError(f"registry {self.registry.host}: token server sent invalid JSON") from None
        if not isinstance(obj, dict):
            raise AuthError(f"registry {self.registry.host}: token server sent invalid JSON")
        token = obj.get("token") or obj.get("access_token")
        if not isinstance(token, str) or not token or any(c in token for c in "\r\n"):
            raise AuthError(f"registry {self.registry.host}: token server response has no token")
        lifetime = obj.get("expires_in")
        if type(lifetime) is not int or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        margin = min(TOKEN_EXPIRY_MARGIN, float(lifetime) / 2)
        return _Token(token, self._clock() + float(lifetime) - margin)


def challenged_error(challenge: Challenge) -> bool:
    """True when a bearer challenge reports ``insufficient_scope`` (a new token is needed)."""
    return challenge.params.get("error", "") == "insufficient_scope"


def _scope_key(scopes: Iterable[str]) -> tuple[str, ...]:
    """Scopes merged per resource (``repository:r:pull`` + ``repository:r:push`` → ``pull,push``)."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, acts = scope.rpartition(":")
        if not resource:
            continue
        actions.setdefault(resource, set()).update(a for a in acts.split(",") if a)
    return tuple(f"{r}:{','.join(sorted(a))}" for r, a in sorted(actions.items()))


def repository_scope(repository: str, *actions: str) -> str:
    """``repository:<name>:<actions>``."""
    return f"repository:{repository}:{','.join(actions)}"
