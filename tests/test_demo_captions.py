"""Every gallery entry of the demos has its Chinese caption (and title), every demo its Chinese
summary, and the gallery shows the language asked for.

The demo sources are read with :mod:`ast` — no demo runs: each ``save_figure(...)`` call must
pass a non-empty ``caption_zh=``, each ``Figure(...)`` with a caption too, and any call that
gives a title (positionally or as ``title=``) also a ``title_zh=``. A call with all five
positional arguments of ``Figure(path, caption, title, caption_zh, title_zh)`` is complete.
"""
import ast
import html
import re
from pathlib import Path

import pytest

from demos import DEMOS
from demos import __main__ as demos_main
from demos import formulas
from demos._common import Figure
from demos.gallery import write_gallery

DEMO_DIR = Path(__file__).resolve().parents[1] / "demos"
CJK = re.compile(r"[\u4e00-\u9fff]")

# the position of each argument, when given positionally
ARGUMENTS = {
    "save_figure": ("fig", "out_dir", "relpath", "caption", "title", "svg", "caption_zh",
                    "title_zh"),
    "Figure": ("path", "caption", "title", "caption_zh", "title_zh"),
}


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def _literal_text(node: ast.expr):
    """The literal text of a string constant or f-string (its constant parts), or None for an
    expression whose text is only known at run time (a variable, a call …)."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return None


def _empty(node: ast.expr) -> bool:
    """A missing translation: an empty string (or f-string), ``None``, or text without any
    Chinese character."""
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    text = _literal_text(node)
    if text is None:
        return False
    return not text.strip() or not CJK.search(text)


def _given(call: ast.Call, name: str):
    """The argument ``name`` of ``call`` (keyword or positional), or None."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    position = ARGUMENTS[_callee(call)].index(name)
    if position < len(call.args) and not any(isinstance(a, ast.Starred)
                                               for a in call.args[:position + 1]):
        return call.args[position]
    return None


def problems_in(source: str, filename: str) -> list[str]:
    """One line per gallery entry of ``source`` that lacks its Chinese caption or title."""
    found = []
    for call in ast.walk(ast.parse(source, filename)):
        if not isinstance(call, ast.Call) or _callee(call) not in ARGUMENTS:
            continue
        where = f"{filename}:{call.lineno}: {_callee(call)}(...)"
        if _callee(call) == "Figure" and len(call.args) >= 5:
            continue                                  # all five fields given positionally
        caption, title = _given(call, "caption"), _given(call, "title")
        caption_zh, title_zh = _given(call, "caption_zh"), _given(call, "title_zh")
        if (_callee(call) == "save_figure" or caption is not None) and (
                caption_zh is None or _empty(caption_zh)):
            found.append(f"{where} has no Chinese caption (caption_zh=)")
        if title is not None and not (isinstance(title, ast.Constant) and title.value == "") \
                and (title_zh is None or _empty(title_zh)):
            found.append(f"{where} gives a title but no Chinese one (title_zh=)")
    return found


def _demo_sources():
    return sorted(DEMO_DIR.glob("*.py"))


def test_the_checker_finds_what_is_missing():
    source = "\n".join([
        'save_figure(fig, out, "a.png", "caption")',                          # 1: no caption_zh
        'save_figure(fig, out, "a.png", "caption", "title", caption_zh="图注")',  # 2: no title_zh
        'save_figure(fig, out, "a.png", "caption", title="t", caption_zh="图注", title_zh="")',
        'Figure("a.gif", f"caption {x}", caption_zh=f"{x}")',               # 4: no Chinese
        'Figure("a.gif", "caption", "title", caption_zh="图注", title_zh="标题")',  # fine
        'Figure(relpath, caption, title, caption_zh, title_zh)',               # fine
        'save_figure(fig, out, "a.png", c, title=t, caption_zh=c_zh, title_zh=t_zh)',  # fine
        'Figure("a.gif", "caption", title="t", caption_zh="图注")',           # 8: no title_zh
    ])
    found = problems_in(source, "x.py")
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4", "8"], found


def test_every_demo_figure_has_a_chinese_caption_and_title():
    found, calls = [], 0
    for path in _demo_sources():
        source = path.read_text(encoding="utf-8")
        found += problems_in(source, f"demos/{path.name}")
        calls += sum(isinstance(n, ast.Call) and _callee(n) in ARGUMENTS
                     for n in ast.walk(ast.parse(source)))
    assert calls > 40, f"only {calls} save_figure/Figure calls found in {DEMO_DIR}"
    assert not found, "\n".join(found)


def _summary_zh(path: Path):
    """(line, value node) of the module-level ``SUMMARY_ZH = ...``, or None."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "SUMMARY_ZH" for t in targets):
            return node.lineno, node.value
    return None


@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_has_a_chinese_summary(name):
    path = DEMO_DIR / f"{name}.py"
    found = _summary_zh(path)
    assert found is not None, f"demos/{name}.py has no module-level SUMMARY_ZH"
    line, value = found
    assert isinstance(value, ast.Constant) and isinstance(value.value, str), \
        f"demos/{name}.py:{line}: SUMMARY_ZH must be a string literal"
    assert value.value.strip() and CJK.search(value.value), \
        f"demos/{name}.py:{line}: SUMMARY_ZH is empty or not Chinese"


def _sections():
    figure = Figure("formulas/soft_attention.png", "The English caption.", "English title",
                    caption_zh="中文图注。", title_zh="中文标题")
    untitled = Figure("formulas/head_view.html", "An untitled view.", caption_zh="没有标题的视图。")
    return [("formulas", demos_main.descriptions(formulas), [figure, untitled], 1.5, "")]


def test_gallery_in_chinese(tmp_path):
    page = write_gallery(tmp_path, _sections(), "zh").read_text(encoding="utf-8")
    assert "lang='zh-CN'" in page
    assert "中文图注。" in page and "中文标题" in page and "没有标题的视图。" in page
    assert html.escape(formulas.SUMMARY_ZH) in page
    assert "The English caption." not in page and "English title" not in page
    assert html.escape(" ".join(formulas.__doc__.split())) not in page


def test_gallery_in_english(tmp_path):
    page = write_gallery(tmp_path, _sections(), "en").read_text(encoding="utf-8")
    assert "lang='en'" in page
    assert "The English caption." in page and "English title" in page
    assert html.escape(" ".join(formulas.__doc__.split())) in page
    assert "中文图注。" not in page and html.escape(formulas.SUMMARY_ZH) not in page


def test_gallery_refuses_an_unknown_language(tmp_path):
    with pytest.raises(ValueError):
        write_gallery(tmp_path, _sections(), "fr")


def test_unknown_lang_on_the_command_line_lists_the_languages(capsys):
    with pytest.raises(SystemExit):
        demos_main._parse(["--lang", "fr"])
    err = capsys.readouterr().err
    assert "fr" in err and "en" in err and "zh" in err
