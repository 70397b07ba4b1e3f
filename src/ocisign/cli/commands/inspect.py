"""``ocisign inspect``: every signature of an artifact, as notation 1.3's tree or JSON.

Tree (``-o tree``, the default; ``text`` is accepted as an alias)::

    Inspecting all signatures for signed artifact
    ./hello-world@sha256:…
    └── application/vnd.cncf.notary.signature
        └── sha256:<signature manifest>
            ├── media type: application/jose+json
            ├── signature algorithm: RSASSA-PSS-SHA-256
            ├── signed attributes
            ├── user defined attributes
            ├── unsigned attributes
            ├── certificates
            └── signed artifact

JSON (``-o json``) has notation 1.3.2's shape: ``{"mediaType": …, "Signatures": [{"mediaType",
"digest", "signatureAlgorithm", "signedAttributes", "userDefinedAttributes",
"unsignedAttributes", "certificates", "signedArtifact"}]}``. Text times use Go's ANSIC layout,
JSON times RFC 3339. A signature that cannot be read is reported on stderr and the command
exits 1 after printing the others. Read-only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ocisign.errors import OcisignError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import datetime as dt
    from typing import Any

    from ocisign.cli.context import CliContext
    from ocisign.goformat import TreeNode
    from ocisign.oci.model import Descriptor, Manifest
    from ocisign.types import EnvelopeContent, Target

TimeFormat = Callable[["dt.datetime"], str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``inspect [--oci-layout] REF [-o tree|json] [--max-signatures N] [--layout-type T]``."""
    from ocisign.cli.commands.list import add_reference_arguments

    add_reference_arguments(parser, verb="inspect signatures of")
    parser.add_argument("-o", "--output", choices=["tree", "text", "json"], default="tree",
                        help="output format: tree (default; 'text' is the same) or json")


def go_value(value: Any) -> str:
    """``fmt.Sprint`` of a JSON-decoded value, as notation prints extended attributes."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mant, _, exp = text.partition("e")
            text = f"{mant}e{'+' if not exp.startswith('-') else '-'}{exp.lstrip('+-').zfill(2)}"
        return text.removesuffix(".0") if "e" not in text else text
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def certificate_info(certs: Any, fmt_time: TimeFormat) -> list[dict[str, str]]:
    """``[{"SHA256Fingerprint", "issuedTo", "issuedBy", "expiry"}]`` for each certificate."""
    from ocisign.x509.chain import cert_fingerprint_sha256, go_dn_string

    out = []
    for cert in certs:
        out.append({
            "SHA256Fingerprint": cert_fingerprint_sha256(cert),
            "issuedTo": go_dn_string(cert.subject),
            "issuedBy": go_dn_string(cert.issuer),
            "expiry": fmt_time(cert.not_valid_after_utc),
        })
    return out


_IMPRINT_HASHES = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384",
                   "2.16.840.1.101.3.4.2.3": "sha512"}


def timestamp_info(token: bytes, signature: bytes, fmt_time: TimeFormat) -> dict[str, Any]:
    """``{"timestamp": "[lo, hi]", "certificates": […]}`` or ``{"error": …}`` for a timestamp token.

    Like notation's inspect (tspclient-go ``ParseSignedToken`` + ``Info().Validate``): the token is
    parsed and its message imprint must hash ``signature``; the token's own signature and TSA chain
    are not verified here (``verify`` does that).
    """
    import hashlib

    from ocisign.verify.timestamp_token import OID_TST_INFO, parse_token, parse_tst_info

    try:
        token_info = parse_token(token)
        if token_info.content_type != OID_TST_INFO:
            raise OcisignError(f"unexpected content type: {token_info.content_type}")
        tst = parse_tst_info(token_info.content)
        name = _IMPRINT_HASHES.get(tst.hash_alg)
        if name is None:
            raise OcisignError(f"unrecognized hash algorithm: {tst.hash_alg}")
        if hashlib.new(name, signature).digest() != tst.hashed_message:
            raise OcisignError("mismatched message")
    except OcisignError as exc:
        return {"error": f"failed to parse timestamp countersignature: {exc.diagnostics()}"}
    lo, hi = tst.gen_time - tst.accuracy, tst.gen_time + tst.accuracy
    out: dict[str, Any] = {"timestamp": f"[{fmt_time(lo)}, {fmt_time(hi)}]"}
    certs = certificate_info(token_info.certificates, fmt_time)
    if certs:
        out["certificates"] = certs
    return out


def signature_output(desc: Descriptor, content: EnvelopeContent, fmt_time: TimeFormat) -> dict[str, Any]:
    """One signature in notation's ``signatureOutput`` shape (Go field order)."""
    from ocisign.envelope.encoding import parse_json_strict
    from ocisign.goformat import sorted_map
    from ocisign.oci.model import descriptor_from_json

    payload = parse_json_strict(content.payload, where="signature payload")
    if not isinstance(payload, dict) or "targetArtifact" not in payload:
        raise OcisignError("signature payload has no targetArtifact")
    target = descriptor_from_json(payload["targetArtifact"], where="signature payload targetArtifact")
    signing_time = content.authentic_signing_time or content.signing_time
    signed: dict[str, str] = {"signingScheme": content.signing_scheme}
    if signing_time is not None:
        signed["signingTime"] = fmt_time(signing_time)
    if content.expiry is not None:
        signed["expiry"] = fmt_time(content.expiry)
    for k, v in content.extended_attributes.items():
        signed[k] = go_value(v)
    unsigned: dict[str, Any] = {}
    if content.signing_agent:
        unsigned["signingAgent"] = content.signing_agent
    if content.timestamp_token:
        unsigned["timestampSignature"] = timestamp_info(content.timestamp_token, content.signature, fmt_time)
    return {
        "mediaType": content.media_type,
        "digest": desc.digest,
        "signatureAlgorithm": content.signature_algorithm,
        "signedAttributes": sorted_map(signed),
        "userDefinedAttributes": sorted_map(dict(target.annotations)) if target.annotations else None,
        "unsignedAttributes": sorted_map(unsigned),
        "certificates": certificate_info(content.certificate_chain, fmt_time),
        # the payload descriptor without annotations (they are shown as user defined attributes)
        "signedArtifact": {k: v for k, v in target.to_json().items() if k != "annotations"},
    }


def read_signature(ctx: CliContext, target: Target, desc: Descriptor, manifest: Manifest) -> EnvelopeContent:
    """Fetch and open the envelope of a signature manifest (verifies its cryptographic signature)."""
    from ocisign.oci.model import MAX_ENVELOPE_SIZE
    from ocisign.oci.signatures import envelope_layer

    layer = envelope_layer(manifest, where=f"{target.location}@{desc.digest}")
    formats = ctx.pm.envelope_formats()
    if layer.media_type not in formats:
        known = ", ".join(sorted(formats)) or "none"
        raise OcisignError(f"{target.location}@{desc.digest}: unsupported signature envelope media type "
                           f"{layer.media_type!r} (supported: {known})")
    fmt = formats[layer.media_type]
    blob = target.fetch(layer, max_size=MAX_ENVELOPE_SIZE)
    return fmt.open(blob)


def _add_certs(node: TreeNode, name: str, certs: list[dict[str, str]]) -> None:
    certs_node = node.add(name)
    for c in certs:
        cn = certs_node.add_pair("SHA256 fingerprint", c["SHA256Fingerprint"])
        cn.add_pair("issued to", c["issuedTo"])
        cn.add_pair("issued by", c["issuedBy"])
        cn.add_pair("expiry", c["expiry"])


def _add_map(node: TreeNode, m: dict[str, str] | None) -> None:
    if not m:
        node.add("(empty)")
        return
    for k, v in m.items():
        node.add_pair(k, v)


def render_tree(ref: str, signatures: list[dict[str, Any]]) -> str:
    """notation's inspect tree for ``signatures`` (already formatted with ANSIC times)."""
    from ocisign.goformat import TreeNode
    from ocisign.oci.model import MT_NOTARY_SIGNATURE

    root = TreeNode(ref)
    sig_root = root.add(MT_NOTARY_SIGNATURE)
    for sig in signatures:
        node = sig_root.add(sig["digest"])
        node.add_pair("media type", sig["mediaType"])
        node.add_pair("signature algorithm", sig["signatureAlgorithm"])
        _add_map(node.add("signed attributes"), sig["signedAttributes"])
        _add_map(node.add("user defined attributes"), sig["userDefinedAttributes"])
        unsigned = node.add("unsigned attributes")
        for k, v in sig["unsignedAttributes"].items():
            if isinstance(v, str):
                unsigned.add_pair(k, v)
                continue
            ts = unsigned.add("timestamp signature")
            if "error" in v:
                ts.add_pair("error", v["error"])
                continue
            ts.add_pair("timestamp", v["timestamp"])
            _add_certs(ts, "certificates", v.get("certificates", []))
        _add_certs(node, "certificates", sig["certificates"])
        art = node.add("signed artifact")
        art.add_pair("media type", sig["signedArtifact"]["mediaType"])
        art.add_pair("digest", sig["signedArtifact"]["digest"])
        art.add_pair("size", str(sig["signedArtifact"]["size"]))
    return "Inspecting all signatures for signed artifact\n" + root.render()


def run_one(args: argparse.Namespace, ctx: CliContext) -> int:
    """Inspect ``args.reference`` and print; exit 1 when a signature had to be skipped."""
    from ocisign.cli.commands.list import resolve_with_warning
    from ocisign.cli.compat_flags import check_referrers_flags
    from ocisign.goformat import go_ansic, go_json, go_rfc3339
    from ocisign.oci.signatures import check_max_signatures, find_signatures

    check_max_signatures(args.max_signatures)
    check_referrers_flags(args, sign=False, warn=ctx.warn)
    as_json = args.output == "json"
    fmt_time: TimeFormat = go_rfc3339 if as_json else go_ansic
    artifact = ctx.open_artifact(args.reference, oci_layout=args.oci_layout, layout_type=args.layout_type)
    subject = resolve_with_warning(ctx, artifact, "inspect")
    ref = artifact.display(subject.digest)
    sigs = find_signatures(artifact.target, subject, max_signatures=args.max_signatures)
    outputs: list[dict[str, Any]] = []
    skipped = False
    for desc in sigs:
        try:
            content = read_signature(ctx, artifact.target, desc, sigs.manifests[desc.digest])
            outputs.append(signature_output(desc, content, fmt_time))
        except OcisignError as exc:
            print(f"Warning: Skipping signature {desc.digest} because of error: {exc.diagnostics()}", file=sys.stderr)
            skipped = True
    if as_json:
        sys.stdout.write(go_json({"mediaType": subject.media_type, "Signatures": outputs}) + "\n")
    elif outputs:
        sys.stdout.write(render_tree(ref, outputs))
    else:
        ctx.out(f"{ref} has no associated signature")
    if sigs.truncated:
        print(f"Warning: {sigs.exceeded_message()}", file=sys.stderr if as_json else sys.stdout)
    if skipped:
        raise OcisignError("at least one signature was skipped and not displayed")
    return 0


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    """Run :func:`run_one` for each reference (one, or a batch: :mod:`ocisign.cli.batch`)."""
    from ocisign.cli.batch import run_batch

    return run_batch("inspect", args, ctx, run_one)
