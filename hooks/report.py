"""Outcomes of a hook run: one record per layout reference (or policy file), printed as it happens.

Text output (stdout), one line per record:

* a failure, always: ``ITEM: ACTION FAILED: MESSAGE``, then the details indented by four spaces;
* what was signed or pushed, always: ``img:v1: signed sha256:… (signature sha256:… stored in img)``,
  ``img:v1: pushed sha256:… to registry/repo:v1 with 1 referrer(s)``;
* a skip, always: ``img:v1: already signed (1 signature(s)); skipped``;
* other successes only with ``-v``, followed by their details.

The last line, after a failure, is ``HOOK-ID: N of M check(s) failed``. ``-o json`` prints one
document instead (:meth:`HookRun.to_json`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ocisign.errors import ExitCode, OcisignError

if TYPE_CHECKING:
    from ocisign.cli.context import CliContext


@dataclasses.dataclass(frozen=True)
class HookOptions:
    """What the user asked for (``ocisign hook`` flags)."""

    hook_id: str
    #: file names pre-commit passed (empty: the defaults from the project config)
    files: tuple[str, ...] = ()
    scope: str | None = None
    tags: tuple[str, ...] = ()
    push_to: str | None = None
    force: bool = False
    output: str = "text"


@dataclasses.dataclass
class Outcome:
    """Result of handling one layout reference (or one policy file or layout root)."""

    item: str
    action: str
    ok: bool
    message: str = ""
    exit_code: int = 0
    skipped: bool = False
    #: lines shown under the record (on failure, or with -v)
    details: list[str] = dataclasses.field(default_factory=list)
    #: sign/push: the digest of the image signed or pushed
    digest: str | None = None
    #: sign: the digest of the signature manifest stored
    signature: str | None = None
    #: push: where the image went (``registry/repo:tag`` or ``registry/repo@digest``)
    destination: str | None = None
    #: printed without -v (something was changed: signed or pushed)
    changed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The record for ``-o json`` (digest/signature/destination only when set)."""
        out: dict[str, Any] = {"item": self.item, "action": self.action, "ok": self.ok, "skipped": self.skipped,
                               "message": self.message, "exitCode": self.exit_code}
        for key, value in (("digest", self.digest), ("signature", self.signature),
                           ("destination", self.destination)):
            if value is not None:
                out[key] = value
        return out


def error_outcome(item: str, action: str, exc: BaseException) -> Outcome:
    """An :class:`Outcome` for an error: OcisignError keeps its message and exit code; anything
    else is a bug, reported as an internal error (exit 4) on one line."""
    if isinstance(exc, OcisignError):
        return Outcome(item, action, False, exc.diagnostics(), int(exc.exit_code))
    return Outcome(item, action, False, f"internal error: {type(exc).__name__}: {exc}", int(ExitCode.INTERNAL))


class HookRun:
    """State of one ``ocisign hook`` run: the context, the options and the outcomes so far."""

    def __init__(self, ctx: CliContext, options: HookOptions) -> None:
        self.ctx = ctx
        self.options = options
        self.outcomes: list[Outcome] = []
        self.text = options.output == "text"
        #: True when the layouts came from file names (pre-commit), not from the project config
        self.from_files = bool(options.files)
        #: per-run caches of the hooks (trust policy, signer…), keyed by the hook module
        self.cache: dict[str, Any] = {}

    def record(self, outcome: Outcome) -> Outcome:
        """Keep ``outcome`` and print it (see the module docstring for what is shown when)."""
        self.outcomes.append(outcome)
        if not self.text:
            return outcome
        out = self.ctx.out
        if not outcome.ok:
            out(f"{outcome.item}: {outcome.action} FAILED: {outcome.message}")
        elif outcome.changed or outcome.skipped or self.ctx.verbose:
            out(f"{outcome.item}: {outcome.message or outcome.action + ' ok'}")
        if outcome.details and (self.ctx.verbose or not outcome.ok):
            for line in outcome.details:
                out(f"    {line}")
        return outcome

    @contextmanager
    def guard(self, item: str, action: str) -> Iterator[None]:
        """Record an error raised inside the block as the failure of ``item`` and carry on.

        Only OcisignError is expected; any other exception is a bug, recorded as an internal
        error (with a traceback on stderr under ``--debug``) so the other roots are still handled.
        """
        try:
            yield
        except OcisignError as exc:
            self.record(error_outcome(item, action, exc))
        except Exception as exc:
            if self.ctx.debug:
                import traceback

                traceback.print_exc()
            self.record(error_outcome(item, action, exc))

    @property
    def failed(self) -> list[Outcome]:
        """The failures so far."""
        return [o for o in self.outcomes if not o.ok]

    def to_json(self) -> dict[str, Any]:
        """The ``-o json`` document."""
        return {"hook": self.options.hook_id, "ok": not self.failed,
                "results": [o.to_json() for o in self.outcomes]}

    def finish(self) -> int:
        """Print the JSON document or the summary line; the exit code (1, or 3/4 for plugin/internal errors)."""
        failed = self.failed
        if not self.text:
            self.ctx.emit_json(self.to_json())
        elif failed:
            self.ctx.out(f"{self.options.hook_id}: {len(failed)} of {len(self.outcomes)} check(s) failed")
        if not failed:
            return int(ExitCode.OK)
        worst = max(o.exit_code for o in failed)
        return worst if worst in (ExitCode.PLUGIN, ExitCode.INTERNAL) else int(ExitCode.FAILED)
