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

A whole table of a record (the Recorded runs page) is a directive; each cell is a path below a
row's prefix, the header is given in both languages:

    ```{record-table} translate_dates.quick
    :rows: none bahdanau luong_dot
    :columns: exact_match:.3f char_accuracy:.4f train_steps stopped
    :header: model | exact match | char acc. | steps | stopped by
    :header-zh: 模型 | 完全匹配 | 字符准确率 | 步数 | 停止原因
    ```

``:each: rows`` makes one row per item of the list at that path (the columns are the items'
fields; no label column). ``:row-labels:`` / ``:row-labels-zh:`` ("a | b | …") name the rows (default: the row keys);
``:values-zh:`` ("step budget=步数用完 | …") shows text values in Chinese. ``:rows:`` may be left
out for a one-row table of the record's top-level metrics; a column may
be ``@field`` (a field of the record). Below the table: the record's provenance (commit, date,
CPU, cores, wall and CPU seconds) in the page's language.
"""
from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)


def record_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    from demos import _records
    env = inliner.document.settings.env
    if env.app.builder.name == "gettext":        # the catalogues hold the role, not its value
        return [nodes.inline(rawtext, text, classes=["record"])], []
    cache = env.__dict__.setdefault("_record_cache", {})
    head = text.partition(":")[0]           # rebuild the page when its record comes or changes
    env.note_dependency(str(_records.record_path(head.partition(".")[0],
                                                 head.partition(".")[2] or None)))
    try:
        shown = _records.resolve(text, cache)
    except (KeyError, ValueError, FileNotFoundError) as error:
        message = inliner.reporter.error(f"record reference {text!r}: {error}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    return [nodes.inline(rawtext, shown, classes=["record"])], []


def given_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [nodes.inline(rawtext, text, classes=["given"])], []


def _header(directive, chinese: bool) -> list[str]:
    """The header cells: ``:header-zh:`` on the Chinese edition where given, else ``:header:``."""
    options = directive.options
    text = options["header-zh"] if chinese and "header-zh" in options else options["header"]
    return [h.strip() for h in text.split("|")]


def _table(header: list, body: list, classes: list, widths=None, literal_first=False):
    """A docutils table: one header row, the body's rows; ``widths`` per column (else equal);
    ``literal_first``: the first cell of each body row set as code."""
    table = nodes.table(classes=classes)
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)
    thead, tbody = nodes.thead(), nodes.tbody()
    group += thead
    group += tbody
    for cells, parent in [(header, thead)] + [(c, tbody) for c in body]:
        line = nodes.row()
        for i, text in enumerate(cells):
            entry = nodes.entry()
            para = nodes.paragraph()
            para += (nodes.literal(text=text) if literal_first and parent is tbody and i == 0
                     else nodes.Text(text))
            entry += para
            line += entry
        parent += line
    return table


class RecordTable(SphinxDirective):
    required_arguments = 1
    option_spec = {"rows": directives.unchanged, "columns": directives.unchanged_required,
                   "header": directives.unchanged_required, "header-zh": directives.unchanged,
                   "row-labels": directives.unchanged, "row-labels-zh": directives.unchanged,
                   "values-zh": directives.unchanged, "no-provenance": directives.flag,
                   "each": directives.unchanged}

    def run(self):
        from demos import _records
        if self.env.app.builder.name == "gettext":    # a table of numbers has nothing to translate
            return []
        head = self.arguments[0]
        demo, _, mode = head.partition(".")
        chinese = (self.config.language or "en").startswith("zh")
        header = _header(self, chinese)
        try:
            record = _records.load(demo, mode or None)
        except FileNotFoundError as error:
            raise self.error(f"record-table {head}: {error}")
        if "each" in self.options:        # one row per item of a list: rows.0, rows.1, …
            items = _records.value(record, self.options["each"])
            rows = labels = [f"{self.options['each']}.{i}" for i in range(len(items))]
        else:
            rows = self.options.get("rows", "").split() or [""]
            key = "row-labels-zh" if chinese and "row-labels-zh" in self.options else "row-labels"
            labels = self.options[key].split("|") if key in self.options else rows
        if len(labels) != len(rows):
            raise self.error(f"record-table {head}: {len(labels)} {key} for {len(rows)} rows")
        words = {}                 # text values shown in Chinese: "step budget=步数用完 | …"
        if chinese and "values-zh" in self.options:
            words = dict(pair.split("=", 1) for pair in
                         (w.strip() for w in self.options["values-zh"].split("|")) if pair)
        columns = self.options["columns"].split()
        if len(header) != len(columns) + (0 if rows == [""] or "each" in self.options else 1):
            raise self.error(f"record-table {head}: {len(header)} header cells for "
                             f"{len(columns)} columns")
        cache = self.env.__dict__.setdefault("_record_cache", {})
        self.env.note_dependency(str(_records.record_path(demo, mode or None)))
        body = []
        for row, label in zip(rows, labels):
            cells = [] if row == "" or "each" in self.options else [label.strip()]
            for col in columns:
                path, _, fmt = col.partition(":")
                full = path if path.startswith("@") or not row else f"{row}.{path}"
                try:
                    text = _records.resolve(f"{head}:{full}:{fmt}" if fmt else f"{head}:{full}",
                                            cache)
                    cells.append(words.get(text, text))
                except (KeyError, ValueError, FileNotFoundError) as error:
                    raise self.error(f"record-table {head}: {error}")
            body.append(cells)
        out = [_table(header, body, ["record-table"])]
        if "no-provenance" not in self.options:
            before, after = provenance_line(record, chinese).split("{command}")
            para = nodes.paragraph(classes=["record-provenance"])
            para += [nodes.Text(before), nodes.literal(text=record["command"]), nodes.Text(after)]
            out.append(para)
        return out


class RecordCompare(SphinxDirective):
    """One metric per line, read from a demo's quick and its full record side by side::

        ```{record-compare}
        translate_dates | bahdanau.exact_match:.3f | Bahdanau, exact match | Bahdanau，完全匹配
        ```

    Columns: demo, metric (the page's language), quick, full. Below the table: the full
    records' dates, CPUs and commits, and their summed wall time."""
    has_content = True
    option_spec = {"header": directives.unchanged_required, "header-zh": directives.unchanged}

    def run(self):
        from demos import _records
        if self.env.app.builder.name == "gettext":    # a table of numbers has nothing to translate
            return []
        chinese = (self.config.language or "en").startswith("zh")
        header = _header(self, chinese)
        if len(header) != 4:
            raise self.error(f"record-compare: 4 header cells (demo, metric, quick, full), "
                             f"got {len(header)}")
        cache = self.env.__dict__.setdefault("_record_cache", {})
        body, full_records = [], {}
        for line in self.content:
            if not line.strip():
                continue
            fields = [f.strip() for f in line.split("|")]
            if len(fields) != 4:
                raise self.error(f"record-compare: a line is demo | path[:format] | label | "
                                 f"中文标签, got {line!r}")
            demo, reference, label, label_zh = fields
            cells = [demo, label_zh if chinese else label]
            for mode in ("quick", "full"):
                self.env.note_dependency(str(_records.record_path(demo, mode)))
                try:
                    cells.append(_records.resolve(f"{demo}.{mode}:{reference}", cache))
                except (KeyError, ValueError, FileNotFoundError) as error:
                    raise self.error(f"record-compare: {error}")
            full_records[demo] = cache[(demo, "full")]
            body.append(cells)
        table = _table(header, body, ["record-table", "colwidths-given"],   # long demo names
                       widths=(29, 47, 12, 12), literal_first=True)
        return [table, nodes.paragraph(text=full_summary(full_records.values(), chinese),
                                       classes=["record-provenance"])]


def full_summary(records, chinese: bool) -> str:
    """Where a set of full records came from, in one line."""
    from demos import _records
    records = list(records)
    dates = sorted({r["provenance"]["date"] for r in records})
    cpus = sorted({_records.cpu_name(r["provenance"], chinese, cores=True) for r in records})
    commits = sorted({r["provenance"]["commit"] for r in records})
    wall = sum(r["wall_seconds"] for r in records) / 60
    if chinese:
        return (f"完整模式的记录：{len(records)} 个演示，每个演示各运行一次 python -m demos --record 名称 "
                f"--full，{'、'.join(dates)}，{'、'.join(cpus)}，提交 {'、'.join(commits)}，"
                f"墙钟合计 {wall:.0f} 分钟。")
    return (f"Full records: {len(records)} demos, one python -m demos --record NAME --full "
            f"each, {', '.join(dates)}, {', '.join(cpus)}, commit {', '.join(commits)}; "
            f"{wall:.0f} minutes wall in all.")


def provenance_line(record: dict, chinese: bool) -> str:
    p = record["provenance"]
    dirty = p.get("tree_differs_from_commit")
    load = p.get("load_average_at_end")
    if load:
        load_text = (f"，结束时负载 {load[0]:.1f}（1 分钟平均）" if chinese
                     else f", load average {load[0]:.1f} when it ended")
    else:
        load_text = ""
    from demos import _records
    cpu = _records.cpu_name(p, chinese, cores=True)
    if chinese:
        return (f"记录：{{command}}，{p['date']}，{cpu}，"
                f"提交 {p['commit']}{'（工作区有未提交的改动）' if dirty else ''}，"
                f"墙钟 {record['wall_seconds']:.0f} 秒，CPU {record['cpu_seconds']:.0f} 秒{load_text}。")
    return (f"Recorded by {{command}} on {p['date']}, {cpu}, "
            f"commit {p['commit']}{' (with uncommitted changes)' if dirty else ''}: "
            f"{record['wall_seconds']:.0f} s wall, {record['cpu_seconds']:.0f} CPU s{load_text}.")


def setup(app):
    app.add_directive("record-table", RecordTable)
    app.add_directive("record-compare", RecordCompare)
    app.add_role("record", record_role)
    app.add_role("given", given_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
