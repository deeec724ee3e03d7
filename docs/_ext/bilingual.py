"""Two editions of the site from one build line: English in ``docs/_build/html/`` and Chinese
(``language = zh_CN``, Sphinx's gettext catalogues in ``docs/locales/zh_CN/LC_MESSAGES``) in
``docs/_build/html/zh_CN/``.

* After an English HTML build finishes without error, the Chinese edition is built by a second
  ``python -m sphinx`` with the same source, flags (``-W``, ``--keep-going``, ``-j``) and
  notebook execution cache, so the README's one command writes both (set
  ``ATTENTION_NP_SITE_EDITIONS=en`` to build English alone).
* Every page of either edition carries a language switch ("English | 中文") in its header that
  links to the same page in the other edition (relative links: both open from file://).
* A translation that is missing is an error in the Chinese build, never English text shown in
  its place: tests/test_site_i18n.py fails on any untranslated or fuzzy message and on a
  catalogue older than its page.
* Cell outputs are shared by both editions (one execution cache), so an output that speaks
  to the reader carries both languages, marked ``class="i18n-en"`` / ``class="i18n-zh"``, and
  the stylesheet shows the one of the page's language (site_code.show does this for figure
  captions and tables).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)
EDITIONS = {"en": "English", "zh_CN": "中文"}
SECOND = "zh_CN"                 # the edition built into <outdir>/zh_CN after the English one


def is_chinese(app) -> bool:
    return (app.config.language or "en").startswith("zh")


def set_titles(app, config) -> None:
    """The Chinese edition's title and search options (jieba splits Chinese words; the
    glossary's terms are added to its dictionary so that 多头注意力 stays one word)."""
    if is_chinese(app):             # sphinx-togglebutton's words on the answers' dropdowns
        config.togglebutton_hint = "点击展开"
        config.togglebutton_hint_hide = "点击收起"
    if (config.language or "en").startswith("zh"):
        config.html_title = "attention-np：从零实现注意力机制"
        words = Path(app.srcdir) / "locales" / "zh_CN" / "search_terms.txt"
        config.html_search_options = {"dict": str(words)} if words.is_file() else {}


def language_switch(app, pagename, templatename, context, doctree) -> None:
    """``lang_switch`` for templates/lang-switch.html: this edition and the href of the same
    page in the other one."""
    up = "../" * pagename.count("/")
    if is_chinese(app):
        href, current = f"{up}../{pagename}.html", SECOND
    else:
        href, current = f"{up}{SECOND}/{pagename}.html", "en"
    context["lang_switch"] = {"current": current, "href": href,
                              "other": "en" if current == SECOND else SECOND}


def build_second_edition(app, exception) -> None:
    """After the English HTML build, build the Chinese edition into <outdir>/zh_CN."""
    if exception is not None or app.builder.name != "html" or is_chinese(app):
        return
    if os.environ.get("ATTENTION_NP_SITE_EDITIONS", "en,zh_CN") == "en":
        return
    outdir = Path(app.outdir) / SECOND
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-D", f"language={SECOND}"]
    if app.warningiserror:
        cmd.append("-W")
    if app.keep_going:
        cmd.append("--keep-going")
    if app.parallel > 1:
        cmd += ["-j", str(app.parallel)]
    if app.quiet:
        cmd.append("-q")
    cmd += [str(app.srcdir), str(outdir)]
    logger.info(f"building the Chinese edition into {outdir}")
    result = subprocess.run(cmd)
    if result.returncode:
        raise RuntimeError(f"the Chinese edition failed to build (exit {result.returncode}): "
                           f"{' '.join(cmd)}")



# --- the glossary: one table for both editions, from docs/glossary.toml ----------------------

def _glossary_directive():
    import tomllib

    from docutils import nodes
    from docutils.parsers.rst import Directive
    from sphinx import addnodes

    class GlossaryTable(Directive):
        """``{glossary-table}``: the terms of docs/glossary.toml as a table (中文, English,
        links to the pages that teach each), headed in the page's language, and the terms'
        notes below it."""
        has_content = False

        def run(self):
            env = self.state.document.settings.env
            zh = (env.config.language or "en").startswith("zh")
            path = Path(env.srcdir) / "glossary.toml"
            env.note_dependency(str(path))
            terms = tomllib.loads(path.read_text(encoding="utf-8"))["term"]
            header = ["中文", "英文", "讲解位置"] if zh else ["中文", "English", "where it is taught"]
            table = nodes.table(classes=["glossary-table"], translatable=False)
            group = nodes.tgroup(cols=3)
            table += group
            group += [nodes.colspec(colwidth=w) for w in (2, 3, 4)]
            group += nodes.thead("", self._row([nodes.Text(h) for h in header]))
            body = nodes.tbody()
            for term in terms:
                links = []
                for doc in term.get("taught", []):
                    if links:
                        links.append(nodes.Text(", "))
                    ref = addnodes.pending_xref("", refdomain="std", reftype="doc",
                                                reftarget="/" + doc, refexplicit=False,
                                                refdoc=env.docname)
                    ref += nodes.inline("", doc)
                    links.append(ref)
                body += self._row([nodes.Text(term["zh"]), nodes.Text(term["en"]), links])
            group += body
            notes = [t[f"note_{'zh' if zh else 'en'}"] for t in terms if t.get("note_en")]
            out = [table]
            for note in notes:                 # written per language: nothing to translate
                para = nodes.paragraph(translatable=False)
                rst = re.sub(r"\$([^$]+)\$", r":math:`\1`", note)   # the TOML's $…$ → a role
                text, _ = self.state.inline_text(rst, self.lineno)
                para += text
                out.append(para)
            return out

        @staticmethod
        def _row(cells):
            row = nodes.row()
            for cell in cells:
                entry = nodes.entry()
                para = nodes.paragraph(translatable=False)
                para += cell
                entry += para
                row += entry
            return row

    return GlossaryTable



# --- glue in translated paragraphs ------------------------------------------------------------
# Sphinx translates a paragraph by parsing its msgstr as a small document of its own; MyST-NB
# parses that as a notebook with no cells, so a glue role in a translation finds no value and
# pastes nothing (no warning). The English paragraph is parsed first, in the page's own
# notebook: each successful glue lookup remembers that notebook's renderer for the page, and a
# lookup that fails in a translation of the same page is answered from it. A glued number thus
# shows in the Chinese edition exactly as in the English.
_NOTEBOOKS: dict = {}          # docname → MyST-NB's renderer of that page (this process only)


def _docname(document):
    env = getattr(document.settings, "env", None)
    return None if env is None else env.docname


def _forget_notebook(app, doctree) -> None:
    _NOTEBOOKS.pop(app.env.docname, None)


def _glue_from_the_notebook() -> None:
    from myst_nb.core.variables import RetrievalError, VariableOutput
    from myst_nb.ext.glue import directives, roles, utils
    original = utils.retrieve_glue_data

    def retrieve(document, key):
        try:
            found = original(document, key)
        except RetrievalError:
            element = _NOTEBOOKS.get(_docname(document))
            glue = element.renderer.nb_client.glue_data if element is not None else {}
            if key not in glue:
                raise
            return VariableOutput(data=glue[key]["data"], metadata=glue[key].get("metadata", {}),
                                  nb_renderer=element, vtype="glue")
        _NOTEBOOKS[_docname(document)] = document["nb_renderer"]
        return found

    roles.retrieve_glue_data = directives.retrieve_glue_data = retrieve


def chinese_search_stemmer(app, exception) -> None:
    """Sphinx 9.0's Chinese search ships the English stemmer's code (english-stemmer.js, which
    defines EnglishStemmer) but ends language_data.js with ``window.Stemmer = ChineseStemmer``:
    every page of the Chinese edition then threw "ChineseStemmer is not defined" and search
    stemmed nothing. Point it at the stemmer that is there."""
    if exception is not None or app.builder.name != "html" or not is_chinese(app):
        return
    path = Path(app.outdir) / "_static" / "language_data.js"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if "ChineseStemmer" in text and "var EnglishStemmer" in text \
                and "var ChineseStemmer" not in text:
            path.write_text(text.replace("window.Stemmer = ChineseStemmer;",
                                         "window.Stemmer = EnglishStemmer;"), encoding="utf-8")


def setup(app):
    app.connect("build-finished", chinese_search_stemmer)
    _glue_from_the_notebook()
    app.connect("doctree-read", _forget_notebook)
    app.connect("config-inited", set_titles)
    app.connect("html-page-context", language_switch)
    app.connect("build-finished", build_second_edition, priority=900)   # after MathJax's copy
    app.add_directive("glossary-table", _glossary_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
