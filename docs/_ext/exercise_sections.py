"""Every chapter and application page ends with an "Exercises" section (Chinese: "练习"),
built from ``attention_np.exercises.catalogue()`` when the page is read, so the pages' sources
need no edit and the list never drifts from the grader:

* the page's graded exercises (those whose ``page`` is this docname), each with its name (a link
  to its entry, solution behind a click, on the exercises page), its one line, the ``start`` and
  ``check`` commands, and what the grader's answers mean;
* on a page without an exercise, one line pointing to the nearest page that has some (the next
  one in the site's order, else the one before), or to the exercises page for a page the
  exercises do not know (a page added since).

And every formula that has an exercise carries a small link to it: a code block that shows a
library function (a ``literalinclude`` with ``:pyobject:``: its text opens with ``def name(``)
whose exercise exists — the function itself, its ``_core`` (the trusting path the public
function wraps), or the backward of a shown forward — gets "✎ exercise: name" after the display
formula just before it (within three blocks; after the code block when there is none).

Only pages under ``chapters/`` and ``applications/`` get a section. The text is in the build's
language (``language = zh_CN``: Chinese), written here rather than through the gettext
catalogues, and nothing is added for the gettext builder, so the pages' catalogues do not
change.
"""
from __future__ import annotations

import re

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

PREFIXES = ("chapters/", "applications/")
SECTION_ID = "exercises"
DEF = re.compile(r"^(?:\s*@.*\n)*\s*def (\w+)\(")
# A shown function whose exercise has another name: its public name, or the exercise that
# practises the formula it computes.
ALIASES = {"sdpa_core": "scaled_dot_product_attention_forward",
           "_online_softmax_rows": "flash_attention_forward",
           "_attend_forward": "edge_softmax_forward",              # GAT's softmax over the edges
           "din_attention_forward": "din_activation_forward"}      # DIN's scores come from it

TEXT = {
    "title": ("Exercises", "练习"),
    "intro": ("Write these functions yourself; the grader compares yours with the library's on "
              "seeded cases (float32 and float64, odd sizes, masks) and says what is wrong:",
              "自己动手写出下面这些函数；评分程序在带随机种子的用例上（float32 和 float64、不规整的"
              "尺寸、掩码）把你的实现与代码库的比较，并指出错在哪里："),
    "status": (" answers passed (and shows where the library's solution lives), failed "
               "(with what is wrong, in words), error (your traceback), timeout or todo; ",
               " 的回答是：通过（并告诉你代码库的解答在哪里）、未通过（用文字说明错在哪里）、"
               "出错（给出你的代码的回溯）、超时或未完成；"),
    "progress": (" shows your progress chapter by chapter. All exercises, with hints and "
                 "solutions behind a click: ", " 按章显示你的进度。全部练习（提示和解答点击展开）见"),
    "all": ("the exercises page", "练习页"),
    "none": ("No graded exercise belongs to this page. The nearest ones are on ",
             "本页没有评分练习。最近的练习在"),
    "none_end": (".", "。"),
    "unknown": ("No graded exercise belongs to this page yet; every exercise is on ",
                "本页还没有评分练习；全部练习见"),
    "link": ("✎ exercise: ", "✎ 练习："),
}


def _say(key: str, zh: bool) -> str:
    return TEXT[key][1 if zh else 0]


def _relative(from_doc: str, to_doc: str, anchor: str = "") -> str:
    """The href of ``to_doc`` (an html page) from ``from_doc``, relative (file:// works)."""
    return "../" * from_doc.count("/") + to_doc + ".html" + (f"#{anchor}" if anchor else "")


def _entries():
    from attention_np.exercises import catalogue
    return catalogue()


def _pages():
    from attention_np.exercises.pages import PAGES
    return PAGES


def _nearest(docname: str, entries: list) -> str | None:
    """The docname of the nearest page with exercises: the next one in the site's order, else
    the one before; None for a page the exercises do not know."""
    order = [p.docname for p in _pages()]
    if docname not in order:
        return None
    having = {e["page"] for e in entries}
    i = order.index(docname)
    after = [d for d in order[i + 1:] if d in having]
    before = [d for d in order[:i] if d in having]
    return after[0] if after else (before[-1] if before else None)


def _page_title(docname: str, zh: bool) -> str:
    from attention_np.exercises.pages import page
    return page(docname).heading("zh" if zh else "en")


def _code(text: str) -> nodes.literal:
    return nodes.literal(text, text)


def _link(text: str, uri: str, code: bool = False) -> nodes.reference:
    ref = nodes.reference("", "", refuri=uri, internal=True)
    ref += _code(text) if code else nodes.Text(text)
    return ref


def _item(entry: dict, docname: str, zh: bool) -> nodes.list_item:
    title = entry["zh"]["title"] if zh else entry["title"]
    item = nodes.list_item(ids=[f"exercise-{entry['name']}"], classes=["exercise-item"])
    head = nodes.paragraph()
    head += _link(entry["name"], _relative(docname, "exercises", f"exercise-{entry['name']}"),
                  code=True)
    head += nodes.Text(("：" if zh else " — ") + title + (f"（原文 {entry['section']}）" if zh
                                                          else f" (article {entry['section']})"))
    text = f"{entry['start']}\n{entry['command']}"
    commands = nodes.literal_block(text, text, language="bash", classes=["exercise-commands"])
    item += [head, commands]
    return item


def exercises_section(docname: str, entries: list, zh: bool, ids: dict) -> nodes.section:
    """The "Exercises" section of ``docname``."""
    section_id = SECTION_ID if SECTION_ID not in ids else "graded-exercises"
    section = nodes.section(ids=[section_id], names=[_say("title", zh).lower()],
                            classes=["exercises-section"])
    section += nodes.title(_say("title", zh), _say("title", zh))
    here = [e for e in entries if e["page"] == docname]
    if here:
        section += nodes.paragraph(_say("intro", zh), _say("intro", zh))
        items = nodes.bullet_list(classes=["exercise-list"])
        items += [_item(e, docname, zh) for e in here]
        section += items
        status = nodes.paragraph(classes=["exercise-status"])
        status += _code("check")
        status += nodes.Text(_say("status", zh))
        status += _code("python -m attention_np.exercises list")
        status += nodes.Text(_say("progress", zh))
        status += _link(_say("all", zh), _relative(docname, "exercises"))
        status += nodes.Text(_say("none_end", zh))
        section += status
        return section
    nearest = _nearest(docname, entries)
    line = nodes.paragraph(classes=["exercise-none"])
    if nearest is None:
        line += nodes.Text(_say("unknown", zh))
        line += _link(_say("all", zh), _relative(docname, "exercises"))
    else:
        line += nodes.Text(_say("none", zh))
        line += _link(_page_title(nearest, zh), _relative(docname, nearest, SECTION_ID))
    line += nodes.Text(_say("none_end", zh))
    section += line
    return section


def _exercise_of(shown: str, by_function: dict) -> dict | None:
    """The exercise a shown function stands for: itself, its public name (``x_core`` →
    ``x`` or ``x_forward``), or the backward of a shown forward."""
    names = [ALIASES.get(shown, shown)]
    if shown in ALIASES:
        return by_function.get(names[0])
    if shown.endswith("_core"):
        names += [shown[:-5], shown[:-5] + "_forward"]
    if shown.endswith("_forward"):
        names.append(shown[:-8] + "_backward")
    for name in names:
        if name in by_function:
            return by_function[name]
    return None


def add_formula_links(doctree, docname: str, entries: list, zh: bool) -> int:
    """"✎ exercise: name" after the display formula before each code block that shows a
    function with an exercise. Returns how many links were added."""
    by_function = {}
    for e in entries:
        by_function.setdefault(e["function"], e)
    on_page = {e["name"] for e in entries if e["page"] == docname}
    placed: dict = {}                                         # node after which → names linked
    for block in list(doctree.findall(nodes.literal_block)):
        found = DEF.match(block.astext())
        entry = found and _exercise_of(found.group(1), by_function)
        if not entry:
            continue
        anchor = block.parent if isinstance(block.parent, nodes.container) and \
            "literal-block-wrapper" in block.parent.get("classes", []) else block
        parent = anchor.parent
        if parent is None:
            continue
        index = parent.index(anchor)
        after = anchor
        for sibling in reversed(parent.children[max(0, index - 3):index]):
            if isinstance(sibling, nodes.math_block):
                after = sibling
                break
            if isinstance(sibling, (nodes.section, nodes.literal_block, nodes.container)):
                break
        names = placed.setdefault(id(after), (after, []))[1]
        if entry["name"] not in names:
            names.append(entry["name"])
    count = 0
    for after, names in placed.values():
        line = nodes.paragraph(classes=["exercise-link"])
        for i, name in enumerate(names):
            if i:
                line += nodes.Text(" · ")
            uri = f"#exercise-{name}" if name in on_page else \
                _relative(docname, "exercises", f"exercise-{name}")
            line += _link(_say("link", zh) + name, uri)
            count += 1
        after.parent.insert(after.parent.index(after) + 1, line)
    return count


def on_doctree_read(app, doctree) -> None:
    docname = app.env.docname
    if app.builder.name == "gettext" or not docname.startswith(PREFIXES):
        return
    zh = (app.config.language or "en").startswith("zh")
    try:
        entries = _entries()
    except Exception as error:                               # the site still builds
        logger.warning(f"exercise sections: the catalogue failed: {error}", location=docname)
        return
    top = next((s for s in doctree.children if isinstance(s, nodes.section)), None)
    if top is None:
        return
    add_formula_links(doctree, docname, entries, zh)
    section = exercises_section(docname, entries, zh, doctree.ids)
    top += section
    for node in [section, *section.findall(nodes.list_item)]:
        for node_id in node["ids"]:
            doctree.ids.setdefault(node_id, node)


def setup(app):
    # Before the table-of-contents collector (priority 500), so the section is in the page's TOC.
    app.connect("doctree-read", on_doctree_read, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
