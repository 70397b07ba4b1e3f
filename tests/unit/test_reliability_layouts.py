"""Reliability catalogue rows B1, B3, B4 and fault rows 5/6/15 (shared/docs/reliability.md), end to end.

Each test is named after the row it exercises. Hostile layouts are built from a layout signed with
``cert generate-test --default`` + ``sign``, and the CLI must fail closed: exit 1 (or 2 for a bad
reference), one error line naming the file/field/digest, no internal error, and — for the read-only
commands — not one byte written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

MT_M = "application/vnd.oci.image.manifest.v1+json"
MT_I = "application/vnd.oci.image.index.v1+json"
SCOPE = "local/rel"
READ_ONLY = ("list", "inspect", "verify")


# --- helpers -------------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            st = os.lstat(os.path.join(dp, n))
            out[os.path.join(dp, n)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def blob(root: Path, digest: str) -> Path:
    return root / "blobs" / "sha256" / digest.split(":", 1)[1]


def put(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob(root, digest).write_bytes(data)
    return digest


def index(root: Path) -> dict[str, Any]:
    return json.loads((root / "index.json").read_bytes())


def save_index(root: Path, obj: Any) -> None:
    (root / "index.json").write_text(json.dumps(obj, separators=(",", ":")))


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A FIFO opened without O_NONBLOCK would block forever: turn that into a failure."""
    def boom(*_: Any) -> None:
        raise TimeoutError("command blocked")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


class Signed:
    """A config dir with a generate-test default key and a strict policy, and a signed pristine layout."""

    def __init__(self, run_cli: Callable[..., Any], make_layout: Callable[..., Path], tmp_path: Path) -> None:
        self.run = run_cli
        self.tmp = tmp_path
        assert run_cli("cert", "generate-test", "rel", "--default").rc == 0
        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({"version": "1.0", "trustPolicies": [{
            "name": "rel", "registryScopes": [SCOPE], "signatureVerification": {"level": "strict"},
            "trustStores": ["ca:rel"], "trustedIdentities": ["*"]}]}))
        assert run_cli("policy", "import", str(policy), "--force").rc == 0
        self.pristine = make_layout("pristine")
        res = run_cli("sign", "--oci-layout", f"{self.pristine}:v1")
        assert res.rc == 0, res.err
        ix = index(self.pristine)
        self.manifest = ix["manifests"][0]["digest"]
        self.sig_manifest = ix["manifests"][1]["digest"]
        sm = json.loads(blob(self.pristine, self.sig_manifest).read_bytes())
        self.envelope = sm["layers"][0]["digest"]
        self.n = 0

    def copy(self) -> Path:
        self.n += 1
        dst = self.tmp / f"copy{self.n}"
        shutil.copytree(self.pristine, dst, symlinks=True)
        return dst

    def cmd(self, command: str, root: Path | str, ref: str = ":v1") -> Any:
        extra = ["--scope", SCOPE] if command == "verify" else []
        return self.run(command, "--oci-layout", f"{root}{ref}", *extra)

    def fails(self, root: Path, commands: tuple[str, ...], *fragments: str, ref: str = ":v1", rc: int = 1) -> None:
        """Every command fails closed with ``fragments`` in its error; read-only ones write nothing."""
        for command in commands:
            before = snapshot(root)
            res = self.cmd(command, root, ref)
            assert res.rc == rc, (command, res.rc, res.err)
            assert "internal error" not in res.err and "Traceback" not in res.err
            for fragment in fragments:
                assert fragment in res.err, (command, fragment, res.err)
            if command != "sign":
                assert snapshot(root) == before, command
            if command in ("list", "inspect", "sign"):
                assert res.out == "", (command, res.out)

    def works(self, root: Path, commands: tuple[str, ...], ref: str = ":v1") -> None:
        for command in commands:
            before = snapshot(root)
            res = self.cmd(command, root, ref)
            assert res.rc == 0, (command, res.err)
            if command != "sign":
                assert snapshot(root) == before, command

    def remanifest(self, root: Path, mutate: Callable[[dict[str, Any]], None], *, listed_mt: str = MT_M) -> str:
        """Rewrite the image manifest with ``mutate`` applied and point index.json's v1 at it."""
        m = json.loads(blob(root, self.manifest).read_bytes())
        mutate(m)
        data = json.dumps(m).encode()
        digest = put(root, data)
        ix = index(root)
        ix["manifests"][0].update(digest=digest, size=len(data), mediaType=listed_mt)
        save_index(root, ix)
        return digest

    def add_signature_manifest(self, root: Path, m: dict[str, Any]) -> str:
        data = json.dumps(m).encode()
        digest = put(root, data)
        ix = index(root)
        ix["manifests"].insert(1, {"mediaType": m.get("mediaType", MT_M), "digest": digest, "size": len(data)})
        save_index(root, ix)
        return digest

    def signature_manifest(self) -> dict[str, Any]:
        return json.loads(blob(self.pristine, self.sig_manifest).read_bytes())  # type: ignore[no-any-return]


@pytest.fixture
def signed(run_cli: Callable[..., Any], make_layout: Callable[..., Path], tmp_path: Path) -> Signed:
    return Signed(run_cli, make_layout, tmp_path)


# --- B1. layout directory ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "oci-layout file is missing"), (b"nope", "invalid JSON"), (b"[]", "expected a JSON object"),
     (b"{}", "imageLayoutVersion None"), (b'{"imageLayoutVersion":"2.0.0"}', "'2.0.0'"),
     (b'{"imageLayoutVersion":1.0}', "imageLayoutVersion 1.0")],
)
def test_b1_1_oci_layout_file_variants(signed: Signed, content: bytes | None, fragment: str) -> None:
    root = signed.copy()
    if content is None:
        (root / "oci-layout").unlink()
    else:
        (root / "oci-layout").write_bytes(content)
    signed.fails(root, (*READ_ONLY, "sign"), "invalid OCI layout", "oci-layout", fragment)
    assert (content is None) == (not (root / "oci-layout").exists())


def test_b1_1_non_layout_directories_are_never_initialised(signed: Signed, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README").write_text("not a layout")
    empty = tmp_path / "empty"
    empty.mkdir()
    for root in (plain, empty):
        signed.fails(root, (*READ_ONLY, "sign"), "invalid OCI layout")
    assert sorted(os.listdir(plain)) == ["README"] and os.listdir(empty) == []
    missing = tmp_path / "missing"
    for command in (*READ_ONLY, "sign"):
        assert signed.cmd(command, missing).rc == 1
    assert not missing.exists()


@pytest.mark.parametrize(
    "content",
    [None, b"", b'{"schemaVersion":2,"manif', b'{"med{"mediaType":"x"}', b'{"schemaVersion":2,"manifests":[]}xx',
     b'\xef\xbb\xbf{"schemaVersion":2,"manifests":[]}', "huge"],
)
def test_b1_2_index_json_variants(signed: Signed, content: bytes | str | None) -> None:
    root = signed.copy()
    path = root / "index.json"
    if content is None:
        path.unlink()
    elif content == "huge":
        with open(path, "r+b") as fh:  # 1 GiB (sparse): refused by size, never read
            fh.truncate(1 << 30)
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    start = time.monotonic()
    signed.fails(root, (*READ_ONLY, "sign"), "index.json")
    assert time.monotonic() - start < 20


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [([], "expected a JSON object"), ({"schemaVersion": 2, "manifests": None}, "manifests must be a list"),
     ({"schemaVersion": 2}, "manifests must be a list"), ({"schemaVersion": 1, "manifests": "KEEP"}, "schemaVersion"),
     ({"schemaVersion": 2, "mediaType": MT_M, "manifests": "KEEP"}, "mediaType"),
     ({"schemaVersion": 2, "manifests": "KEEP", "config": {}}, "config or layers"),
     ({"schemaVersion": 2, "manifests": "KEEP", "layers": []}, "config or layers")],
)
def test_b1_3_index_json_type_confusion(signed: Signed, obj: Any, fragment: str) -> None:
    root = signed.copy()
    if isinstance(obj, dict) and obj.get("manifests") == "KEEP":
        obj["manifests"] = index(root)["manifests"]
    save_index(root, obj)
    signed.fails(root, (*READ_ONLY, "sign"), "index.json", fragment)


@pytest.mark.parametrize("what", ["index.json", "oci-layout", "blobs", "blobs/sha256", "manifest", "envelope"])
@pytest.mark.parametrize("kind", ["symlink-outside", "symlink-inside", "fifo", "directory"])
def test_b1_4_symlinks_fifos_and_directories(signed: Signed, tmp_path: Path, what: str, kind: str) -> None:
    root = signed.copy()
    rel = {"manifest": f"blobs/sha256/{signed.manifest[7:]}", "envelope": f"blobs/sha256/{signed.envelope[7:]}"}
    path = root / rel.get(what, what)
    if what.startswith("blobs") and kind in ("fifo", "directory"):
        pytest.skip("blobs directories are directories")
    outside = tmp_path / f"outside-{what.replace('/', '_')}-{kind}"
    if kind.startswith("symlink"):
        target = outside if kind == "symlink-outside" else path.with_name(path.name + ".real")
        shutil.move(str(path), target)
        path.symlink_to(target)
        fragment = "symbolic link"
    else:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.mkfifo(path) if kind == "fifo" else path.mkdir()
        fragment = "not a regular file"
    # list needs index.json/oci-layout/signature manifests only; inspect/verify also need the envelope
    commands = ("inspect", "verify") if what == "envelope" else ("verify", "sign") if what == "manifest" \
        else (*READ_ONLY, "sign")
    if what == "envelope":
        for command in commands:
            res = signed.cmd(command, root)
            assert res.rc == 1 and fragment in res.err and "internal error" not in res.err
        return
    signed.fails(root, commands, fragment)


@pytest.mark.parametrize("case", ["longer", "shorter", "flipped", "uppercase-name", "uppercase-in-index"])
def test_b1_5_blob_does_not_match_its_name(signed: Signed, case: str) -> None:
    root = signed.copy()
    path = blob(root, signed.manifest)
    data = path.read_bytes()
    fragment = signed.manifest[7:]  # the hex names the blob in every message
    if case == "longer":
        path.write_bytes(data + b" ")
    elif case == "shorter":
        path.write_bytes(data[:-1])
    elif case == "flipped":
        path.write_bytes(data[:5] + bytes([data[5] ^ 1]) + data[6:])
    else:
        path.rename(path.with_name(path.name.upper()))
        if case == "uppercase-in-index":
            ix = index(root)
            ix["manifests"][0]["digest"] = "sha256:" + path.name.upper()
            save_index(root, ix)
            fragment = "invalid digest"
    signed.fails(root, ("verify", "sign"), fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes")
def test_b1_5_unreadable_blob(signed: Signed) -> None:
    root = signed.copy()
    blob(root, signed.manifest).chmod(0)
    signed.fails(root, ("verify", "sign"), "permission denied")


def test_b1_6_missing_config_and_layers_do_not_stop_sign_or_verify(signed: Signed) -> None:
    root = signed.copy()
    m = json.loads(blob(root, signed.manifest).read_bytes())
    for d in [m["config"], *m["layers"]]:
        blob(root, d["digest"]).unlink()
    signed.works(root, (*READ_ONLY, "sign", "verify"))


def test_b1_7_unreferenced_files_are_tolerated(signed: Signed) -> None:
    root = signed.copy()
    (root / "ingest").mkdir()
    (root / "ingest" / "partial").write_bytes(b"x")
    (root / ".lock").write_text("")
    (root / "README").write_text("hello")
    (root / "blobs" / "sha256" / ".tmp-abc").write_text("partial")
    (root / "blobs" / "sha256" / "not-a-digest").write_text("x")
    (root / "blobs" / "sha512").mkdir()
    signed.works(root, (*READ_ONLY, "sign", "verify"))


def test_b1_8_ambiguous_tag_via_cli(signed: Signed) -> None:
    root = signed.copy()
    ix = index(root)
    ix["manifests"].append({**ix["manifests"][1], "annotations": {"org.opencontainers.image.ref.name": "v1"}})
    save_index(root, ix)
    signed.fails(root, (*READ_ONLY, "sign"), "ambiguous", signed.manifest)
    # the same tag listed twice for one digest is not ambiguous
    root = signed.copy()
    ix = index(root)
    ix["manifests"].append(ix["manifests"][0])
    save_index(root, ix)
    signed.works(root, ("list", "verify"))


def test_b1_9_not_found(signed: Signed) -> None:
    root = signed.copy()
    signed.fails(root, (*READ_ONLY, "sign"), "tag not found", ref=":nope")
    absent = "sha256:" + "a" * 64
    signed.fails(root, (*READ_ONLY, "sign"), absent, "not found", ref="@" + absent)
    # cosign #542: the signature is there but the manifest it is for is not
    blob(root, signed.manifest).unlink()
    signed.fails(root, ("verify", "sign"), signed.manifest[7:], "not found", ref="@" + signed.manifest)
    signed.fails(root, ("verify", "sign"), "not found")


def test_b1_9_unlisted_but_present_manifest_is_not_found(signed: Signed) -> None:
    """A digest present in blobs/ but not reachable from index.json is not an artifact of the layout."""
    root = signed.copy()
    ix = index(root)
    ix["manifests"] = [m for m in ix["manifests"] if m["digest"] != signed.manifest]
    save_index(root, ix)
    signed.fails(root, (*READ_ONLY, "sign"), "index.json does not list it", ref="@" + signed.manifest)


def test_b1_10_deep_index_chain_is_bounded(signed: Signed) -> None:
    root = signed.copy()
    ix = index(root)
    cur = {"mediaType": MT_M, "digest": signed.manifest, "size": blob(root, signed.manifest).stat().st_size}
    for _ in range(2000):
        data = json.dumps({"schemaVersion": 2, "mediaType": MT_I, "manifests": [cur]}).encode()
        cur = {"mediaType": MT_I, "digest": put(root, data), "size": len(data)}
    ix["manifests"].append({**cur, "annotations": {"org.opencontainers.image.ref.name": "deep"}})
    save_index(root, ix)
    start = time.monotonic()
    signed.fails(root, READ_ONLY, "nested deeper than", ref=":deep")
    signed.fails(root, ("list", "verify"), "nested deeper than")
    assert time.monotonic() - start < 20


def test_b1_11_big_index_and_annotations_are_bounded(signed: Signed) -> None:
    root = signed.copy()
    ix = index(root)
    ix["manifests"][0]["annotations"]["big"] = "a" * (10 * 1024 * 1024)
    save_index(root, ix)
    signed.works(root, ("list", "verify"))
    # more than the 64 MiB index.json cap: a size error, not an attempt to parse it
    with open(root / "index.json", "ab") as fh:
        fh.truncate(65 * 1024 * 1024)
    signed.fails(root, (*READ_ONLY, "sign"), "index.json is larger than")


def test_b1_12_layout_path_forms(signed: Signed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    colon = tmp_path / "a:b"
    shutil.copytree(signed.pristine, colon)
    signed.works(colon, ("list", "verify"))  # last ':' splits the tag
    assert signed.run("list", "--oci-layout", f"{colon}/:v1").rc == 0  # trailing slash
    monkeypatch.chdir(tmp_path)
    assert signed.run("list", "--oci-layout", "a:b:v1").rc == 0  # relative
    at = tmp_path / "x@y"
    shutil.copytree(signed.pristine, at)
    res = signed.run("list", "--oci-layout", f"{at}:v1")  # last '@' wins: 'y:v1' is not a digest
    assert res.rc == 2 and "invalid digest" in res.err
    assert signed.run("list", "--oci-layout", f"{at}@{signed.manifest}").rc == 0
    res = signed.run("list", "--oci-layout", "a:b")  # deterministic: path "a", tag "b" (no guessing)
    assert res.rc == 1 and "a: no such OCI layout" in res.err
    assert signed.run("list", "--oci-layout", str(signed.pristine)).rc == 2  # no tag or digest: usage error
    # a non-UTF-8 name under a strict UTF-8 stdout (was: exit 4, UnicodeEncodeError while printing the path)
    odd = os.fsencode(str(tmp_path)) + b"/caf\xe9"
    shutil.copytree(signed.pristine, os.fsdecode(odd))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for command in ("verify", "list", "inspect"):
        extra = [b"--scope", SCOPE.encode()] if command == "verify" else []
        proc = subprocess.run([sys.executable, "-m", "ocisign", command, "--oci-layout", odd + b":v1", *extra],
                              capture_output=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert odd + b"@" + signed.manifest.encode() in proc.stdout  # printed back as the original bytes


def test_b1_13_read_only_layout_fails_before_writing(signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    root = signed.copy()
    before = snapshot(root)
    real_access = os.access
    blocked = str(root / "blobs" / "sha256")
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == blocked else real_access(p, mode, **kw))
    res = signed.cmd("sign", root)
    assert res.rc == 1 and "blobs/sha256 is not writable" in res.err and str(root) in res.err
    assert snapshot(root) == before


# --- B3. manifests, indexes and descriptors -------------------------------------------------------------
@pytest.mark.parametrize("size", ["-1", "18446744073709551616", "1.0", "1e3", '"12"', "true", "NaN", "401.0"])
def test_b3_1_descriptor_sizes_in_index_json(signed: Signed, size: str) -> None:
    root = signed.copy()
    raw = (root / "index.json").read_text()
    size_now = index(root)["manifests"][0]["size"]
    changed = raw.replace(f'"size":{size_now}', f'"size":{size}', 1)
    assert changed != raw
    (root / "index.json").write_text(changed)
    signed.fails(root, (*READ_ONLY, "sign"), "index.json")


@pytest.mark.parametrize("size", [-1, 2**64, 1.0, "12", True])
def test_b3_1_descriptor_sizes_in_the_manifest(signed: Signed, size: Any) -> None:
    root = signed.copy()
    signed.remanifest(root, lambda m: m["config"].__setitem__("size", size))
    signed.fails(root, ("verify", "sign"), "config.size: invalid size")


def test_b3_1_huge_declared_manifest_size_is_refused_before_reading(signed: Signed) -> None:
    root = signed.copy()
    ix = index(root)
    ix["manifests"][0]["size"] = 2**62
    save_index(root, ix)
    signed.fails(root, ("verify", "sign"), "over the 4194304-byte limit")


@pytest.mark.parametrize(
    "digest",
    ["", "sha256:", "sha256:" + "A" * 64, "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:" + "a" * 64 + "\n",
     "sha256:" + "\u0661" * 64, "sha256:../../x", "sha512:" + "a" * 64, "md5:" + "a" * 32, "sha256+b64u:abc"],
)
def test_b3_2_descriptor_digests(signed: Signed, digest: str) -> None:
    root = signed.copy()
    ix = index(root)
    ix["manifests"][0]["digest"] = digest
    save_index(root, ix)
    signed.fails(root, (*READ_ONLY, "sign"), "index.json.manifests[0].digest: invalid digest")
    root = signed.copy()
    signed.remanifest(root, lambda m: m["layers"][0].__setitem__("digest", digest))
    signed.fails(root, ("verify", "sign"), "layers[0].digest: invalid digest")
    if digest and "\n" not in digest:
        res = signed.cmd("verify", root, "@" + digest)
        assert res.rc == 2 and "invalid digest" in res.err


@pytest.mark.parametrize("case", ["manifest-with-manifests", "mediatype-disagrees", "index-with-config",
                                  "descriptor-manifest-blob-index", "descriptor-index-blob-manifest"])
def test_b3_3_and_b3_4_type_confusion(signed: Signed, case: str) -> None:
    root = signed.copy()
    fragment = {"manifest-with-manifests": "must not have manifests",
                "mediatype-disagrees": "does not match descriptor",
                "index-with-config": "must not have config or layers",
                "descriptor-manifest-blob-index": "must not have manifests",
                "descriptor-index-blob-manifest": "does not match descriptor"}[case]
    if case == "manifest-with-manifests":
        signed.remanifest(root, lambda m: m.__setitem__("manifests", []))
    elif case == "mediatype-disagrees":
        signed.remanifest(root, lambda m: m.__setitem__("mediaType", MT_I))
    elif case == "index-with-config":
        signed.remanifest(root, lambda m: m.update(mediaType=MT_I, manifests=[]), listed_mt=MT_I)
    elif case == "descriptor-manifest-blob-index":
        size = blob(root, signed.manifest).stat().st_size
        data = json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": MT_M, "digest": signed.manifest, "size": size}]}).encode()
        ix = index(root)
        ix["manifests"][0].update(digest=put(root, data), size=len(data))
        save_index(root, ix)
    else:
        ix = index(root)
        ix["manifests"][0]["mediaType"] = MT_I
        save_index(root, ix)
    signed.fails(root, ("verify", "sign"), fragment)


def test_b3_5_unknown_media_types_are_signable(signed: Signed) -> None:
    root = signed.copy()

    def weird_types(m: dict[str, Any]) -> None:
        m["config"]["mediaType"] = "application/x-weird"
        m["layers"][0]["mediaType"] = "application/x-layer"
        m["artifactType"] = "application/x-art"

    signed.remanifest(root, weird_types)
    signed.works(root, ("sign", "verify", "list", "inspect"))


@pytest.mark.parametrize("where", ["index.json", "config"])
def test_b3_6_data_field_not_matching_the_content_is_refused(signed: Signed, where: str) -> None:
    root = signed.copy()
    wrong = base64.b64encode(b"not the content").decode()
    if where == "index.json":
        ix = index(root)
        ix["manifests"][0]["data"] = wrong
        save_index(root, ix)
        signed.fails(root, (*READ_ONLY, "sign"), "manifests[0].data: embedded data does not match")
    else:
        signed.remanifest(root, lambda m: m["config"].__setitem__("data", wrong))
        signed.fails(root, ("verify", "sign"), "config.data: embedded data does not match")
    # matching data is fine
    root = signed.copy()
    config = json.loads(blob(root, signed.manifest).read_bytes())["config"]
    good = base64.b64encode(blob(root, config["digest"]).read_bytes()).decode()
    signed.remanifest(root, lambda m: m["config"].__setitem__("data", good))
    signed.works(root, ("sign", "verify"))


def test_b3_7_foreign_layer_urls_are_never_fetched(signed: Signed) -> None:
    root = signed.copy()
    signed.remanifest(root, lambda m: m["layers"][0].__setitem__("urls", ["http://127.0.0.1:9/never"]))
    start = time.monotonic()
    signed.works(root, ("sign", "verify"))
    assert time.monotonic() - start < 10


def test_b3_8_duplicate_keys_in_a_manifest(signed: Signed) -> None:
    root = signed.copy()
    raw = blob(root, signed.manifest).read_bytes()
    dup = raw.replace(b'"schemaVersion":2', b'"schemaVersion":2,"schemaVersion":2', 1)
    assert dup != raw
    ix = index(root)
    ix["manifests"][0].update(digest=put(root, dup), size=len(dup))
    save_index(root, ix)
    signed.fails(root, ("verify", "sign"), "duplicate key 'schemaVersion'")


def test_b3_9_manifest_over_4_mib(signed: Signed) -> None:
    root = signed.copy()
    signed.remanifest(root, lambda m: m.__setitem__("annotations", {"pad": "a" * (5 * 1024 * 1024)}))
    signed.fails(root, ("verify", "sign"), "over the 4194304-byte limit")


# --- B4. signature manifests, referrers and selection ---------------------------------------------------
@pytest.mark.parametrize("field", ["digest", "size", "mediaType"])
def test_b4_1_signed_target_differs_from_the_artifact(signed: Signed, config_dir: Path, field: str) -> None:
    """A correctly signed envelope whose targetArtifact differs in one field: content descriptor mismatch."""
    from ocisign.plugins import jws
    from ocisign.plugins.file_key import load_file_signer

    from ocisign.envelope.payload import build_payload
    from ocisign.oci.model import Descriptor
    from ocisign.types import SignRequest

    root = signed.copy()
    size = blob(root, signed.manifest).stat().st_size
    target = {"mediaType": MT_M, "digest": signed.manifest, "size": size}
    target[field] = {"digest": "sha256:" + "b" * 64, "size": size + 1, "mediaType": MT_I}[field]
    desc = Descriptor(media_type=target["mediaType"], digest=target["digest"], size=target["size"])
    keys = config_dir / "localkeys"
    signer = load_file_signer(keys / "rel.key", keys / "rel.crt")
    envelope = jws.seal(SignRequest(payload=build_payload(desc), signing_time=dt.datetime.now(dt.timezone.utc)),
                        signer)
    m = signed.signature_manifest()
    m["layers"][0].update(digest=put(root, envelope), size=len(envelope))
    sig = json.dumps(m, separators=(",", ":")).encode()
    ix = index(root)
    ix["manifests"][1].update(digest=put(root, sig), size=len(sig))
    save_index(root, ix)
    res = signed.run("verify", "--oci-layout", f"{root}:v1", "--scope", SCOPE, "-o", "json")
    out = json.loads(res.out)
    assert res.rc == 1 and out["failedCheck"] == "targetMismatch", out
    assert "content descriptor mismatch" in json.dumps(out) and field in json.dumps(out)


def test_b4_2_referrers_of_another_subject_are_ignored(signed: Signed) -> None:
    root = signed.copy()
    m = signed.signature_manifest()
    m["subject"] = {"mediaType": MT_M, "digest": "sha256:" + "c" * 64, "size": 7}
    other = signed.add_signature_manifest(root, m)
    res = signed.run("list", "--oci-layout", f"{root}:v1")
    assert res.rc == 0 and signed.sig_manifest in res.out and other not in res.out
    signed.works(root, ("verify",))


def test_b4_3_signature_manifest_without_layers_stops_verification(signed: Signed) -> None:
    root = signed.copy()
    m = signed.signature_manifest()
    m["layers"] = []
    signed.add_signature_manifest(root, m)
    res = signed.cmd("verify", root)
    assert res.rc == 1 and "exactly one layer" in res.err and "internal error" not in res.err
    res = signed.cmd("inspect", root)
    assert res.rc == 1 and "exactly one layer" in res.err


def test_b4_3_unsupported_envelope_media_type_is_named_by_inspect(signed: Signed) -> None:
    root = signed.copy()
    m = signed.signature_manifest()
    m["layers"][0]["mediaType"] = "application/jwt"
    bad = signed.add_signature_manifest(root, m)
    res = signed.cmd("inspect", root)
    assert res.rc == 1 and bad in res.err and "unsupported signature envelope media type 'application/jwt'" in res.err
    signed.works(root, ("verify",))  # that signature fails integrity, the good one passes (N)


def test_b4_4_oversized_envelope_and_signature_manifest(signed: Signed) -> None:
    root = signed.copy()
    m = signed.signature_manifest()
    m["layers"][0]["size"] = 33 * 1024 * 1024  # declared only: refused before reading
    signed.add_signature_manifest(root, m)
    save_index(root, {**index(root), "manifests": [e for e in index(root)["manifests"]
                                                    if e["digest"] != signed.sig_manifest]})
    for command in ("inspect", "verify"):
        res = signed.cmd(command, root)
        assert res.rc == 1 and "34603008 bytes" in res.err, res.err
    root = signed.copy()
    m = signed.signature_manifest()
    m["annotations"]["pad"] = "p" * (5 * 1024 * 1024)
    signed.add_signature_manifest(root, m)
    signed.fails(root, READ_ONLY, "over the 4194304-byte limit")


def test_b4_9_signatures_on_signatures_are_bounded(signed: Signed) -> None:
    root = signed.copy()
    ix = index(root)
    base = signed.signature_manifest()
    prev = {"mediaType": MT_M, "digest": signed.sig_manifest, "size": blob(root, signed.sig_manifest).stat().st_size}
    for i in range(2000):
        m = json.loads(json.dumps(base))
        m["subject"], m["annotations"]["n"] = prev, str(i)
        data = json.dumps(m).encode()
        prev = {"mediaType": MT_M, "digest": put(root, data), "size": len(data)}
        ix["manifests"].append(prev)
    save_index(root, ix)
    start = time.monotonic()
    signed.works(root, ("list", "inspect", "verify"))
    res = signed.run("list", "--oci-layout", f"{root}@{signed.sig_manifest}")
    assert res.rc == 0 and res.out.count("sha256:") == 2  # the signature and its one signature
    assert time.monotonic() - start < 30


# --- (c) fault rows -------------------------------------------------------------------------------------
def test_fault_6_temp_dir_elsewhere_does_not_matter(signed: Signed, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Temp files live beside their targets: a TMPDIR on another (or no) file system changes nothing."""
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path / "does-not-exist"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    real_replace = os.replace

    def same_dir_only(src: Any, dst: Any, **kw: Any) -> None:
        if os.path.dirname(os.fspath(src)) != os.path.dirname(os.fspath(dst)):
            raise OSError(18, "Invalid cross-device link")  # EXDEV
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", same_dir_only)
    root = signed.copy()
    assert signed.cmd("sign", root).rc == 0
    assert len(index(root)["manifests"]) == 3
    signed.works(root, ("verify",))


def test_fault_15_expiry_follows_the_injected_clock(signed: Signed, config_dir: Path, pm: Any) -> None:
    from ocisign.config.configdir import ConfigDir
    from ocisign.verify.verification import verify_artifact

    root = signed.copy()
    assert signed.run("sign", "--oci-layout", f"{root}:v1", "-e", "1h").rc == 0
    ix = index(root)
    ix["manifests"] = [e for e in ix["manifests"] if e["digest"] != signed.sig_manifest]  # only the expiring one
    save_index(root, ix)
    sig = ix["manifests"][1]["digest"]
    envelope = json.loads(blob(root, json.loads(blob(root, sig).read_bytes())["layers"][0]["digest"]).read_bytes())
    protected = json.loads(base64.urlsafe_b64decode(envelope["protected"] + "=="))
    expiry = dt.datetime.fromisoformat(protected["io.cncf.notary.expiry"].replace("Z", "+00:00"))

    def at(when: dt.datetime) -> Any:
        target = pm.open_layout(root)
        try:
            return verify_artifact(pm, ConfigDir(config_dir), target, "v1", location=str(root), scope=SCOPE,
                                   verification_time=when)
        finally:
            target.close()

    assert at(expiry - dt.timedelta(seconds=1)).verified
    for when in (expiry, expiry + dt.timedelta(days=1)):  # now >= expiry is expired (N)
        report = at(when)
        assert not report.verified and "expir" in report.message.lower(), report.message


def test_small_reads_size_their_buffer_by_fstat_and_still_see_growth(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """DirLayout._read_small asks os.read for the fstat size plus one byte (not for the 64 MiB limit
    of index.json); a file that grew after fstat is read on up to the limit, and refused beyond it."""
    from ocisign.plugins import oci_dir

    from ocisign.errors import LayoutError

    (tmp_path / "f.json").write_bytes(b"x" * 1000)
    layout = oci_dir.DirLayout(tmp_path)
    asked: list[int] = []
    real_read = os.read

    def spy(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", spy)  # the os module oci_dir reads with
    assert layout._read_small("f.json", 64 * 1024 * 1024) == b"x" * 1000
    assert max(asked) == 1001
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 10, *real_fstat(fd)[7:])))
    asked.clear()
    assert layout._read_small("f.json", 5000) == b"x" * 1000  # "grew" from 10 bytes to 1000
    assert asked[0] == 11
    with pytest.raises(LayoutError, match="larger than 500 bytes"):
        layout._read_small("f.json", 500)
    layout.close()
