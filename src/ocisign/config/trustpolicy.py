"""Trust policy documents: loading, full validation, and statement selection.

Which file is read
------------------
The OCI policy lives in the config directory. Like notation 2.x (notation-go ``main``),
``trustpolicy.oci.json`` **wins** when it exists; otherwise ``trustpolicy.json`` (the only file
notation 1.x knows) is read. Blob policies are ``trustpolicy.blob.json``. A policy file must be
a regular file (symlinks and directories are refused) and at most :data:`MAX_POLICY_SIZE` bytes.

Validation
----------
The whole document is validated before any verification, and every violated rule is reported
(one message each) in a :class:`PolicyError`. The rules are notation's
(``notation-go/verifier/trustpolicy``):

* ``version`` is ``"1.0"``; ``trustPolicies`` is a non-empty list; statement names are
  non-empty and unique;
* unknown members (top level, in a statement, in ``signatureVerification``) are ignored as
  notation ignores them, but recorded by JSON path in
  :attr:`TrustPolicyDocument.ignored_members` so callers warn (a typo like ``"overide"`` must
  not pass silently); with ``strict=True`` (``policy import --strict``, the lint-policy hook)
  they are problems. A member that differs from a known one only in case is always a problem:
  Go's decoder (notation) would read it as the known member;
* ``signatureVerification.level`` is ``strict|permissive|audit|skip``; ``override`` maps
  ``authenticity|authenticTimestamp|expiry|revocation`` to ``enforce|log|skip``; ``integrity``
  can never be overridden, only ``revocation`` can be ``skip``, level ``skip`` takes no
  override; ``verifyTimestamp`` is ``always`` or ``afterCertExpiry``;
* level ``skip`` has no trust stores or identities; every other level needs both;
* trust stores are ``ca|signingAuthority|tsa:NAME`` with NAME matching ``[a-zA-Z0-9_.-]+``;
* trusted identities: ``*`` alone, or ``PREFIX:VALUE``; ``x509.subject:`` values must parse
  as notation identity DNs (:mod:`ocisign.x509.dn`) and must not overlap (subset of one another);
* OCI registry scopes: at least one per statement, ``*`` alone in its statement, otherwise a
  fully qualified ``registry/repository`` without wildcards, and no scope in two statements.

Selection
---------
:meth:`TrustPolicyDocument.statement_for_scope` matches the scope string exactly; an exact
match wins over ``*``; no match raises :class:`NoApplicablePolicyError`. No normalisation is
done (``docker.io/library/x`` is not ``x``).

The module stays over 500 lines on purpose: the policy model, notation's validation rules and
the file-selection rules are one format's definition, read together when notation changes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ocisign.config.configdir import TRUST_STORE_TYPES, ConfigDir
from ocisign.errors import ConfigError, ContentError, VerificationError
from ocisign.goformat import go_quote as _q
from ocisign.lazy_dataclass import dataclass, field
from ocisign.lazy_re import lazy_re
from ocisign.oci.model import parse_json
from ocisign.x509.dn import DNError, is_subset_dn, parse_identity_dn

if TYPE_CHECKING:  # paths are only annotated here: verify does not import pathlib for the policy
    from pathlib import Path

PolicyKind = Literal["oci", "blob"]

SUPPORTED_VERSIONS = ("1.0",)
LEVEL_NAMES = ("strict", "permissive", "audit", "skip")
#: checks whose action a level decides, in notation's order
VALIDATION_TYPES = ("integrity", "authenticity", "authenticTimestamp", "expiry", "revocation")
ACTIONS = ("enforce", "log", "skip")
VERIFY_TIMESTAMP_OPTIONS = ("always", "afterCertExpiry")
#: level name -> check -> action (notation's ``trustpolicy.go``)
LEVELS: Mapping[str, Mapping[str, str]] = {
    "strict": {t: "enforce" for t in VALIDATION_TYPES},
    "permissive": {"integrity": "enforce", "authenticity": "enforce", "authenticTimestamp": "log",
                   "expiry": "log", "revocation": "log"},
    "audit": {"integrity": "enforce", "authenticity": "log", "authenticTimestamp": "log",
              "expiry": "log", "revocation": "log"},
    "skip": {t: "skip" for t in VALIDATION_TYPES},
}
WILDCARD = "*"
X509_SUBJECT = "x509.subject"
MAX_POLICY_SIZE = 4 * 1024 * 1024

_STORE_NAME_RE = lazy_re(r"\A[a-zA-Z0-9_.-]+\Z")
# distribution reference regexes, as notation's validateRegistryScopeFormat uses them
_DOMAIN_RE = lazy_re(
    r"\A(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?\Z"
)
_REPOSITORY_RE = lazy_re(
    r"\A[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)*)?(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)*)?)*)?\Z"
)

_DOC_KEYS = frozenset({"version", "trustPolicies"})
_OCI_STATEMENT_KEYS = frozenset(
    {"name", "registryScopes", "signatureVerification", "trustStores", "trustedIdentities"}
)
_BLOB_STATEMENT_KEYS = frozenset(
    {"name", "signatureVerification", "trustStores", "trustedIdentities", "globalPolicy"}
)
_SV_KEYS = frozenset({"level", "override", "verifyTimestamp"})



class PolicyError(ConfigError):
    """The trust policy document is missing, unreadable or invalid; ``problems`` lists every rule broken."""

    def __init__(self, where: str, problems: Sequence[str]) -> None:
        self.where = where
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = f"invalid trust policy {where}: {self.problems[0]}"
        else:
            msg = f"invalid trust policy {where} ({len(self.problems)} problems): " + "; ".join(self.problems)
        super().__init__(msg)


class PolicyNotFoundError(ConfigError):
    """No trust policy file exists in the config directory."""


class NoApplicablePolicyError(VerificationError):
    """No statement of the policy applies to the artifact's scope (or blob policy name)."""


@dataclass(frozen=True)
class TrustStoreRef:
    """A ``type:name`` trust store reference from a statement."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@dataclass(frozen=True, kw_only=True)
class TrustPolicyStatement:
    """A validated trust policy statement."""

    name: str
    registry_scopes: tuple[str, ...] = ()
    #: the level as written (``strict`` … ``skip``)
    level: str
    #: effective action (enforce/log/skip) for each of :data:`VALIDATION_TYPES`, overrides applied
    actions: Mapping[str, str]
    override: Mapping[str, str] = field(default_factory=dict)
    verify_timestamp: str = "always"
    trust_stores: tuple[TrustStoreRef, ...] = ()
    trusted_identities: tuple[str, ...] = ()
    #: parsed ``x509.subject`` identities, in order
    x509_identities: tuple[Mapping[str, str], ...] = ()
    global_policy: bool = False

    @property
    def is_skip(self) -> bool:
        """True for level ``skip``: nothing is verified."""
        return self.level == "skip"

    @property
    def level_label(self) -> str:
        """``strict`` … or ``custom (permissive + override)`` for messages."""
        return f"custom ({self.level} + override)" if self.override else self.level

    def action(self, check: str) -> str:
        """enforce/log/skip for a validation type."""
        return self.actions[check]

    def stores_of_type(self, store_type: str) -> list[TrustStoreRef]:
        """Trust stores of ``store_type`` in policy order."""
        return [s for s in self.trust_stores if s.type == store_type]

    @property
    def trusts_any_identity(self) -> bool:
        """True when trustedIdentities is ``["*"]``."""
        return WILDCARD in self.trusted_identities

    def to_json(self) -> dict[str, Any]:
        """The statement as a JSON object (notation's field names)."""
        sv: dict[str, Any] = {"level": self.level}
        if self.override:
            sv["override"] = dict(self.override)
        out: dict[str, Any] = {"name": self.name}
        if self.registry_scopes:
            out["registryScopes"] = list(self.registry_scopes)
        out["signatureVerification"] = sv
        if self.trust_stores:
            out["trustStores"] = [str(s) for s in self.trust_stores]
        if self.trusted_identities:
            out["trustedIdentities"] = list(self.trusted_identities)
        if self.global_policy:
            out["globalPolicy"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class TrustPolicyDocument:
    """A validated trust policy document."""

    version: str
    statements: tuple[TrustPolicyStatement, ...]
    kind: PolicyKind = "oci"
    #: the file it came from, if any
    path: Path | None = None
    #: JSON paths (``$.trustPolicies[0].overide``) of unknown members that were ignored
    ignored_members: tuple[str, ...] = ()

    def statement_for_scope(self, scope: str) -> TrustPolicyStatement:
        """The statement for ``scope``: exact match first, then ``*``; else NoApplicablePolicyError."""
        problem = scope_format_problem(scope)
        if problem:
            raise NoApplicablePolicyError(problem)
        wildcard: TrustPolicyStatement | None = None
        for st in self.statements:
            if scope in st.registry_scopes:
                return st
            if WILDCARD in st.registry_scopes:
                wildcard = st
        if wildcard is not None:
            return wildcard
        raise NoApplicablePolicyError(
            f"artifact scope {_q(scope)} has no applicable trust policy statement "
            "(registryScopes are matched exactly; add the scope or '*' to a statement)"
        )

    def statement_by_name(self, name: str | None) -> TrustPolicyStatement:
        """Blob policies: the statement called ``name``, or the ``globalPolicy`` statement when None."""
        for st in self.statements:
            if (name is None and st.global_policy) or (name is not None and st.name == name):
                return st
        if name is None:
            raise NoApplicablePolicyError("no trust policy statement has globalPolicy set; name one with --policy-name")
        raise NoApplicablePolicyError(f"no trust policy statement is named {_q(name)}")


# --- validation ---------------------------------------------------------------------------------
def scope_format_problem(scope: object) -> str | None:
    """Why ``scope`` is not a fully qualified ``registry/repository`` (None when it is)."""
    hint = ("make sure it is a fully qualified repository without scheme, tag or digest, "
            "e.g. registry.example.com/my/repo or local/my-layout")
    if not isinstance(scope, str):
        return "registry scope must be a string"
    if "*" in scope:
        return f"registry scope {_q(scope)} contains a wildcard; use '*' alone or a fully qualified scope"
    domain, sep, repository = scope.partition("/")
    if not sep or not domain or not _DOMAIN_RE.match(domain) or not repository or not _REPOSITORY_RE.match(repository):
        return f"registry scope {_q(scope)} is not valid: {hint}"
    return None


_IDENT_RE = lazy_re(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")


def _member_path(parent: str, key: str) -> str:
    """JSON path of member ``key`` of ``parent`` (``$.a``, ``$["a b"]``)."""
    import json

    return f"{parent}.{key}" if _IDENT_RE.match(key) else f"{parent}[{json.dumps(key)}]"


@dataclass
class _Members:
    """Where unknown members go: problems (strict, or a case variant of a known member) or ignored."""

    strict: bool
    problems: list[str]
    ignored: list[str] = field(default_factory=list)

    def check(self, obj: Mapping[str, Any], known: frozenset[str], parent: str) -> None:
        folded = {k.casefold(): k for k in known}  # as Go's EqualFold (U+017F long s is "s")
        for key in obj:
            if key in known:
                continue
            path = _member_path(parent, key)
            twin = folded.get(key.casefold())
            if twin is not None:
                self.problems.append(f"member {path} differs from {_q(twin)} only in case "
                                     f"(notation would read it as {_q(twin)}); spell it {_q(twin)}")
            elif self.strict:
                self.problems.append(f"unknown member {path}")
            else:
                self.ignored.append(path)


def ignored_member_warnings(doc: TrustPolicyDocument, where: str | None = None) -> list[str]:
    """One warning per unknown member that was ignored (``policy import --strict`` refuses them)."""
    label = where or (str(doc.path) if doc.path else "trust policy")
    return [f"{label}: ignoring unknown trust policy member {m} (check its spelling; "
            "'ocisign policy import --strict' refuses unknown members)" for m in doc.ignored_members]


def _str_list(value: Any, where: str, problems: list[str]) -> list[str] | None:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        problems.append(f"{where} must be a list of strings")
        return None
    return value


_LevelInfo = tuple[str, dict[str, str], dict[str, str], str]


def _validate_level(st_name: str, sv: Any, problems: list[str], members: _Members | None = None,
                    path: str = "$") -> _LevelInfo | None:
    """(level, actions, override, verifyTimestamp) or None after recording problems."""
    where = f"statement {_q(st_name)}"
    if not isinstance(sv, dict):
        problems.append(f"{where}: signatureVerification must be an object with a level")
        return None
    (members or _Members(strict=True, problems=problems)).check(sv, _SV_KEYS, f"{path}.signatureVerification")
    ok = True
    level = sv.get("level")
    if level is None or level == "":
        problems.append(f"{where}: signatureVerification.level is missing; use one of {', '.join(LEVEL_NAMES)}")
        ok = False
    elif not isinstance(level, str) or level not in LEVEL_NAMES:
        problems.append(f"{where}: signatureVerification.level {_q(level)} is not one of {', '.join(LEVEL_NAMES)}")
        ok = False
    vt = sv.get("verifyTimestamp")
    if vt is None or vt == "":
        vt = "always"
    elif not isinstance(vt, str) or vt not in VERIFY_TIMESTAMP_OPTIONS:
        problems.append(
            f"{where}: signatureVerification.verifyTimestamp {_q(vt)} is not one of "
            f"{', '.join(VERIFY_TIMESTAMP_OPTIONS)}"
        )
        ok = False
    override_raw = sv.get("override")
    override: dict[str, str] = {}
    if override_raw is not None:
        if not isinstance(override_raw, dict):
            problems.append(f"{where}: signatureVerification.override must be an object")
            ok = False
        else:
            if override_raw and level == "skip":
                problems.append(f"{where}: level 'skip' can not be customised with override")
                ok = False
            for key, value in override_raw.items():
                if key not in VALIDATION_TYPES:
                    problems.append(
                        f"{where}: override of {_q(key)} is not supported; use one of {', '.join(VALIDATION_TYPES[1:])}"
                    )
                    ok = False
                    continue
                if not isinstance(value, str) or value not in ACTIONS:
                    problems.append(
                        f"{where}: override action {_q(value)} for {_q(key)} is not one of {', '.join(ACTIONS)}"
                    )
                    ok = False
                    continue
                if key == "integrity":
                    problems.append(f"{where}: 'integrity' verification can not be overridden")
                    ok = False
                    continue
                if value == "skip" and key != "revocation":
                    problems.append(f"{where}: {_q(key)} verification can not be skipped (only revocation can)")
                    ok = False
                    continue
                override[key] = value
    if not ok or not isinstance(level, str):
        return None
    actions = dict(LEVELS[level])
    actions.update(override)
    return level, actions, override, vt


def _validate_trust_stores(where: str, stores: list[str], problems: list[str]) -> list[TrustStoreRef]:
    out: list[TrustStoreRef] = []
    for value in stores:
        store_type, sep, name = value.partition(":")
        if not sep:
            problems.append(f"{where}: trust store {_q(value)} is missing the ':' separator (want TYPE:NAME, "
                            f"TYPE one of {', '.join(TRUST_STORE_TYPES)})")
        elif store_type not in TRUST_STORE_TYPES:
            problems.append(f"{where}: trust store {_q(value)} has unsupported type {_q(store_type)} "
                            f"(want one of {', '.join(TRUST_STORE_TYPES)})")
        elif not _STORE_NAME_RE.match(name):
            problems.append(f"{where}: trust store {_q(value)} has an invalid name {_q(name)} (want [a-zA-Z0-9_.-]+)")
        else:
            out.append(TrustStoreRef(store_type, name))
    return out


def _validate_identities(where: str, identities: list[str], problems: list[str]) -> list[tuple[str, dict[str, str]]]:
    parsed: list[tuple[str, dict[str, str]]] = []
    if len(identities) > 1 and WILDCARD in identities:
        problems.append(f"{where}: the wildcard trusted identity '*' can not be combined with other identities")
    for identity in identities:
        if identity == "":
            problems.append(f"{where}: has an empty trusted identity")
            continue
        if identity == WILDCARD:
            continue
        prefix, sep, value = identity.partition(":")
        if not sep:
            problems.append(f"{where}: trusted identity {_q(identity)} is missing the ':' separator "
                            f"(want {X509_SUBJECT}:<DN> or '*')")
            continue
        if prefix != X509_SUBJECT:
            continue  # other prefixes are for plugins; the built-in matcher ignores them
        if value.strip() == "":
            problems.append(f"{where}: trusted identity {_q(identity)} has no distinguished name")
            continue
        try:
            parsed.append((identity, parse_identity_dn(value)))
        except DNError as exc:
            problems.append(f"{where}: trusted identity {_q(identity)} is invalid: {exc}")
    for i, (raw1, dn1) in enumerate(parsed):
        for j, (raw2, dn2) in enumerate(parsed):
            if i < j and (is_subset_dn(dn1, dn2) or is_subset_dn(dn2, dn1)):
                problems.append(
                    f"{where}: trusted identities {_q(raw1)} and {_q(raw2)} overlap (one is a subset of the other)"
                )
    return parsed


def _validate_scopes(
    where: str, name_label: str, value: Any, scope_owner: dict[str, list[str]], problems: list[str]
) -> list[str]:
    """The registryScopes of an OCI statement (problems appended); records each scope's owner."""
    raw_scopes = _str_list(value, f"{where}: registryScopes", problems)
    if raw_scopes is None:
        return []
    if not raw_scopes:
        problems.append(f"{where}: registryScopes is missing or empty; list at least one scope or '*'")
    if len(raw_scopes) > 1 and WILDCARD in raw_scopes:
        problems.append(f"{where}: the wildcard scope '*' can not be combined with other scopes")
    for scope in raw_scopes:
        if scope != WILDCARD:
            problem = scope_format_problem(scope)
            if problem:
                problems.append(f"{where}: {problem}")
        owners = scope_owner.setdefault(scope, [])
        if name_label not in owners:
            owners.append(name_label)
        else:
            problems.append(f"{where}: registry scope {_q(scope)} is listed twice")
    return list(raw_scopes)


def _validate_statement(
    idx: int,
    raw: dict[str, Any],
    *,
    kind: PolicyKind,
    names: dict[str, int],
    scope_owner: dict[str, list[str]],
    global_names: list[str],
    problems: list[str],
    members: _Members,
) -> TrustPolicyStatement | None:
    """Validate statement ``idx``: problems are appended, the statement returned when it has none.

    ``names``, ``scope_owner`` and ``global_names`` collect what the document-wide rules
    (unique names, one statement per scope, one global policy) need.
    """
    allowed = _OCI_STATEMENT_KEYS if kind == "oci" else _BLOB_STATEMENT_KEYS
    name = raw.get("name")
    if not isinstance(name, str) or name == "":
        problems.append(f"trustPolicies[{idx}]: name is missing or empty; every statement needs a unique name")
        name_label = f"#{idx}"
    else:
        name_label = name
        names[name] = names.get(name, 0) + 1
        if names[name] == 2:
            problems.append(f"statement name {_q(name)} is used by more than one statement; names must be unique")
    where = f"statement {_q(name_label)}"
    st_path = f"$.trustPolicies[{idx}]"
    members.check(raw, allowed, st_path)
    n_before = len(problems)
    level_info = _validate_level(name_label, raw.get("signatureVerification"), problems, members, st_path)
    stores = _str_list(raw.get("trustStores"), f"{where}: trustStores", problems)
    identities = _str_list(raw.get("trustedIdentities"), f"{where}: trustedIdentities", problems)
    refs: list[TrustStoreRef] = []
    parsed_ids: list[tuple[str, dict[str, str]]] = []
    if level_info is not None and stores is not None and identities is not None:
        if level_info[0] == "skip":
            if stores or identities:
                problems.append(f"{where}: level 'skip' must not have trustStores or trustedIdentities; "
                                "remove them to skip verification")
        elif not stores or not identities:
            missing = [k for k, v in (("trustStores", stores), ("trustedIdentities", identities)) if not v]
            problems.append(f"{where}: {' and '.join(missing)} missing or empty; level "
                            f"{_q(level_info[0])} needs both")
    if stores:
        refs = _validate_trust_stores(where, stores, problems)
    if identities:
        parsed_ids = _validate_identities(where, identities, problems)
    scopes: list[str] = []
    if kind == "oci":
        scopes = _validate_scopes(where, name_label, raw.get("registryScopes"), scope_owner, problems)
    global_policy = False
    if kind == "blob":
        gp = raw.get("globalPolicy", False)
        if not isinstance(gp, bool):
            problems.append(f"{where}: globalPolicy must be true or false")
        else:
            global_policy = gp
            if gp:
                global_names.append(name_label)
    if len(problems) != n_before or level_info is None:
        return None
    level, actions, override, vt = level_info
    return TrustPolicyStatement(
        name=name_label,
        registry_scopes=tuple(scopes),
        level=level,
        actions=actions,
        override=override,
        verify_timestamp=vt,
        trust_stores=tuple(refs),
        trusted_identities=tuple(identities or ()),
        x509_identities=tuple(p for _, p in parsed_ids),
        global_policy=global_policy,
    )


def validate_policy(
    obj: Any, *, kind: PolicyKind = "oci", strict: bool = False
) -> tuple[TrustPolicyDocument | None, list[str]]:
    """Validate a decoded policy document; returns (document or None, problems).

    Unknown members are ignored (listed in the document's ``ignored_members``) unless ``strict``.
    """
    problems: list[str] = []
    members = _Members(strict=strict, problems=problems)
    label = "oci" if kind == "oci" else "blob"
    if not isinstance(obj, dict):
        return None, ["the document must be a JSON object with version and trustPolicies"]
    members.check(obj, _DOC_KEYS, "$")
    version = obj.get("version")
    if version is None or version == "":
        problems.append(f"version is missing; the supported version is {_q(SUPPORTED_VERSIONS[0])}")
    elif version not in SUPPORTED_VERSIONS:
        problems.append(f"version {_q(version)} is not supported (want {_q(SUPPORTED_VERSIONS[0])})")
    raw_statements = obj.get("trustPolicies")
    if not isinstance(raw_statements, list) or not raw_statements:
        problems.append(f"trustPolicies must be a non-empty list of {label} trust policy statements")
        return None, problems
    statements: list[TrustPolicyStatement] = []
    names: dict[str, int] = {}
    scope_owner: dict[str, list[str]] = {}
    global_names: list[str] = []
    for idx, raw in enumerate(raw_statements):
        if not isinstance(raw, dict):
            problems.append(f"trustPolicies[{idx}] must be an object")
            continue
        statement = _validate_statement(idx, raw, kind=kind, names=names, scope_owner=scope_owner,
                                        global_names=global_names, problems=problems,
                                        members=members)
        if statement is not None:
            statements.append(statement)
    for scope, owners in scope_owner.items():
        if len(owners) > 1:
            problems.append(
                f"registry scope {_q(scope)} is used by statements {', '.join(map(_q, owners))}; "
                "a scope may belong to only one statement"
            )
    if len(global_names) > 1:
        problems.append(f"statements {', '.join(map(_q, global_names))} all set globalPolicy; only one may")
    if problems:
        return None, problems
    return TrustPolicyDocument(version=str(version), statements=tuple(statements), kind=kind,
                               ignored_members=tuple(members.ignored)), []


def parse_policy(data: bytes, *, where: str, kind: PolicyKind = "oci", path: Path | None = None,
                 strict: bool = False) -> TrustPolicyDocument:
    """Decode and validate policy bytes; raises PolicyError listing every problem (see validate_policy)."""
    try:
        obj = parse_json(data, where="document")
    except ContentError as exc:
        raise PolicyError(where, [f"malformed trust policy: {exc}"]) from None
    doc, problems = validate_policy(obj, kind=kind, strict=strict)
    if doc is None:
        raise PolicyError(where, problems)
    # the fields given, not dataclasses.replace (which would process the record with the dataclasses module)
    return TrustPolicyDocument(version=doc.version, statements=doc.statements, kind=doc.kind, path=path,
                               ignored_members=doc.ignored_members)


# --- files --------------------------------------------------------------------------------------
def policy_paths(config: ConfigDir, kind: PolicyKind = "oci") -> list[Path]:
    """Candidate files in precedence order (the first that exists is used)."""
    if kind == "blob":
        return [config.root / "trustpolicy.blob.json"]
    return [config.trust_policy_oci, config.trust_policy]


def effective_policy_path(config: ConfigDir, kind: PolicyKind = "oci") -> Path | None:
    """The policy file in effect (``trustpolicy.oci.json`` wins over ``trustpolicy.json``), or None."""
    for p in policy_paths(config, kind):
        if os.path.lexists(p):
            return p
    return None


def read_policy_file(path: Path) -> bytes:
    """Read a policy file: regular file only (no symlink/dir), bounded size."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise PolicyNotFoundError(f"trust policy {path} does not exist") from None
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read: {exc.strerror}"]) from None
    if not stat.S_ISREG(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise PolicyError(str(path), [f"the trust policy is {what} (symlinks and directories are not supported)"])
    if st.st_size > MAX_POLICY_SIZE:
        raise PolicyError(str(path), [f"the file is larger than {MAX_POLICY_SIZE} bytes"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read: {exc.strerror}"]) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_POLICY_SIZE + 1)
    if len(data) > MAX_POLICY_SIZE:
        raise PolicyError(str(path), [f"the file is larger than {MAX_POLICY_SIZE} bytes"])
    return data


def load_policy(config: ConfigDir, kind: PolicyKind = "oci") -> TrustPolicyDocument:
    """Load and validate the effective policy of ``config`` (see the module docstring for precedence)."""
    path = effective_policy_path(config, kind)
    if path is None:
        names = " or ".join(p.name for p in policy_paths(config, kind))
        raise PolicyNotFoundError(
            f"no trust policy: {names} not found in {config.root} "
            "(create one with 'ocisign policy import FILE' or 'ocisign policy init')"
        )
    return parse_policy(read_policy_file(path), where=str(path), kind=kind, path=path)


def load_effective_policy(config: ConfigDir, project_policy: Path | None = None) -> TrustPolicyDocument:
    """The trust policy in effect: the project config's ``trust-policy`` file when it names one
    (``project_policy``), else the config dir's (:func:`load_policy`). ConfigError when missing or invalid."""
    if project_policy is not None:
        return parse_policy(read_policy_file(project_policy), where=str(project_policy), path=project_policy)
    return load_policy(config)


def missing_trust_stores(doc: TrustPolicyDocument, config: ConfigDir) -> list[str]:
    """``type:name`` references whose directory does not exist under ``truststore/x509`` (for warnings)."""
    out: list[str] = []
    for st in doc.statements:
        for ref in st.trust_stores:
            if not config.trust_store_dir(ref.type, ref.name).is_dir() and str(ref) not in out:
                out.append(str(ref))
    return out


def policy_file_warnings(path: Path) -> list[str]:
    """Warnings about who may change the policy file (notation does not check; reliability B7.9)."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    out: list[str] = []
    if st.st_mode & stat.S_IWOTH:
        out.append(f"trust policy {path} is writable by every user; anyone can change what is trusted")
    elif st.st_mode & stat.S_IWGRP:
        out.append(f"trust policy {path} is writable by its group")
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid not in (uid, 0):
        out.append(f"trust policy {path} is owned by another user (uid {st.st_uid})")
    return out
