"""The static gallery ``out/index.html``: every figure of every demo with what to look at, in
English or in Chinese (``python -m demos --lang zh``; the text inside the figures stays
English)."""
from __future__ import annotations

import html
from pathlib import Path

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
section { margin-bottom: 3em; } figure { margin: 1.5em 0; }
figure img, figure iframe { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #444; margin-top: .4em; } .meta { color: #777; font-size: .9em; }
"""


WORDS = {
    "en": {"title": "attention-np gallery", "open": "open full page",
           "meta": "{n} figures, ran in {s:.0f} s", "skipped": "Skipped in this run: {why}"},
    "zh": {"title": "attention-np 图集", "open": "打开完整页面",
           "meta": "共 {n} 幅图，运行 {s:.0f} 秒", "skipped": "本次运行跳过：{why}"},
}


def _figure_html(fig, out_dir: Path, lang: str) -> str:
    src = html.escape(fig.path)
    if fig.path.endswith(".html"):
        body = (f'<iframe src="{src}" loading="lazy" width="100%" height="620"></iframe>'
                f'<br><a href="{src}">{WORDS[lang]["open"]}</a>')
    else:
        alt = html.escape(fig.title_in(lang) or fig.path)
        body = f'<a href="{src}"><img src="{src}" alt="{alt}"></a>'
        svg = Path(fig.path).with_suffix(".svg")
        if fig.path.endswith(".png") and (out_dir / svg).exists():
            body += f' <a href="{html.escape(str(svg))}">SVG</a>'
    title = f"<b>{html.escape(fig.title_in(lang))}</b> " if fig.title else ""
    caption = html.escape(fig.caption_in(lang))
    return f"<figure>{body}<figcaption>{title}{caption}</figcaption></figure>"


def write_gallery(out_dir: Path, sections, lang: str = "en") -> Path:
    """``sections``: (demo name, {lang: description}, [Figure], seconds, skipped reason or "").
    Returns the index path."""
    if lang not in WORDS:
        raise ValueError(f"lang must be one of {sorted(WORDS)}, got {lang!r}")
    words = WORDS[lang]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_lang = "zh-CN" if lang == "zh" else "en"
    parts = [f"<!doctype html><html lang='{html_lang}'><head><meta charset='utf-8'>"
             f"<title>{words['title']}</title><style>{_CSS}</style></head><body>"
             f"<h1>{words['title']}</h1>"]
    parts.append("<ul>" + "".join(f'<li><a href="#{n}">{n}</a></li>' for n, *_ in sections) + "</ul>")
    for name, docs, figures, seconds, skipped in sections:
        parts.append(f'<section id="{name}"><h2>{name}</h2><p>{html.escape(docs[lang])}</p>'
                     + (f"<p>{html.escape(words['skipped'].format(why=skipped))}</p>"
                        if skipped else "")
                     + f'<p class="meta">{words["meta"].format(n=len(figures), s=seconds)}</p>')
        parts.extend(_figure_html(f, out_dir, lang) for f in figures)
        parts.append("</section>")
    parts.append("</body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
