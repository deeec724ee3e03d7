"""The exercises page: ``attention_np.exercises.catalogue()`` rendered as HTML, grouped by the
site's chapters and pages in the site's order; hints and the library's solution hidden in
``<details>`` until clicked. The solution's source is read from the library at build time
(inspect.getsource), so the page always shows the current code.

Cell outputs are shared by the English and the Chinese edition (one execution cache), so every
text is given in both languages, marked ``class="i18n-en"`` / ``class="i18n-zh"`` (the
stylesheet shows the page's language); the code, the commands and the docstrings are the same in
both."""
from __future__ import annotations

import html
import importlib
import inspect
import re
from pathlib import Path

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

API = Path(__file__).resolve().parents[1] / "api"


def api_pages() -> dict[str, str]:
    """module → the API page that documents it (from the ``automodule`` lines of docs/api)."""
    pages = {}
    for page in sorted(API.glob("*.md")):
        for module in re.findall(r"automodule:: (\S+)", page.read_text(encoding="utf-8")):
            pages.setdefault(module, f"api/{page.stem}.html")
    return pages


def _solution(dotted: str, pages: dict) -> tuple[str, str]:
    """(link to the API entry or "", highlighted source) of a dotted function name."""
    module, name = dotted.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), name)
    source = highlight(inspect.getsource(obj), PythonLexer(), HtmlFormatter(cssclass="highlight"))
    page = pages.get(obj.__module__)
    link = f'<a href="{page}#{obj.__module__}.{obj.__qualname__}"><code>{dotted}</code></a>' \
        if page else f"<code>{dotted}</code>"
    return link, source


def _both(en: str, zh: str, tag: str = "span") -> str:
    """``en`` and ``zh`` (escaped) in two elements, one per edition."""
    return (f'<{tag} class="i18n-en">{html.escape(en)}</{tag}>'
            f'<{tag} class="i18n-zh" lang="zh-CN">{html.escape(zh)}</{tag}>')


def _page_href(docname: str) -> str:
    return f"{docname}.html#exercises"


def _one(ex: dict, pages: dict) -> str:
    esc, zh = html.escape, ex["zh"]
    hints = "".join(
        f"<details class='hint'><summary>{_both(f'Hint {i}', f'提示 {i}')}</summary>"
        f"{_both(h, hz, 'p')}</details>"
        for i, (h, hz) in enumerate(zip(ex["hints"], zh["hints"]), 1))
    cache = ""
    if ex["cache"]:
        items = "".join(f"<li><code>{esc(k)}</code>: {_both(v, vz)}</li>"
                        for (k, v), (_, vz) in zip(ex["cache"], zh["cache"]))
        cache = (f"<p>{_both('The cache of ', '')}<code>{esc(ex['cache_from'])}</code>"
                 f"{_both(' holds:', ' 返回的 cache 包含：')}</p><ul>{items}</ul>")
    link, source = _solution(ex["solution"], pages)
    return f"""
<section class="exercise" id="exercise-{esc(ex['name'])}">
<h3>{ex['number']}. <code>{esc(ex['signature'])}</code> — {_both(ex['title'], zh['title'])}
 <small>({_both('article ', '原文 ')}{esc(ex['section'])})</small></h3>
{_both(ex['task'], zh['task'], 'p')}
<pre class="exercise-doc">{esc(ex['doc'])}</pre>
{cache}
<pre class="exercise-cmd">{esc(ex['start'])}
{esc(ex['command'])}</pre>
{hints}
<details class="solution"><summary>{_both("Solution: the library's ", "解答：代码库的 ")}{link}
</summary>{source}</details>
</section>"""


def render() -> str:
    """Every exercise of the catalogue as one HTML fragment: a heading per page of the site
    (linking to that page's Exercises section), its exercises below it, in the site's order."""
    from attention_np.exercises import catalogue
    from attention_np.exercises.pages import PAGES
    pages, entries, parts = api_pages(), catalogue(), []
    for page in PAGES:
        here = [ex for ex in entries if ex["page"] == page.docname]
        if not here:
            continue
        en, zh = page.heading("en"), page.heading("zh")
        anchor = html.escape(page.docname.replace("/", "-"))
        parts.append(f'<h2 class="exercise-chapter" id="chapter-{anchor}">'
                     f'<a href="{_page_href(page.docname)}">{_both(en, zh)}</a> '
                     f'<small>{_both(f"({len(here)} exercises)", f"（{len(here)} 道练习）")}'
                     f'</small></h2>')
        parts.extend(_one(ex, pages) for ex in here)
    return "\n".join(parts)
