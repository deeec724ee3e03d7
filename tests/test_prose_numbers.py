"""No measured number is typed by hand (issue 29): in the site's pages and README, a number
followed by a unit, "%" or "×" in prose must come from a record (the {record} role), a cell's
value ({glue}), an include, or sit inside code — unless it is marked as not a measurement with
the {given} role (a year, a figure quoted from a paper, a formula's constant, a setting).

README's generated blocks (between ``<!-- records:… start -->`` and ``end``) are written from
the records by ``python -m demos --readme-only`` and are checked by tests/test_records.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md")
               if not {"_build", "locales", "records"} & set(p.relative_to(ROOT / "docs").parts))
UNITS = (r"%|×|x\b|ms\b|µs\b|ns\b|s\b|sec\b|seconds?\b|min\b|minutes?\b|h\b|hours?\b|"
         r"GB/s|MB/s|GFLOPS|TFLOPS|GiB|MiB|KiB|GB\b|MB\b|kB\b|KB\b|px\b|nats?\b|bits?\b|"
         r"tokens/s|sent/s|sentences/s|it/s|fps\b|Hz\b|kHz\b|CPU[ -]s\b|CPU[ -]seconds|"
         r"CPU[ -]minutes|times (?:faster|slower|as)")
NUMBER = re.compile(rf"(?<![\w.$^_\\{{/-])(\d[\d  ,]*(?:\.\d+)?(?:e[-+]?\d+)?)\s?(?:{UNITS})")
PROSE_DIRECTIVES = {"{admonition}", "{note}", "{tip}", "{important}", "{warning}", "{hint}",
                    "{seealso}", "{toggle}", "{dropdown}", "{attention}", "{caution}"}
ALLOWED = re.compile(r"\{(?:record|given|glue(?::\w+)?)\}`[^`]*`|``[^`]*``|`[^`]*`|\$\$.*?\$\$|"
                     r"\$[^$\n]+\$|\]\([^)]*\)|<[^>]+>", re.S)


def prose_lines(text: str):
    """(line number, line) of the prose: fenced blocks, generated README blocks, front matter,
    directive options and HTML comments left out."""
    fence, generated = None, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if re.match(r"<!-- records:\S+ start -->", stripped):
            generated = True
        elif re.match(r"<!-- records:\S+ end -->", stripped):
            generated = False
            continue
        opening = re.match(r"^(```+|~~~+|:::+)\s*(\{[\w:-]+\})?", stripped)
        if fence is None and opening:
            if opening.group(2) in PROSE_DIRECTIVES or (opening.group(1).startswith(":")
                                                        and opening.group(2) is None):
                continue                    # an admonition or dropdown: its body is prose
            fence = opening.group(1)
            continue
        if fence is not None:
            if stripped.startswith(fence) and stripped.strip("`~:") == "":
                fence = None
            continue
        if re.fullmatch(r"```+|~~~+|:::+", stripped):
            continue                        # the end of an admonition
        if generated or stripped.startswith(("<!--", ":", "---")) or number < 7 and ":" in line:
            continue
        yield number, line


def offences(path: Path) -> list[str]:
    found, name = [], path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        bare = ALLOWED.sub(" ", line)
        for m in NUMBER.finditer(bare):
            found.append(f"{name}:{number}: {m.group(0).strip()!r} in "
                         f"{line.strip()[:90]!r}")
    return found


@pytest.mark.parametrize("path", PAGES + [ROOT / "README.md"], ids=lambda p: p.stem)
def test_no_typed_measurement(path):
    found = offences(path)
    assert not found, ("typed numbers with a unit: quote a record ({record}`demo.mode:path`), "
                       "a cell's value, or mark a non-measurement with {given}`…`:\n"
                       + "\n".join(found[:25]))


def test_the_scanner_sees_typed_numbers_and_skips_allowed_ones(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("---\nfile_format: mystnb\n---\n\n# Title\n\nIt took 12 s and 3.5× less.\n"
                    "Quoted: {record}`x.quick:a:.1f` %, {given}`2017` and `10 ms` in code.\n"
                    "```python\nprint('5 ms')\n```\n"
                    ":::{admonition} Answer\n:class: dropdown\nIt ran 7 s.\n:::\n"
                    "```{math}\n3 s\n```\n", encoding="utf-8")
    found = offences(page)
    assert [f.split(": ", 1)[1].split(" in ")[0] for f in found] == ["'12 s'", "'3.5×'",
                                                                     "'7 s'"]
