"""What every page of the site shares: a scratch folder for the demos' figure files, showing a
saved figure or a table of measured numbers, embedding an interactive view.

Pages call the demos' own functions (``demos.formulas``, ``demos.recommend`` …), which save
figures to files; :func:`show_file` puts such a file into the page's output, so the figure on
the site is exactly the demo's figure, drawn at build time.
"""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import matplotlib

matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 10})

SCRATCH = Path(tempfile.mkdtemp(prefix="attention-np-site-"))


def quiet_demos() -> Path:
    """Silence the demos' progress bars and report lines; return the scratch output folder."""
    from demos._progress import set_quiet
    set_quiet(True)
    return SCRATCH


def show_file(relpath: str | Path, width: int | None = None):
    """Display a PNG or GIF that a demo wrote under the scratch folder (or any path)."""
    from IPython.display import Image, display
    path = Path(relpath)
    path = path if path.is_absolute() else SCRATCH / path
    display(Image(filename=str(path), width=width))


def bilingual(en: str, zh: str, tag: str = "span") -> str:
    """HTML holding both languages; the site's stylesheet shows the one of the page (a cell's
    output is shared by the English and the Chinese edition: one execution, one cache)."""
    return (f'<{tag} class="i18n-en" lang="en">{html.escape(en)}</{tag}>'
            f'<{tag} class="i18n-zh" lang="zh-CN">{html.escape(zh)}</{tag}>')


def show_figures(figures, width: int | None = None) -> None:
    """Display the image files of the demos' ``Figure`` entries, each with its caption in the
    reader's language."""
    from IPython.display import HTML, display
    for figure in figures:
        if figure.path.endswith((".png", ".gif")):
            show_file(figure.path, width)
            display(HTML('<p class="figure-caption">'
                         + bilingual(figure.caption_in("en"), figure.caption_in("zh"), "em")
                         + "</p>"))


def table(rows: list[dict], digits: int = 3):
    """A Markdown table of measured numbers: one dict per row, its keys as the header."""
    from IPython.display import Markdown
    header = list(rows[0])

    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.1e}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(r[k]) for k in header) + " |" for r in rows]
    return Markdown("\n".join(lines))


def embed_html(path: Path, height: int = 520):
    """An interactive view (one self-contained HTML file) embedded live, via ``srcdoc``."""
    from IPython.display import HTML
    source = html.escape(Path(path).read_text(encoding="utf-8"), quote=True)
    return HTML(f'<div class="attention-view"><iframe srcdoc="{source}" '
                f'style="width:100%;height:{height}px;border:1px solid #ccc"></iframe></div>')
