"""Batches: several references in one run of ``sign``, ``verify``, ``list``, ``inspect`` (and ``cp``).

::

    ocisign verify --oci-layout --scope local/app ./a:v1 ./b:v1 ./c:v1
    ocisign sign --oci-layout --refs-from images.txt --jobs 4 -o json
    find out -name '*.tar' | sed 's/$/:v1/' | ocisign verify --oci-layout --scope s --refs-from -

References come from the command line and from ``--refs-from FILE`` (``-``: standard input; one
reference a line, blank lines and ``#`` comments skipped). With exactly one reference on the
command line and no ``--refs-from``, the command runs as it always did and prints exactly what it
always printed. Otherwise every reference runs through the same per-reference code, ``--jobs N``
at a time (default :data:`DEFAULT_JOBS`), sharing the run's plugin manager, key, trust policy,
trust stores, parsed certificates and chain-rule results, and one registry target (connection
pool and auth token) per repository; the first reference runs alone so that the others find
that target and token ready. One failure never stops the others. Output, in input order
whatever finishes first:

* text: for each reference what the single command prints on stdout (``Successfully verified
  signature for …``, the list tree, …) or, when it failed, ``Failed: REF: REASON``; its
  diagnostics and warnings go to stderr, each line prefixed with ``REF: ``. A last stdout line
  sums up: ``3 of 4 references verified, 1 failed``.
* ``-o json``: one document ``{"command", "results": [{"reference", "ok", "exitCode", "result",
  "error"}], "summary": {"total", "succeeded", "failed"}}`` where ``result`` is the single
  command's JSON for that reference.

The exit code is 0 when every reference succeeded, else the exit code of the first reference
(in input order) that failed.
"""

from __future__ import annotations

import contextlib
import io
import sys

from ocisign.errors import ExitCode, OcisignError, UsageError, error_line

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy reads it alike)
if TYPE_CHECKING:
    import argparse
    import threading
    from collections.abc import Callable, Iterator
    from typing import Any, TextIO

    from ocisign.cli.context import CliContext

DEFAULT_JOBS = 4
MAX_JOBS = 64
#: past tense of each command for the summary line
DONE = {"sign": "signed", "verify": "verified", "list": "listed", "inspect": "inspected", "cp": "copied"}

if TYPE_CHECKING:
    RunOne = Callable[[argparse.Namespace, CliContext], int]


def parse_jobs(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_JOBS}")
    return value


def add_batch_arguments(parser: argparse.ArgumentParser, *, help_text: str) -> None:
    """``REFERENCE…``, ``--refs-from FILE|-`` and ``--jobs N``."""
    parser.add_argument("references", nargs="*", metavar="REFERENCE", help=help_text + " (one or more)")
    g = parser.add_argument_group("batch options")
    g.add_argument("--refs-from", metavar="FILE", default=None,
                   help="also take references from FILE, one a line ('-': standard input; blank lines and "
                        "# comments are skipped)")
    g.add_argument("--jobs", type=parse_jobs, default=DEFAULT_JOBS, metavar="N",
                   help=f"references processed at once in a batch (default {DEFAULT_JOBS})")


def read_refs_file(name: str) -> list[str]:
    """The references listed in ``name`` (``-``: standard input)."""
    if name == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(name, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise UsageError(f"--refs-from {name}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--refs-from {name}: not UTF-8 text") from None
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def references(args: argparse.Namespace) -> list[str]:
    """The command line's references, then those of ``--refs-from``; UsageError when there are none."""
    refs = list(getattr(args, "references", None) or [])
    source = getattr(args, "refs_from", None)
    if source is not None:
        if source == "-" and getattr(args, "password_stdin", False):
            raise UsageError("--refs-from - and --password-stdin cannot both read standard input")
        listed = read_refs_file(source)
        if not listed and not refs:
            raise UsageError(f"--refs-from {source}: no references")
        refs += listed
    if not refs:
        raise UsageError("the following arguments are required: REFERENCE (or --refs-from FILE)")
    return refs


# --- per-thread output --------------------------------------------------------------------------
class _Router(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr during a batch: writes go to the calling thread's buffer."""

    def __init__(self, real: TextIO, local: threading.local, name: str) -> None:
        super().__init__()
        self._real, self._local, self._name = real, local, name

    def _target(self) -> TextIO:
        buf: TextIO | None = getattr(self._local, self._name, None)
        return buf if buf is not None else self._real

    def write(self, s: str) -> int:
        return self._target().write(s)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False if getattr(self._local, self._name, None) is not None else self._real.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._real, "encoding", None) or "utf-8"


@contextlib.contextmanager
def _routed_output() -> Iterator[threading.local]:
    import threading  # only a batch needs it

    local = threading.local()
    real_out, real_err = sys.stdout, sys.stderr
    sys.stdout = _Router(real_out, local, "out")
    sys.stderr = _Router(real_err, local, "err")
    try:
        yield local
    finally:
        sys.stdout, sys.stderr = real_out, real_err


class Outcome:
    """What one reference of a batch produced."""

    def __init__(self, reference: str, rc: int, out: str, err: str) -> None:
        self.reference, self.rc, self.out, self.err = reference, rc, out, err

    @property
    def ok(self) -> bool:
        """True when the reference succeeded."""
        return self.rc == 0

    def reason(self) -> str:
        """The last error line of the reference, without the ``Error:`` prefix."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("Error: "):
                return line.removeprefix("Error: ")
        return lines[-1] if lines else f"exit code {self.rc}"

    def to_json(self) -> dict[str, Any]:
        """This reference's entry of the ``-o json`` report."""
        import json

        try:
            result: Any = json.loads(self.out) if self.out.strip() else None
        except ValueError:
            result = self.out
        return {"reference": self.reference, "ok": self.ok, "exitCode": self.rc, "result": result,
                "error": None if self.ok else self.reason()}


def _run_captured(command: str, run_one: RunOne, args: argparse.Namespace, ctx: CliContext,
                  local: threading.local) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    local.out, local.err = out, err
    try:
        try:
            rc = int(run_one(args, ctx))
        except OcisignError as exc:
            print(error_line(exc.diagnostics()), file=err)
            rc = int(exc.exit_code)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # a bug in one reference must not hide the others' results
            print(error_line(f"internal error in ocisign {command}: {type(exc).__name__}: {exc} (please report it)"),
                  file=err)
            rc = int(ExitCode.INTERNAL)
        finally:
            ctx.close()
    finally:
        local.out = local.err = None
    return Outcome(args.reference, rc, out.getvalue(), err.getvalue())


def run_batch(command: str, args: argparse.Namespace, ctx: CliContext, run_one: RunOne,
              *, items: list[str] | None = None,
              apply: Callable[[argparse.Namespace, str], None] | None = None) -> int:
    """Run ``run_one`` for every reference (see the module docstring); returns the exit code.

    ``items`` replaces :func:`references` (``cp``'s ``SRC DST`` lines) and ``apply(args, item)``
    puts one item into a copy of ``args`` (default: ``args.reference = item``).
    """
    refs = references(args) if items is None else items
    put = apply or _set_reference
    if len(refs) == 1 and getattr(args, "refs_from", None) is None:
        put(args, refs[0])
        return run_one(args, ctx)
    import copy
    from concurrent.futures import ThreadPoolExecutor

    json_out = getattr(args, "output", "text") == "json"
    ctx.pm  # noqa: B018 - built once, before the threads share it
    outcomes: list[Outcome] = []
    with _routed_output() as local:
        pool = ThreadPoolExecutor(max_workers=min(args.jobs, len(refs)))
        try:
            futures = []
            for i, ref in enumerate(refs):
                one = copy.copy(args)
                put(one, ref)
                one.reference = ref
                futures.append(pool.submit(_run_captured, command, run_one, one, ctx.fork(one), local))
                if i == 0:  # the first reference alone: it opens the shared targets and fetches the tokens
                    futures[0].exception()
            for future in futures:  # input order, each as soon as it and those before it are done
                outcome = future.result()
                outcomes.append(outcome)
                if not json_out:
                    _print_text(outcome)
        finally:  # Ctrl-C: references not started yet are dropped, running ones finish
            pool.shutdown(wait=True, cancel_futures=True)
    failed = [o for o in outcomes if not o.ok]
    if json_out:
        import json

        report = {"command": command, "results": [o.to_json() for o in outcomes],
                  "summary": {"total": len(outcomes), "succeeded": len(outcomes) - len(failed), "failed": len(failed)}}
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{len(outcomes) - len(failed)} of {len(outcomes)} references {DONE.get(command, 'done')}, "
              f"{len(failed)} failed")
    sys.stdout.flush()
    return failed[0].rc if failed else int(ExitCode.OK)


def _set_reference(args: argparse.Namespace, item: str) -> None:
    args.reference = item


def _print_text(outcome: Outcome) -> None:
    for line in outcome.err.splitlines():
        print(f"{outcome.reference}: {line}", file=sys.stderr)
    sys.stderr.flush()
    if outcome.out:
        sys.stdout.write(outcome.out if outcome.out.endswith("\n") else outcome.out + "\n")
    if not outcome.ok:
        print(f"Failed: {outcome.reference}: {outcome.reason()}")
    sys.stdout.flush()
