"""Sphinx configuration of the attention-np learning site.

Build (the README's third line), from the repository root::

    pip install -e ".[docs]"
    python -m sphinx -j auto -W --keep-going -b html docs docs/_build/html

Pages are MyST notebooks executed at build time (myst-nb, cached in docs/_build/.jupyter_cache),
so every number and figure comes from the code of the commit that built them. Math is rendered
by MathJax 3 (SVG output, no web fonts) copied from the ``django-static-mathjax`` wheel into the
built site: the site opens from file:// with no network.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
# Pages import their experiment code (docs/site_code) and the library; the notebook kernels
# inherit this environment. One BLAS thread per kernel: pages run two at a time (-j 2 works too).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(DOCS), str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The pages' kernels inherit this environment: force the inline backend, or an MPLBACKEND=Agg
# set for headless runs (as .ci/run does) makes every figure cell render nothing.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

project = "attention-np"
author = "attention-np contributors"
copyright = "attention-np contributors"
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "bilingual",                      # docs/_ext: the Chinese edition, the language switch
    "records",                        # docs/_ext: {record} numbers from docs/records/, {given}
    "sphinx_togglebutton",            # answers to the "Try it" questions open on click
    "exercise_sections",              # docs/_ext: an "Exercises" section ending every chapter
    "page_at_a_time",                 # docs/_ext: -j reads one page per process at a time
]
exclude_patterns = ["_build", "site_code", "_ext", "locales", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# ----------------------------------------------------------------------------- two editions
# English is the source; the Chinese edition (-D language=zh_CN, built by docs/_ext/bilingual.py
# right after the English one) translates it through gettext catalogues, one per page:
#   python -m sphinx -b gettext docs docs/_build/gettext          # the messages (.pot)
#   sphinx-intl update -p docs/_build/gettext -l zh_CN -d docs/locales
# A paragraph that changes in English comes back untranslated or fuzzy, and the tests fail
# until its translation is brought up to date (tests/test_site_i18n.py).
language = "en"
locale_dirs = ["locales/"]
gettext_compact = False               # one catalogue per page
gettext_uuid = False
gettext_location = False              # no line numbers: a moved paragraph is not a change
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}

# ----------------------------------------------------------------------------- MyST / myst-nb
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
nb_execution_mode = "cache"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
# a guard against a hung cell, not a budget: the longest cell (the overfitting page's 24
# trainings) takes ~100 CPU s on a Zen 4 and passed 240 s on a Zen 3 (AVX2) while another page
# built beside it and a third job ran
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_image_options = {"align": "center"}
nb_render_markdown_format = "myst"     # Markdown outputs (tables of measured numbers) as MyST

# ----------------------------------------------------------------------------- math, offline
# MathJax 3 from a PyPI wheel (no CDN): copied into _static/mathjax by copy_mathjax below.
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}}


def mathjax_source() -> Path:
    """tex-svg-full.js in the installed ``django-static-mathjax`` wheel (package ``mathjax``)."""
    import mathjax
    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg-full.js"


def copy_mathjax(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(mathjax_source(), target / "tex-svg-full.js")


# ----------------------------------------------------------------------------- API reference
autodoc_default_options = {"members": True, "undoc-members": False, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autosummary_generate = False

# ----------------------------------------------------------------------------- HTML
html_theme = "sphinx_book_theme"
html_title = "attention-np: attention from scratch"
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
}
pygments_style = "sphinx"


# The library's docstrings are plain text with Unicode math and column-aligned tables (what
# ``help()`` shows), not reStructuredText: show each one as written, in a wrapped text block.
ROLE = re.compile(r":(?:func|class|data|mod|meth|attr):`~?([^`]+)`")


def docstring_as_text(app, what, name, obj, options, lines) -> None:
    text = [ROLE.sub(r"\1", line) for line in lines]
    while text and not text[-1].strip():
        text.pop()
    if text:
        lines[:] = [".. code-block:: text", "   :class: docstring", ""] + [
            "   " + line for line in text] + [""]


def setup(app):
    app.connect("autodoc-process-docstring", docstring_as_text)
    if not mathjax_source().exists():
        raise RuntimeError(f"MathJax not found at {mathjax_source()}: pip install -e '.[docs]'")
    app.connect("build-finished", copy_mathjax)
