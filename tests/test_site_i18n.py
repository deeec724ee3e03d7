"""The Chinese edition (issue 28): its catalogues are complete and current, it uses the
glossary's terms, and the built site has a Chinese twin of every page, with as much math and as
many figures, a language switch both ways, Chinese search and real CJK glyphs in Chromium.

The catalogue tests need no build: they read docs/locales and regenerate the English messages
with ``sphinx-build -b gettext`` (notebooks not executed) to compare. The site tests skip,
saying why, when the site has not been built or no Chromium is installed (.ci/run builds it).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))                   # docs/ is not a package
import i18n  # noqa: E402
from site_browser import Browser, find_browser  # noqa: E402

SITE = ROOT / "docs" / "_build" / "html"
ZH = SITE / "zh_CN"
SKIP_DIRS = {"_static", "_sources", "_images", "zh_CN", ".doctrees"}
CJK = re.compile(r"[\u4e00-\u9fff]")


# --- the catalogues ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh_messages(tmp_path_factory):
    """{page: set of msgids} of the English pages as they are now (sphinx-build -b gettext)."""
    pytest.importorskip("myst_nb", reason="the docs extra is not installed: "
                                          "pip install -e '.[docs]' (.ci/run does)")
    out = tmp_path_factory.mktemp("gettext")
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "gettext", "-D",
                    "nb_execution_mode=off", str(DOCS), str(out)], check=True,
                   capture_output=True)
    return {p.relative_to(out).with_suffix("").as_posix():
            {e.msgid for e in polib.pofile(str(p)) if e.msgid}
            for p in out.rglob("*.pot")}


def test_every_page_has_a_catalogue_and_every_catalogue_a_page(fresh_messages):
    catalogues = {p.relative_to(i18n.LOCALE).with_suffix("").as_posix()
                  for p in i18n.catalogues()}
    assert set(fresh_messages) - catalogues == set(), "pages without a Chinese catalogue"
    assert catalogues - set(fresh_messages) == set(), "catalogues of pages that no longer exist"


def test_no_catalogue_is_older_than_its_page(fresh_messages):
    """A changed English paragraph is a message the catalogue lacks: run
    `python docs/i18n.py update` and translate what comes back fuzzy or empty."""
    stale = {}
    for page, messages in fresh_messages.items():
        path = i18n.LOCALE / f"{page}.po"
        if path.exists():
            have = {e.msgid for e in polib.pofile(str(path)) if not e.obsolete and e.msgid}
            if messages != have:
                stale[page] = {"new in English": len(messages - have),
                               "gone from English": len(have - messages)}
    assert stale == {}, f"catalogues behind their pages: {stale}"


@pytest.mark.parametrize("path", i18n.catalogues(), ids=lambda p: p.stem)
def test_catalogue_is_translated_and_uses_the_glossary(path):
    """No untranslated or fuzzy message, markup carried over, glossary terms spelled as the
    glossary says (docs/glossary.toml)."""
    problems = i18n.problems(path)
    assert problems == [], "\n".join(problems[:20])


def test_the_glossary_check_catches_a_wrong_term():
    glossary = i18n.load_glossary()
    entry = polib.POEntry(msgid="Multi-head attention runs several heads.",
                          msgstr="多头自注意机制同时运行几个头。")
    assert any("multi-head attention" in p for p in i18n.glossary_problems(entry, glossary))
    entry.msgstr = "多头注意力同时运行几个头。"
    assert i18n.glossary_problems(entry, glossary) == []
    code = polib.POEntry(msgid="Pass `mask=m` to the call.", msgstr="调用时传入 `mask=m`。")
    assert i18n.glossary_problems(code, glossary) == []        # code is not prose
    assert i18n.markup_problems(polib.POEntry(msgid="see {doc}`a`", msgstr="见 a")) != []
    # emphasis that ends in Chinese punctuation before a character shows its asterisks
    assert i18n.markup_problems(polib.POEntry(msgid="**Needs:** x", msgstr="**前置知识：**第 3 章"))
    assert not i18n.markup_problems(polib.POEntry(msgid="**Needs:** x", msgstr="**前置知识**：第 3 章"))
    # a translation that Markdown would read as a list leaves its title in English, silently
    assert i18n.markup_problems(polib.POEntry(msgid="3. Soft attention", msgstr="3. 软注意力"))
    assert not i18n.markup_problems(polib.POEntry(msgid="3. Soft attention",
                                                  msgstr="3\\. 软注意力"))


# --- the built site ---------------------------------------------------------------------------

built = pytest.mark.skipif(not (ZH / "index.html").exists(),
                           reason="site not built: `python -m sphinx -j auto -W --keep-going "
                                  "-b html docs docs/_build/html` (.ci/run does)")
ENGLISH = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
                 if not SKIP_DIRS & set(p.relative_to(SITE).parts)) if SITE.exists() else []


@built
def test_every_english_page_has_a_chinese_twin():
    missing = [p for p in ENGLISH if not (ZH / p).exists()]
    assert missing == []
    head = (ZH / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<html[^>]*\blang="zh-CN"', head)


@built
def test_chinese_search_finds_the_chapters():
    """jieba splits the Chinese text (the docs extra installs it); 注意力 and 多头 lead to
    chapters."""
    text = (ZH / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    docs = index["docnames"]
    for word in ("注意力", "多头"):
        hits = index["terms"].get(word)
        assert hits is not None, f"{word} is not in the Chinese search index"
        hits = hits if isinstance(hits, list) else [hits]
        assert any(docs[h].startswith("chapters/") for h in hits), word


@pytest.fixture(scope="module")
def twins():
    """Every page of both editions loaded once: {page: (english report, chinese report)}."""
    js = r"""(() => ({
      math: document.querySelectorAll('mjx-container').length,
      figures: document.querySelectorAll('.cell_output img').length,
      pasted: [...document.querySelectorAll('article .pasted-text, article .pasted-inline, '
                + 'article span.record')].map(e => e.textContent.trim()),
      switch: [...document.querySelectorAll('.lang-switch a')].map(a => a.href),
      english: [...document.querySelectorAll('article p, article li, article h1, article h2')]
        .filter(e => !e.closest('pre, code, .cell_output, .highlight, table.glossary-table'))
        .map(e => {            // paper titles (emphasised) and code names stay English
          const c = e.cloneNode(true);
          c.querySelectorAll('em, code, cite, .pre, .sig').forEach(x => x.remove());
          return c.textContent.replace(/\S*[_().=\/<>\[\]]\S*/g, ' ').trim();
        }).filter(t => !/[\u4e00-\u9fff]/.test(t)
          && (t.match(/[A-Za-z]{3,}/g) || []).length >= 8),
    }))()"""
    out = {}
    with Browser() as browser:
        for rel in ENGLISH:
            reports = []
            for root in (SITE, ZH):
                page = browser.open((root / rel).as_uri())
                reports.append(page.evaluate(js))
                page.close()
            out[rel] = tuple(reports)
    return out


@built
@pytest.mark.skipif(find_browser() is None, reason="no headless Chromium installed")
@pytest.mark.parametrize("page", ENGLISH)
def test_chinese_twin_has_the_math_figures_and_switch(twins, page):
    en, zh = twins[page]
    assert zh["math"] >= en["math"], f"{page}: {zh['math']} formulas in Chinese, {en['math']}"
    assert zh["figures"] >= en["figures"], f"{page}: fewer figures in Chinese"
    # numbers glued from a cell or read from a record: the same values, none of them blank
    assert "" not in zh["pasted"], f"{page}: a glued or recorded value is blank in Chinese"
    assert sorted(zh["pasted"]) == sorted(en["pasted"]), (page, en["pasted"], zh["pasted"])
    assert [Path(u[7:]).resolve() for u in en["switch"]] == [(ZH / page).resolve()], en["switch"]
    assert [Path(u[7:]).resolve() for u in zh["switch"]] == [(SITE / page).resolve()], zh["switch"]
    assert zh["english"] == [], f"{page}: English prose in the Chinese edition: {zh['english'][:3]}"


@built
@pytest.mark.skipif(find_browser() is None, reason="no headless Chromium installed")
def test_chromium_draws_chinese_with_a_cjk_font():
    """The page asks for a CJK font; the glyphs Chromium drew came from one that has them
    (.ci/run installs fonts-noto-cjk): no box for a missing glyph."""
    with Browser() as browser:
        page = browser.open((ZH / "chapters" / "06-self-attention.html").as_uri())
        fonts = page.platform_fonts("article h1")
        page.close()
    families = [f["familyName"] for f in fonts if f["glyphCount"] > 0]
    assert any(re.search(r"CJK|WenQuanYi|Hei|Song|Ming", f) for f in families), families
