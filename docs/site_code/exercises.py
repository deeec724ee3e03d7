"""The exercises page: ``attention_np.exercises.catalogue()`` rendered as HTML, hints and the
library's solution hidden in ``<details>`` until clicked. The solution's source is read from
the library at build time (inspect.getsource), so the page always shows the current code."""
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


def _one(ex: dict, pages: dict) -> str:
    esc = html.escape
    hints = "".join(f"<details class='hint'><summary>Hint {i}</summary><p>{esc(h)}</p></details>"
                    for i, h in enumerate(ex["hints"], 1))
    cache = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in ex["cache"])
    cache = (f"<p>The cache of <code>{esc(ex['cache_from'])}</code> holds:</p><ul>{cache}</ul>"
             if cache else "")
    link, source = _solution(ex["solution"], pages)
    return f"""
<section class="exercise" id="exercise-{esc(ex['name'])}">
<h3>{ex['number']}. <code>{esc(ex['signature'])}</code> — {esc(ex['title'])}
 <small>({esc(ex['section'])})</small></h3>
<p>{esc(ex['task'])}</p>
<pre class="exercise-doc">{esc(ex['doc'])}</pre>
{cache}
<pre class="exercise-cmd">{esc(ex['start'])}
{esc(ex['command'])}</pre>
{hints}
<details class="solution"><summary>Solution: the library's {link}</summary>{source}</details>
</section>"""


def render() -> str:
    """Every exercise of the catalogue, in order, as one HTML fragment."""
    from attention_np.exercises import catalogue
    pages = api_pages()
    return "\n".join(_one(ex, pages) for ex in catalogue())
