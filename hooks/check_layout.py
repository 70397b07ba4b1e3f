"""``ocisign-check-layout``: the integrity of each layout root (what ``ocisign layout check`` checks).

Every reachable blob must be present with its digest and size, media types and the
``oci-layout`` version must be right (:func:`ocisign.oci.layout_tools.check_layout`). A failure
is ``ROOT: layout check FAILED: ROOT: N problem(s) found (…)`` followed by one indented
``problem: WHERE: MESSAGE`` line per problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocisign.errors import UsageError

if TYPE_CHECKING:
    from ocisign.hooks.report import HookRun

ACTION = "layout check"


def handle(run: HookRun, root: str) -> None:
    """Check the layout ``root`` and record one outcome for it."""
    from ocisign.hooks.report import Outcome

    from ocisign.oci.layout_reader import LayoutReader
    from ocisign.oci.layout_tools import check_layout

    pm = run.ctx.pm
    with run.guard(root, ACTION):
        target = pm.open_layout(root)
        try:
            if not isinstance(target, LayoutReader):
                raise UsageError(f"{root}: layout check does not support this layout type")
            layout_type = pm.layout_type_of(target) or type(target).__name__
            report = check_layout(target, layout_type=layout_type)
        finally:
            target.close()
        summary = (f"{report.manifests} manifests, {report.blobs} blobs, {report.bytes_verified} bytes verified"
                   + (f", {report.missing_external} external blobs not present" if report.missing_external else ""))
        if report.ok:
            run.record(Outcome(root, ACTION, True, "layout is intact",
                               details=[f"{root}: OK ({report.layout_type} layout, {summary})"]))
            return
        count = len(report.problems) + report.more_problems
        details = [f"problem: {p.where}: {p.message}" for p in report.problems]
        if report.more_problems:
            details.append(f"problem: … and {report.more_problems} more")
        run.record(Outcome(root, ACTION, False, f"{root}: {count} problem{'s' if count != 1 else ''} found ({summary})",
                           1, details=details))
