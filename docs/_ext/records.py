"""Numbers on the site come from the committed records (docs/records/, issue 29), never typed.

    {record}`translate_dates.quick:none.exact_match:.3f`    → 0.925
    {record}`kernels:rows.0.speedup_vs_torch:.2f`           → 3.05

The reference is ``demo.mode:path[:format]`` (demos/_records.py resolves it: min/max/mean over
a glob, ``@`` for a field of the record such as ``@wall_seconds``). A reference that does not
resolve is an error, so a page cannot quote a metric its demo no longer writes.

    {given}`2017`      a number on a page that is *not* a measurement — a year, a figure quoted
                       from a paper, a formula's constant, a setting — marked as such for
                       tests/test_prose_numbers.py, and shown as it is.

Both roles render the same in the English and the Chinese edition (a translation carries the
role over unchanged).
"""
from __future__ import annotations

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)


def record_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    from demos import _records
    env = inliner.document.settings.env
    cache = env.__dict__.setdefault("_record_cache", {})
    try:
        shown = _records.resolve(text, cache)
    except (KeyError, ValueError, FileNotFoundError) as error:
        message = inliner.reporter.error(f"record reference {text!r}: {error}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    demo = text.partition(":")[0].partition(".")[0]
    env.note_dependency(str(_records.record_path(demo, text.partition(":")[0].partition(".")[2]
                                                 or None)))
    return [nodes.inline(rawtext, shown, classes=["record"])], []


def given_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.inline(rawtext, text, classes=["given"])], []


def setup(app):
    app.add_role("record", record_role)
    app.add_role("given", given_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
