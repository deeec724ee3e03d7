"""The static gallery ``out/index.html``: every figure of every demo with what to look at."""
from __future__ import annotations

import html
from pathlib import Path

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
section { margin-bottom: 3em; } figure { margin: 1.5em 0; }
figure img, figure iframe { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #444; margin-top: .4em; } .meta { color: #777; font-size: .9em; }
"""


def _figure_html(fig, out_dir: Path) -> str:
    src = html.escape(fig.path)
    if fig.path.endswith(".html"):
        body = (f'<iframe src="{src}" loading="lazy" width="100%" height="620"></iframe>'
                f'<br><a href="{src}">open full page</a>')
    else:
        body = f'<a href="{src}"><img src="{src}" alt="{html.escape(fig.title or fig.path)}"></a>'
        svg = Path(fig.path).with_suffix(".svg")
        if fig.path.endswith(".png") and (out_dir / svg).exists():
            body += f' <a href="{html.escape(str(svg))}">SVG</a>'
    title = f"<b>{html.escape(fig.title)}</b> " if fig.title else ""
    return f"<figure>{body}<figcaption>{title}{html.escape(fig.caption)}</figcaption></figure>"


def write_gallery(out_dir: Path, sections) -> Path:
    """``sections``: (demo name, description, [Figure], seconds). Returns the index path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>attention-np gallery</title>"
             f"<style>{_CSS}</style></head><body><h1>attention-np gallery</h1>"]
    parts.append("<ul>" + "".join(f'<li><a href="#{n}">{n}</a></li>' for n, *_ in sections) + "</ul>")
    for name, doc, figures, seconds in sections:
        parts.append(f'<section id="{name}"><h2>{name}</h2><p>{html.escape(doc)}</p>'
                     f'<p class="meta">{len(figures)} figures, ran in {seconds:.0f} s</p>')
        parts.extend(_figure_html(f, out_dir) for f in figures)
        parts.append("</section>")
    parts.append("</body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
