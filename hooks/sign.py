"""``ocisign-sign``: sign every reference of a layout that has no signature yet (``--force``: sign again).

The key is the project config's ``key``, else the default key of ``signingkeys.json``; the
envelope format is the project config's ``signature-format``, else ``config.json``'s, else
JWS — the same choices as ``ocisign sign`` (:mod:`ocisign.cli.signing_choice`), made once per
run. Each signature goes through :func:`ocisign.sign.signing.sign_artifact` and is printed
without ``-v``::

    images/app:v1: signed sha256:… (signature sha256:… stored in images/app)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun

    from ocisign.types import EnvelopeFormat, Signer, Target

ACTION = "sign"
_SIGNER = "sign.signer"


def signer_and_format(run: HookRun) -> tuple[Signer, EnvelopeFormat]:
    """The signer of the project's key and the envelope format, built once per run (errors every time)."""
    cached = run.cache.get(_SIGNER)
    if cached is None:
        from ocisign.cli.signing_choice import choose_format, make_named_signer
        from ocisign.errors import OcisignError

        ctx = run.ctx
        # a hook gets none of ``ocisign sign``'s key and format flags: the project config decides
        try:
            cached = (make_named_signer(ctx)[0], ctx.pm.envelope_format(choose_format(ctx)))
        except OcisignError as exc:
            cached = exc
        run.cache[_SIGNER] = cached
    if isinstance(cached, BaseException):
        raise cached
    signer, fmt = cached
    return signer, fmt


def handle(run: HookRun, root: str) -> None:
    """Sign the unsigned references of the layout ``root``."""
    from ocisign.hooks.files import each_reference, layout_ref, signature_count
    from ocisign.hooks.report import Outcome

    from ocisign.sign.signing import sign_artifact

    warnings: list[str] = []

    def one(target: Target, ref: str) -> None:
        item = layout_ref(root, ref)
        if not run.options.force:
            n = signature_count(target, ref)
            if n:
                run.record(Outcome(item, ACTION, True, f"already signed ({n} signature(s)); skipped", skipped=True))
                return
        signer, fmt = signer_and_format(run)
        warnings.clear()
        result = sign_artifact(run.ctx.pm, target, ref, signer=signer, envelope_format=fmt, warn=warnings.append)
        digest, signature = result.subject.digest, result.signature.digest
        run.record(Outcome(item, ACTION, True, f"signed {digest} (signature {signature} stored in {root})",
                           digest=digest, signature=signature, changed=True,
                           details=[f"Warning: {w}" for w in warnings if not w.startswith("Always ")]))

    each_reference(run, root, ACTION, one)
