"""The Chinese edition's catalogues, checked: what tests/test_site_i18n.py asserts, and what a
translator runs while working.

    python docs/i18n.py check [PO …]      # untranslated, fuzzy, markup and glossary problems
    python docs/i18n.py update [PAGE …]   # regenerate the messages and merge them into the .po
                                          # (changed English paragraphs come back fuzzy/empty);
                                          # PAGE (e.g. chapters/03-soft-attention) limits the
                                          # merge to those pages' catalogues

Catalogues: docs/locales/zh_CN/LC_MESSAGES/<page>.po, one per page of the site (Sphinx gettext,
``gettext_compact = False``). The glossary: docs/glossary.toml.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import sys
import tomllib
from pathlib import Path

import polib

DOCS = Path(__file__).resolve().parent
LOCALE = DOCS / "locales" / "zh_CN" / "LC_MESSAGES"
GLOSSARY = DOCS / "glossary.toml"

# What a translation must carry over unchanged from its English message: MyST roles with their
# targets, inline code, inline math, link targets and substitutions.
INLINE_CODE = re.compile(r"``[^`]+``|`[^`]+`")
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
URL = re.compile(r"https?://\S+")
PROSE = re.compile(r"[A-Za-z]{2,}(?:[ -]+[A-Za-z]{2,}){3,}")   # four English words in a row
FORMAT_FLAGS = {"python-format", "python-brace-format", "no-python-format",
                "no-python-brace-format"}


def catalogues() -> list[Path]:
    return sorted(LOCALE.rglob("*.po"))


def load_glossary() -> list[dict]:
    return tomllib.loads(GLOSSARY.read_text(encoding="utf-8"))["term"]


def _prose(text: str) -> str:
    """English text without the parts that are not prose: roles, code, math, link targets."""
    for pattern in (ROLE, INLINE_CODE, MATH, URL):
        text = pattern.sub(" ", text)
    return LINK_TARGET.sub("]", text)


def _term_pattern(term: dict) -> re.Pattern:
    forms = [term["en"], *term.get("en_forms", [])]
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.I)


def is_math_or_code(text: str) -> bool:
    """A message with no prose of its own: a math block, code, names, numbers."""
    stripped = text.strip()
    return stripped.startswith("\\") or not PROSE.search(_prose(stripped))


def glossary_problems(entry: polib.POEntry, glossary: list[dict]) -> list[str]:
    """Terms the English message uses whose glossary spelling its translation lacks."""
    if not entry.msgstr or is_math_or_code(entry.msgid):
        return []
    english = _prose(entry.msgid)
    problems = []
    for term in glossary:
        if term.get("check") and _term_pattern(term).search(english):
            spellings = [term["zh"], *term.get("zh_forms", [])]
            if not any(s in entry.msgstr for s in spellings):
                problems.append(f"uses '{term['en']}' but not {' / '.join(spellings)}")
    return problems


def unclosed_emphasis(text: str) -> list[str]:
    """Emphasis spans (``**…**``, then ``*…*``, paired left to right) whose text ends in Chinese
    punctuation right before a letter or ideograph: CommonMark does not close them."""
    found = []
    for pattern, plain in ((r"\*\*(.+?)\*\*", text), (r"\*([^*\n]+?)\*", text.replace("**", "\0"))):
        for m in re.finditer(pattern, plain):
            after = plain[m.end():m.end() + 1]
            if m.group(1)[-1:] in "：。，；！？、" and re.match(r"[\u4e00-\u9fffA-Za-z0-9]", after):
                found.append(m.group(0))
    return found


def markup_problems(entry: polib.POEntry) -> list[str]:
    """Roles, inline code, math and link targets that the translation does not carry over."""
    if not entry.msgstr:
        return []
    problems = []
    for kind, pattern in (("role", ROLE), ("math", MATH), ("link target", LINK_TARGET)):
        theirs = pattern.findall(entry.msgid)
        ours = pattern.findall(entry.msgstr)
        missing = [x for x in theirs if x not in ours]
        if missing:
            problems.append(f"{kind} missing: {missing[:3]}")
    codes = [c for c in INLINE_CODE.findall(ROLE.sub(" ", entry.msgid))]
    missing = [c for c in codes if c not in entry.msgstr]
    if missing:
        problems.append(f"inline code missing: {missing[:3]}")
    # Sphinx parses a translation as Markdown of its own: "1. …" there is a list, and a title
    # or paragraph that becomes a list is silently left in English. Escape it: "1\\. …".
    # CommonMark does not close emphasis that ends in punctuation right before a letter:
    # "**前置知识：**第" shows its asterisks. Put the punctuation outside: "**前置知识**：第".
    if unclosed_emphasis(entry.msgstr):
        problems.append("emphasis ends in punctuation before a character: it will not render; "
                        "move the punctuation outside the asterisks")
    if re.match(r"\d+[.)] ", entry.msgstr):
        problems.append("starts like a numbered list item: write it as '"
                        + re.sub(r"^(\d+)([.)])", r"\1\\\2", entry.msgstr[:12]) + "…'")
    return problems


def problems(path: Path, glossary: list[dict] | None = None) -> list[str]:
    """Every problem of one catalogue: untranslated, fuzzy, obsolete, markup, glossary."""
    glossary = load_glossary() if glossary is None else glossary
    po = polib.pofile(str(path))
    where = path.relative_to(LOCALE).as_posix()
    out = []
    for entry in po:
        head = entry.msgid[:70].replace("\n", " ")
        if entry.obsolete:
            out.append(f"{where}: obsolete entry (remove it): {head!r}")
        elif "fuzzy" in entry.flags:
            out.append(f"{where}: fuzzy (the English changed; update and drop the flag): {head!r}")
        elif not entry.msgstr.strip():
            out.append(f"{where}: untranslated: {head!r}")
        elif entry.msgstr == entry.msgid and not is_math_or_code(entry.msgid):
            out.append(f"{where}: untranslated (a copy of the English prose): {head!r}")
        else:
            out += [f"{where}: {p}: {head!r}" for p in markup_problems(entry)]
            out += [f"{where}: glossary: {p}: {head!r}" for p in glossary_problems(entry, glossary)]
    return out


def update(pages: list[str] | None = None) -> None:
    """Regenerate the .pot files from the English pages and merge them into the catalogues (all
    of them, or only those of ``pages``). The .pot files go to a fresh temporary folder, so two
    translators updating at once do not share one."""
    with tempfile.TemporaryDirectory(prefix="attention-np-gettext-") as tmp:
        pot = Path(tmp)
        subprocess.run([sys.executable, "-m", "sphinx", "-q", "-E", "-b", "gettext", "-D",
                        "nb_execution_mode=off", "-d", str(pot / ".doctrees"), str(DOCS),
                        str(pot)], check=True)
        shutil.rmtree(pot / ".doctrees", ignore_errors=True)
        built = {p.relative_to(pot).with_suffix("").as_posix() for p in pot.rglob("*.pot")}
        wanted = set(pages) if pages else built
        unknown = wanted - built
        if unknown:
            raise SystemExit(f"no such page: {', '.join(sorted(unknown))}")
        for page in built - wanted:
            (pot / f"{page}.pot").unlink()
        subprocess.run([sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot), "-l",
                        "zh_CN", "-d", str(DOCS / "locales")], check=True)
    for path in catalogues():
        if path.relative_to(LOCALE).with_suffix("").as_posix() not in wanted:
            continue
        po = polib.pofile(str(path))
        # Drop the paragraphs the pages no longer have (a changed one was matched to its old
        # translation first, and marked fuzzy), and Babel's python-format flags: it takes
        # "30 % of" for a format string ("% o"), and nothing here is one.
        stale = [e for e in po if e.obsolete]
        flagged = [e for e in po if FORMAT_FLAGS & set(e.flags)]
        for entry in stale:
            po.remove(entry)
        for entry in flagged:
            entry.flags = [f for f in entry.flags if f not in FORMAT_FLAGS]
        if stale or flagged:
            po.save()
    if pages:
        return
    for path in catalogues():                     # a page that is gone takes its catalogue along
        if path.relative_to(LOCALE).with_suffix("").as_posix() not in built:
            path.unlink()
            print(f"removed {path.relative_to(DOCS)}: its page is gone")


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        update(argv[1:] or None)
        return 0
    if argv[:1] != ["check"]:
        print(__doc__)
        return 2
    paths = [Path(p).resolve() for p in argv[1:]] or catalogues()
    glossary = load_glossary()
    found = [p for path in paths for p in problems(path, glossary)]
    print("\n".join(found) if found else f"{len(paths)} catalogues: no problems")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
