"""Trust policy loading/validation/selection, the file trust store, and ``ocisign policy``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocisign.config.configdir import ConfigDir
from ocisign.config.trustpolicy import (
    LEVELS,
    NoApplicablePolicyError,
    PolicyError,
    PolicyNotFoundError,
    effective_policy_path,
    ignored_member_warnings,
    load_policy,
    parse_policy,
    validate_policy,
)

POLICIES = Path("notation/test/e2e/testdata/config/trustpolicies")


def statement(**overrides: Any) -> dict[str, Any]:
    """A valid OCI statement, with fields replaced (None removes a field)."""
    base: dict[str, Any] = {
        "name": "s",
        "registryScopes": ["registry.example.com/app"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme"],
    }
    for k, v in overrides.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


def doc(*statements: dict[str, Any], version: Any = "1.0") -> dict[str, Any]:
    return {"version": version, "trustPolicies": list(statements) or [statement()]}


def problems(obj: Any, kind: str = "oci") -> list[str]:
    d, probs = validate_policy(obj, kind=kind)  # type: ignore[arg-type]
    assert (d is None) == bool(probs)
    return probs


# --- unknown members (issue 11 item 3) ------------------------------------------------------------
def _with_unknown_members() -> dict[str, Any]:
    st_ = statement(signatureVerification={"level": "strict", "overide": {"expiry": "log"}})
    st_["x-owner"] = "team a"
    return {**doc(st_), "comment": "hi"}


def test_unknown_members_are_ignored_and_named_by_json_path() -> None:
    d, probs = validate_policy(_with_unknown_members())
    assert probs == [] and d is not None
    assert d.ignored_members == ("$.comment", '$.trustPolicies[0]["x-owner"]',
                                 "$.trustPolicies[0].signatureVerification.overide")
    assert d.statements[0].actions["expiry"] == "enforce"  # the misspelt override did nothing
    warnings = ignored_member_warnings(d, "p.json")
    assert len(warnings) == 3 and all(w.startswith("p.json: ignoring unknown trust policy member $.") for w in warnings)
    assert "signatureVerification.overide" in warnings[2]
    _, probs = validate_policy(_with_unknown_members(), strict=True)
    assert probs == ["unknown member $.comment", 'unknown member $.trustPolicies[0]["x-owner"]',
                     "unknown member $.trustPolicies[0].signatureVerification.overide"]


def test_policy_import_warns_on_unknown_members_and_strict_refuses(run_cli: Any, config_dir: Path,
                                                                    tmp_path: Path) -> None:
    src = tmp_path / "p.json"
    _write(src, _with_unknown_members())
    res = run_cli("policy", "import", "--strict", str(src))
    assert res.rc == 2 and "3 problems" in res.err and "unknown member $.comment" in res.err
    assert not (config_dir / "trustpolicy.json").exists()
    res = run_cli("policy", "import", str(src))
    assert res.rc == 0, res.err
    assert "Warning: " + str(src) + ": ignoring unknown trust policy member $.comment" in res.err
    assert "$.trustPolicies[0].signatureVerification.overide" in res.err
    assert (config_dir / "trustpolicy.json").read_bytes() == src.read_bytes()
    res = run_cli("policy", "show")
    assert res.rc == 0 and "ignoring unknown trust policy member $.comment" in res.err
    # verify uses it with the same warnings (it fails later: no such artifact, nothing else)
    res = run_cli("verify", "--oci-layout", str(tmp_path / "missing") + ":v1", "--scope", "registry.example.com/app")
    assert "ignoring unknown trust policy member $.comment" in res.err
    assert "invalid trust policy" not in res.err


def test_lint_policy_hook_refuses_unknown_members(run_cli: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "trustpolicy.json", _with_unknown_members())
    res = run_cli("hook", "ocisign-lint-policy", "trustpolicy.json")
    assert res.rc == 1 and "unknown member $.comment" in res.out
    _write(tmp_path / "trustpolicy.json", doc())
    assert run_cli("hook", "ocisign-lint-policy", "trustpolicy.json").rc == 0


# --- conformance policy files ---------------------------------------------------------------------
INVALID_FILES = {
    "empty_registry_scope_trustpolicy.json": "registryScopes",
    "empty_trusted_identity_trustpolicy.json": "empty trusted identity",
    "invalid_format_trustpolicy.json": "malformed",
    "malformed_registry_scope_trustpolicy.json": "is not valid",
    "malformed_trust_store_trustpolicy.json": "invalid name",
    "malformed_trusted_identity_trustpolicy.json": "separator",
    "missing_country_trusted_identity_trustpolicy.json": '"C"',
    "missing_organization_trusted_identity_trustpolicy.json": '"O"',
    "missing_state_trusted_identity_trustpolicy.json": '"ST"',
    "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json": "only one statement",
    "multi_statements_with_the_same_name_trustpolicy.json": "unique",
    "multi_statements_with_the_same_registry_scope_trustpolicy.json": "only one statement",
    "overlapped_registry_scope_trustpolicy.json": "twice",
    "overlapped_trusted_identity_trustpolicy.json": "overlap",
    "override_integrity_for_permissive_trustpolicy.json": "integrity",
    "unset_trust_store_trustpolicy.json": "trustStores",
    "unset_trusted_identity_trustpolicy.json": "trustedIdentities",
    "wildcard_plus_other_registry_scope_trustpolicy.json": "wildcard scope",
    "wildcard_plus_other_trusted_identity_trustpolicy.json": "wildcard trusted identity",
    "wildcard_trust_store_trustpolicy.json": "separator",
}


def test_conformance_policy_files(conformance: Path) -> None:
    seen = 0
    for path in sorted((conformance / POLICIES).iterdir()):
        kind = "blob" if "blob" in path.name else "oci"
        data = path.read_bytes()
        if path.name in INVALID_FILES:
            with pytest.raises(PolicyError) as info:
                parse_policy(data, where=path.name, kind=kind)  # type: ignore[arg-type]
            assert INVALID_FILES[path.name] in str(info.value), str(info.value)
            assert len(info.value.problems) == 1
        else:
            parse_policy(data, where=path.name, kind=kind)  # type: ignore[arg-type]
        seen += 1
    assert seen >= 40


# --- rules -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        (doc(version="2.0"), "version"),
        (doc(version=None), "version is missing"),
        ({"version": "1.0", "trustPolicies": []}, "non-empty list"),
        ({"version": "1.0"}, "non-empty list"),
        ([], "JSON object"),
        ({**doc(), "Version": "1.0"}, "only in case"),
        (doc(statement(name="")), "name is missing"),
        (doc(statement(RegistryScopes=["a.io/b"])), "only in case"),
        (doc(statement(**{"tru\u017ftStores": ["ca:x"]})), "only in case"),
        (doc(statement(signatureVerification={"level": "lenient"})), "not one of strict"),
        (doc(statement(signatureVerification={})), "level is missing"),
        (doc(statement(signatureVerification="strict")), "must be an object"),
        (doc(statement(signatureVerification={"level": "strict", "override": {"integrity": "log"}})),
         "'integrity' verification can not be overridden"),
        (doc(statement(signatureVerification={"level": "strict", "override": {"expiry": "skip"}})),
         "can not be skipped"),
        (doc(statement(signatureVerification={"level": "strict", "override": {"expiry": "warn"}})),
         "override action"),
        (doc(statement(signatureVerification={"level": "strict", "override": {"bogus": "log"}})),
         "is not supported"),
        (doc(statement(signatureVerification={"level": "skip", "override": {"revocation": "log"}},
                       trustStores=None, trustedIdentities=None)), "can not be customised"),
        (doc(statement(signatureVerification={"level": "strict", "verifyTimestamp": "never"})),
         "verifyTimestamp"),
        (doc(statement(signatureVerification={"level": "skip"})), "must not have trustStores"),
        (doc(statement(trustStores=[])), "trustStores missing"),
        (doc(statement(trustStores=["ca"])), "separator"),
        (doc(statement(trustStores=["x509:acme"])), "unsupported type"),
        (doc(statement(trustStores=["ca:../x"])), "invalid name"),
        (doc(statement(trustStores="ca:acme")), "list of strings"),
        (doc(statement(trustedIdentities=["*", "x509.subject: C=US, ST=WA, O=A"])), "wildcard trusted identity"),
        (doc(statement(trustedIdentities=["x509.subject:"])), "no distinguished name"),
        (doc(statement(trustedIdentities=["x509.subject: C=US, ST=WA, O=A+CN=b"])), "multi-valued"),
        (doc(statement(trustedIdentities=["x509.subject: C=US, ST=WA, O=#04"])), "=#"),
        (doc(statement(trustedIdentities=["x509.subject: C=US, ST=WA, O=A",
                                          "x509.subject: C=US, ST=WA, O=A, CN=b"])), "overlap"),
        (doc(statement(registryScopes=[])), "registryScopes"),
        (doc(statement(registryScopes=None)), "registryScopes"),
        (doc(statement(registryScopes=["*", "registry.example.com/app"])), "wildcard scope"),
        (doc(statement(registryScopes=["registry.example.com/*"])), "wildcard"),
        (doc(statement(registryScopes=["registry.example.com"])), "is not valid"),
        (doc(statement(registryScopes=["https://registry.example.com/app"])), "is not valid"),
        (doc(statement(registryScopes=["registry.example.com/app:v1"])), "is not valid"),
        (doc(statement(registryScopes=["registry.example.com/App"])), "is not valid"),
        (doc(statement(registryScopes=["registry.example.com/app@sha256:00"])), "is not valid"),
        (doc(statement(), statement(name="t")), "only one statement"),
        (doc(statement(), statement(name="s", registryScopes=["a.io/b"])), "unique"),
    ],
)
def test_each_rule(obj: Any, fragment: str) -> None:
    probs = problems(obj)
    assert any(fragment in p for p in probs), probs


def test_every_violation_is_reported() -> None:
    obj = {
        "version": "9",
        "trustPolicies": [
            statement(signatureVerification={"level": "strict", "override": {"integrity": "log"}},
                      trustStores=["bogus"], registryScopes=["*", "a.io/b"]),
            statement(name="s", trustedIdentities=["nocolon"]),
        ],
    }
    probs = problems(obj)
    for fragment in ("version", "integrity", "separator", "wildcard scope", "unique", "nocolon"):
        assert any(fragment in p for p in probs), (fragment, probs)
    with pytest.raises(PolicyError) as info:
        parse_policy(json.dumps(obj).encode(), where="p.json")
    assert info.value.problems == probs and "problems" in str(info.value)


def test_levels_and_overrides_give_actions() -> None:
    d, _ = validate_policy(doc(statement(signatureVerification={
        "level": "permissive", "override": {"expiry": "enforce", "revocation": "skip", "authenticity": "log"}})))
    assert d is not None
    st_ = d.statements[0]
    assert st_.actions == {"integrity": "enforce", "authenticity": "log", "authenticTimestamp": "log",
                           "expiry": "enforce", "revocation": "skip"}
    assert LEVELS["audit"]["authenticity"] == "log" and LEVELS["strict"]["expiry"] == "enforce"


def test_skip_with_wildcard_scope_is_allowed_like_notation() -> None:
    d, probs = validate_policy(doc(statement(registryScopes=["*"], signatureVerification={"level": "skip"},
                                             trustStores=None, trustedIdentities=None)))
    assert d is not None and d.statements[0].is_skip, probs


def test_other_identity_prefixes_are_tolerated() -> None:
    assert not problems(doc(statement(trustedIdentities=["acme.subject:whatever"])))


# --- selection --------------------------------------------------------------------------------------
def _selector() -> Any:
    d, _ = validate_policy(doc(
        statement(name="exact", registryScopes=["registry.io/repo", "local/e2e"]),
        statement(name="any", registryScopes=["*"]),
    ))
    assert d is not None
    return d


def test_exact_scope_wins_over_wildcard() -> None:
    assert _selector().statement_for_scope("registry.io/repo").name == "exact"
    assert _selector().statement_for_scope("local/e2e").name == "exact"


@pytest.mark.parametrize(
    "scope", ["registry.io/repo/sub", "registry.io/repository", "registry.io:443/repo", "docker.io/library/x"]
)
def test_no_prefix_or_normalisation(scope: str) -> None:
    assert _selector().statement_for_scope(scope).name == "any"


def test_no_applicable_statement() -> None:
    d, _ = validate_policy(doc(statement(registryScopes=["registry.io/repo"])))
    assert d is not None
    for scope in ("registry.io/repository", "registry.io/repo/sub", "REGISTRY.io/repo"):
        with pytest.raises(NoApplicablePolicyError):
            d.statement_for_scope(scope)


def test_blob_statement_selection() -> None:
    blob = {"version": "1.0", "trustPolicies": [
        statement(name="a", registryScopes=None),
        statement(name="g", registryScopes=None, globalPolicy=True),
    ]}
    d, probs = validate_policy(blob, kind="blob")
    assert d is not None, probs
    assert d.statement_by_name("a").name == "a"
    assert d.statement_by_name(None).name == "g"
    with pytest.raises(NoApplicablePolicyError):
        d.statement_by_name("missing")
    two_globals = {"version": "1.0", "trustPolicies": [
        statement(name="a", registryScopes=None, globalPolicy=True),
        statement(name="g", registryScopes=None, globalPolicy=True),
    ]}
    assert any("globalPolicy" in p for p in problems(two_globals, "blob"))
    # registryScopes is not a blob field: ignored (as notation does), refused when strict
    d, probs = validate_policy(doc(), kind="blob")
    assert d is not None and d.ignored_members == ("$.trustPolicies[0].registryScopes",)
    _, probs = validate_policy(doc(), kind="blob", strict=True)
    assert probs == ["unknown member $.trustPolicies[0].registryScopes"]


# --- files ------------------------------------------------------------------------------------------
def _write(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj))


def test_oci_json_wins_over_trustpolicy_json(config_dir: Path) -> None:
    cfg = ConfigDir(config_dir)
    with pytest.raises(PolicyNotFoundError):
        load_policy(cfg)
    _write(cfg.trust_policy, doc(statement(name="v1")))
    assert load_policy(cfg).statements[0].name == "v1"
    _write(cfg.trust_policy_oci, doc(statement(name="v2")))
    assert effective_policy_path(cfg) == cfg.trust_policy_oci
    assert load_policy(cfg).statements[0].name == "v2"


def test_policy_file_must_be_regular(config_dir: Path, tmp_path: Path) -> None:
    cfg = ConfigDir(config_dir)
    real = tmp_path / "real.json"
    _write(real, doc())
    cfg.trust_policy.symlink_to(real)
    with pytest.raises(PolicyError, match="symlink"):
        load_policy(cfg)
    cfg.trust_policy.unlink()
    cfg.trust_policy.mkdir()
    with pytest.raises(PolicyError, match="regular file"):
        load_policy(cfg)


# --- property tests -----------------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["*", "ca:acme", "1.0", "strict", "skip", "x509.subject: C=US, ST=WA, O=A", "local/e2e"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["version", "trustPolicies", "name", "registryScopes",
                                       "signatureVerification", "level", "override", "trustStores",
                                       "trustedIdentities", "verifyTimestamp", "expiry", "x"]), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_validator_never_crashes(obj: Any) -> None:
    d, probs = validate_policy(obj)
    assert (d is None) == bool(probs)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_byte_mutations_raise_only_policy_errors(pos: int, value: int) -> None:
    data = bytearray(json.dumps(doc(statement(), statement(name="t", registryScopes=["*"]))).encode())
    data[pos % len(data)] = value
    with contextlib.suppress(PolicyError):
        parse_policy(bytes(data), where="mutated")


# --- file trust store -----------------------------------------------------------------------------------
def _store(config_dir: Path, store_type: str, name: str) -> Path:
    p = ConfigDir(config_dir).trust_store_dir(store_type, name)
    p.mkdir(parents=True)
    return p


def _pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return bytes(cert.public_bytes(Encoding.PEM))


def test_trust_store_reads_pem_and_der(config_dir: Path, make_keypair: Any, pm: Any) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    kp = make_keypair(chain_len=3)
    root, inter, leaf = kp.chain[2], kp.chain[1], kp.chain[0]
    store = _store(config_dir, "ca", "acme")
    (store / "root.der").write_bytes(root.public_bytes(Encoding.DER))
    (store / "bundle.pem").write_bytes(_pem(inter) + b"\n" + _pem(root))
    certs = pm.trust_store("ca", "acme", config_dir)
    assert len(certs) == 3
    assert pm.trust_store("ca", "missing", config_dir) is None
    # a self-signed leaf (generate-test) is allowed
    self_signed = make_keypair(chain_len=1).chain[0]
    (store / "leaf.crt").write_bytes(_pem(self_signed))
    assert len(pm.trust_store("ca", "acme", config_dir)) == 4
    # a leaf issued by someone else is not
    (store / "bad.crt").write_bytes(_pem(leaf))
    from ocisign.plugins.truststore_files import TrustStoreError

    with pytest.raises(TrustStoreError, match=r"bad\.crt.*not a CA certificate or a self-signed"):
        pm.trust_store("ca", "acme", config_dir)


@pytest.mark.parametrize("problem", ["subdir", "symlink", "empty", "garbage", "trailing", "key", "dir-symlink"])
def test_trust_store_errors(problem: str, config_dir: Path, tmp_path: Path, make_keypair: Any, pm: Any) -> None:
    from ocisign.plugins.truststore_files import TrustStoreError

    root = make_keypair(chain_len=2).chain[1]
    if problem == "dir-symlink":
        real = tmp_path / "real-store"
        real.mkdir()
        (real / "root.pem").write_bytes(_pem(root))
        parent = ConfigDir(config_dir).trust_store_dir("ca", "acme").parent
        parent.mkdir(parents=True)
        (parent / "acme").symlink_to(real)
        with pytest.raises(TrustStoreError, match="not a regular directory"):
            pm.trust_store("ca", "acme", config_dir)
        return
    store = _store(config_dir, "ca", "acme")
    (store / "root.pem").write_bytes(_pem(root))
    if problem == "subdir":
        (store / "nested").mkdir()
        match = "nested is a directory"
    elif problem == "symlink":
        (tmp_path / "x.pem").write_bytes(_pem(root))
        (store / "link.pem").symlink_to(tmp_path / "x.pem")
        match = "link.pem is a symlink"
    elif problem == "empty":
        (store / "root.pem").unlink()
        match = "no x509 certificates"
    elif problem == "garbage":
        (store / "junk.crt").write_bytes(b"not a certificate")
        match = "junk.crt"
    elif problem == "trailing":
        (store / "root.pem").write_bytes(_pem(root) + b"trailing garbage\n")
        match = "root.pem: unexpected data after the last PEM block"
    else:
        key_block = b"-----BEGIN " b"PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        (store / "root.pem").write_bytes(_pem(root) + key_block)
        match = "not a CERTIFICATE"
    with pytest.raises(TrustStoreError, match=match):
        pm.trust_store("ca", "acme", config_dir)


def test_tsa_store_holds_only_root_cas(config_dir: Path, make_keypair: Any, pm: Any, conformance: Path) -> None:
    from ocisign.plugins.truststore_files import TrustStoreError

    store = _store(config_dir, "tsa", "ts")
    shutil.copy(conformance / "notation-go/verifier/testdata/truststore/x509/tsa/test-timestamp/globalsignRoot.cer",
                store)
    assert len(pm.trust_store("tsa", "ts", config_dir)) == 1
    (store / "leaf.pem").write_bytes(_pem(make_keypair(chain_len=1).chain[0]))  # self-signed but not a CA
    with pytest.raises(TrustStoreError, match="not a root CA"):
        pm.trust_store("tsa", "ts", config_dir)


def test_trust_store_rejects_bad_type_and_name(config_dir: Path) -> None:
    from ocisign.plugins.truststore_files import TrustStoreError, load_trust_store

    with pytest.raises(TrustStoreError):
        load_trust_store(ConfigDir(config_dir), "x509", "a")
    with pytest.raises(TrustStoreError):
        load_trust_store(ConfigDir(config_dir), "ca", "../a")


# --- ocisign policy ---------------------------------------------------------------------------------------
def test_policy_import_show_force(run_cli: Any, config_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "p.json"
    _write(src, doc())
    assert run_cli("policy", "show").rc == 2
    res = run_cli("policy", "import", str(src))
    assert res.rc == 0, res.err
    assert "ca:acme does not exist" in res.err  # a warning, not an error
    assert (config_dir / "trustpolicy.json").read_bytes() == src.read_bytes()
    show = run_cli("policy", "show")
    assert show.rc == 0 and json.loads(show.out) == doc()
    # no overwrite without --force, and the old file is untouched
    _write(src, doc(statement(name="new")))
    res = run_cli("policy", "import", str(src))
    assert res.rc == 2 and "--force" in res.err
    assert json.loads((config_dir / "trustpolicy.json").read_text())["trustPolicies"][0]["name"] == "s"
    assert run_cli("policy", "import", "--force", str(src)).rc == 0
    assert json.loads((config_dir / "trustpolicy.json").read_text())["trustPolicies"][0]["name"] == "new"
    assert [p.name for p in config_dir.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_policy_import_validates_first(run_cli: Any, config_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "bad.json"
    _write(src, doc(statement(trustStores=["bogus"], registryScopes=["*", "a.io/b"]), version="2"))
    res = run_cli("policy", "import", "--force", str(src))
    assert res.rc == 2
    assert "3 problems" in res.err and res.err.count("\n  - ") == 3
    assert not (config_dir / "trustpolicy.json").exists()


def test_policy_import_writes_the_file_in_effect(run_cli: Any, config_dir: Path, tmp_path: Path) -> None:
    _write(config_dir / "trustpolicy.oci.json", doc(statement(name="old")))
    src = tmp_path / "p.json"
    _write(src, doc(statement(name="new")))
    assert run_cli("policy", "import", "--force", str(src)).rc == 0
    assert not (config_dir / "trustpolicy.json").exists()
    assert load_policy(ConfigDir(config_dir)).statements[0].name == "new"


def test_policy_show_invalid_warns(run_cli: Any, config_dir: Path) -> None:
    (config_dir / "trustpolicy.json").write_text('{"version": "1.0", "trustPolicies": []}')
    res = run_cli("policy", "show")
    assert res.rc == 0 and '"trustPolicies": []' in res.out
    assert "invalid" in res.err


def test_policy_init(run_cli: Any, config_dir: Path) -> None:
    res = run_cli("policy", "init", "--name", "n", "--trust-store", "ca:acme",
                  "--trusted-identity", "x509.subject: C=US, ST=WA, O=Acme", "--scope", "local/app")
    assert res.rc == 0, res.err
    d = load_policy(ConfigDir(config_dir))
    assert d.statements[0].registry_scopes == ("local/app",) and d.statements[0].level == "strict"
    assert run_cli("policy", "init", "--name", "n", "--trust-store", "ca:acme", "--trusted-identity", "*").rc == 2
    res = run_cli("policy", "init", "--name", "n", "--trust-store", "ca", "--trusted-identity", "*", "--force")
    assert res.rc == 2 and "separator" in res.err
    res = run_cli("policy", "init", "--name", "n", "--trust-store", "ca:acme", "--trusted-identity", "*", "--force")
    assert res.rc == 0 and load_policy(ConfigDir(config_dir)).statements[0].registry_scopes == ("*",)


def test_policy_commands_are_the_only_writers(run_cli: Any, config_dir: Path) -> None:
    before = sorted(os.listdir(config_dir))
    run_cli("policy", "show")
    assert sorted(os.listdir(config_dir)) == before
