"""The RFC 4514 DN parser and notation's identity rules (ocisign.x509.dn)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocisign.x509.dn import DNError, format_dn, is_subset_dn, parse_dn, parse_identity_dn

# --- go-ldap ParseDN -----------------------------------------------------------------------------


def test_parse_simple_in_written_order() -> None:
    assert parse_dn("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US") == (
        (("CN", "e2e"),), (("O", "Notary"),), (("L", "Seattle"),), (("ST", "WA"),), (("C", "US"),),
    )


def test_spaces_around_separators_are_trimmed() -> None:
    assert parse_dn("  CN = e2e ,  O=Notary  ;C=US ") == ((("CN", "e2e"),), (("O", "Notary"),), (("C", "US"),))


def test_white_space_is_trimmed_like_go() -> None:
    assert parse_dn("\tCN=a\t,\u00a0O=b ") == ((("CN", "a"),), (("O", "b"),))
    assert parse_dn('CN=a"b<c>') == ((("CN", 'a"b<c>'),),)  # go-ldap v3.4 accepts these unescaped


def test_multi_valued_rdn_is_one_rdn() -> None:
    assert parse_dn("CN=a+O=b,C=US") == ((("CN", "a"), ("O", "b")), (("C", "US"),))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("CN=a\\,b", "a,b"),
        ("CN=a\\+b", "a+b"),
        ("CN=a\\;b", "a;b"),
        ("CN=a\\\\b", "a\\b"),
        ('CN=a\\"b', 'a"b'),
        ("CN=a\\<b\\>", "a<b>"),
        ("CN=\\#x", "#x"),
        ("CN=a\\=b", "a=b"),
        ("CN=a=b", "a=b"),  # only the first '=' separates type and value
        ("CN=\\41\\42", "AB"),
        ("CN=\\c3\\a9", "é"),
        ("CN=a\\ ", "a "),  # escaped trailing space survives
        ("CN=a\\  ", "a "),
        ("CN=\\ a", " a"),
        ("CN=a\\\\ ", "a\\"),  # even number of backslashes: the space is not escaped
        ("CN=", ""),
    ],
)
def test_escapes(text: str, value: str) -> None:
    assert parse_dn(text) == ((("CN", value),),)


@pytest.mark.parametrize(
    "text",
    [
        "CN=\\",  # dangling escape
        "CN=a\\4",  # half a hex escape at the end
        "CN=\\zz",  # not hex
        "CN=\\é1",
        "CN=a\x00b",
        "CN=a,",  # trailing separator
        "CN",  # no '='
        ",CN=a",
        "CN=a,,O=b",
        "CN=a,+O=b",
        "CN=#0403414243",  # hex-encoded values are never decoded
        "CN=a\ud800",  # lone surrogate
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(DNError):
        parse_dn(text)


def test_empty_dn_has_no_rdns() -> None:
    assert parse_dn("") == ()
    assert parse_dn(" \t ") == ()


# --- notation identity rules ---------------------------------------------------------------------


def test_identity_dn_map_with_state_alias() -> None:
    assert parse_identity_dn("C=US, S=WA, O=Notary, CN=e2e") == {"C": "US", "ST": "WA", "O": "Notary", "CN": "e2e"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("C=US,ST=WA,O=#0403", "=#"),
        ("C=US,ST=WA,O=a+CN=b", "multi-valued"),
        ("C=US,ST=WA,O=a,O=b", "repeats"),
        ("C=US,ST=WA,S=WA,O=a", "repeats"),
        ("C=US,O=a", "'ST'"),
        ("ST=WA,O=a", "'C'"),
        ("C=US,ST=WA", "'O'"),
        ("c=US,st=WA,o=a", "'C'"),  # attribute types are case-sensitive
        ("C=,ST=WA,O=a", "'C'"),  # mandatory values must be non-empty
        ("", "'C'"),
        ("C=US,ST=WA,O=a\\", "not a valid"),
    ],
)
def test_identity_rules(text: str, fragment: str) -> None:
    with pytest.raises(DNError) as info:
        parse_identity_dn(text)
    assert fragment.strip("'") in str(info.value)


def test_subset_match_is_per_attribute_and_case_sensitive() -> None:
    leaf = parse_identity_dn("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US")
    assert is_subset_dn(parse_identity_dn("C=US, ST=WA, O=Notary"), leaf)
    assert is_subset_dn(parse_identity_dn("O=Notary, C=US, ST=WA, CN=e2e"), leaf)  # order does not matter
    assert not is_subset_dn(parse_identity_dn("C=US, ST=WA, O=notary"), leaf)
    assert not is_subset_dn(parse_identity_dn("C=US, ST=WA, O=Notary, CN=e2e2"), leaf)
    assert not is_subset_dn(parse_identity_dn("C=US, ST=WA, O=Notary, OU=x"), leaf)


def _leaf_dn(*attrs: tuple[str, str]) -> dict[str, str]:
    """Render a certificate subject as Go does, then parse it with the identity rules."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    oids = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "O": NameOID.ORGANIZATION_NAME,
            "CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "L": NameOID.LOCALITY_NAME,
            "E": NameOID.EMAIL_ADDRESS}
    from ocisign.x509.chain import go_dn_string

    name = x509.Name([x509.NameAttribute(oids[k], v) for k, v in attrs])
    return parse_identity_dn(go_dn_string(name))


def test_identity_confusion_is_not_a_match() -> None:
    """reliability B6.7: escaped separators and look-alike values never satisfy an identity."""
    policy = parse_identity_dn("C=US, ST=WA, O=Notary")
    # a CN that contains ",O=Notary" is still one CN, and the cert has another O
    tricky = _leaf_dn(("C", "US"), ("ST", "WA"), ("O", "Evil"), ("CN", "e2e,O=Notary"))
    assert tricky["CN"] == "e2e,O=Notary" and tricky["O"] == "Evil"
    assert not is_subset_dn(policy, tricky)
    assert not is_subset_dn(policy, _leaf_dn(("C", "US"), ("ST", "WA"), ("O", "Notary Evil")))
    assert not is_subset_dn(policy, _leaf_dn(("C", "US"), ("ST", "WA"), ("O", " Notary")))
    assert is_subset_dn(policy, _leaf_dn(("C", "US"), ("ST", "WA"), ("O", "Notary"), ("CN", "x")))


def test_certificate_subjects_notation_cannot_parse_are_errors() -> None:
    with pytest.raises(DNError, match="=#"):  # emailAddress renders as OID=#hex in Go
        _leaf_dn(("C", "US"), ("ST", "WA"), ("O", "Notary"), ("E", "a@b.c"))
    with pytest.raises(DNError, match="multi-valued"):  # two O values become one multi-valued RDN
        _leaf_dn(("C", "US"), ("ST", "WA"), ("O", "A"), ("O", "B"))


# --- property tests ------------------------------------------------------------------------------

_values = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_parser_raises_only_dn_errors(text: str) -> None:
    for fn in (parse_dn, parse_identity_dn):
        with contextlib.suppress(DNError):
            fn(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('CNOST=,;+\\"#<> abc01\x00')), max_size=40))
def test_parser_on_dn_alphabet_raises_only_dn_errors(text: str) -> None:
    try:
        rdns = parse_dn(text)
    except DNError:
        return
    assert all(len(rdn) >= 1 for rdn in rdns)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"C": _values.filter(bool), "ST": _values.filter(bool), "O": _values.filter(bool)},
        optional={"CN": _values, "OU": _values, "L": _values},
    )
)
def test_format_then_parse_round_trips(attrs: dict[str, str]) -> None:
    assert parse_identity_dn(format_dn(attrs)) == attrs


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries({"C": _values.filter(bool), "ST": _values.filter(bool), "O": _values.filter(bool)}),
    st.sampled_from(["C", "ST", "O"]),
    _values,
)
def test_changed_value_never_matches(attrs: dict[str, str], key: str, other: str) -> None:
    """A leaf whose attribute differs from the identity's in any way is not a match."""
    leaf = dict(attrs)
    leaf[key] = other
    if other == attrs[key]:
        return
    identity = parse_identity_dn(format_dn(attrs))
    try:
        parsed_leaf = parse_identity_dn(format_dn(leaf))
    except DNError:
        return  # an empty mandatory value is refused outright
    assert not is_subset_dn(identity, parsed_leaf)
