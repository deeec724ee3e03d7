"""Records (issue 29): every committed record says where it came from, README's generated tables
are what the records say, and every reference to a record on the site and in README resolves."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from demos import _readme, _records

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted(_records.RECORDS.glob("*.json")) if _records.RECORDS.exists() else []
SOURCES = sorted(p for p in (ROOT / "docs").rglob("*.md")
                 if not {"_build", "records"} & set(p.relative_to(ROOT / "docs").parts))
SOURCES += sorted((ROOT / "docs" / "locales").rglob("*.po")) + [ROOT / "README.md",
                                                                ROOT / "README.zh-CN.md"]
ROLE = re.compile(r"\{record\}`([^`]+)`")
TABLE = re.compile(r"^```\{record-table\} (\S+)\n((?::[\w-]+:.*\n)+)", re.M)
PROVENANCE = {"commit", "tree_differs_from_commit", "date", "cpu", "cores", "python", "numpy",
              "numba"}


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.name)
def test_a_record_says_where_it_came_from(path):
    record = json.loads(path.read_text(encoding="utf-8"))
    assert PROVENANCE <= set(record["provenance"]), path.name
    assert record["provenance"]["cores"] >= 1 and record["provenance"]["cpu"]
    assert record["wall_seconds"] > 0 and record["cpu_seconds"] > 0
    assert "command" in record and record["command"].startswith("python -m ")
    if path.name.endswith(".quick.json"):
        # verify compares every non-timing metric within the spread of seeds 0-2
        assert record["tolerance_seeds"] == [0, *_records.SPREAD_SEEDS]
        numbers = {p for p in _records.flatten(record["metrics"]) if not _records.is_timing(p)}
        assert set(record["tolerance"]) <= numbers, path.name
        assert len(record["tolerance"]) >= 0.9 * len(numbers), path.name
        assert all(t > 0 for t in record["tolerance"].values())


def test_readme_is_what_the_records_say():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _readme.rendered(text) == text, (
        "README's generated tables differ from docs/records/: run "
        "`python -m demos --readme-only` (never edit between the records markers by hand)")


def _split(head: str):
    demo, _, mode = head.partition(".")
    return demo, mode or None


def test_every_record_reference_resolves():
    cache, broken = {}, []
    for path in SOURCES:
        if path.suffix == ".po":                        # the translations, unwrapped
            import polib
            text = "\n".join(e.msgstr for e in polib.pofile(str(path)))
        else:
            text = path.read_text(encoding="utf-8")
        refs = ROLE.findall(text)
        for head, options in TABLE.findall(text):       # every cell of a record-table
            opts = dict(re.findall(r"^:([\w-]+):\s*(.*)$", options, re.M))
            rows = opts.get("rows", "").split() or [""]
            if "each" in opts:                                  # one row per list item
                items = _records.value(_records.load(*_split(head)), opts["each"])
                rows = [f"{opts['each']}.{i}" for i in range(len(items))]
            for row in rows:
                for col in opts["columns"].split():
                    col_path = col if col.startswith("@") or not row else f"{row}.{col}"
                    refs.append(f"{head}:{col_path}")
        for ref in refs:
            try:
                _records.resolve(ref, cache)
            except (KeyError, ValueError, FileNotFoundError) as error:
                broken.append(f"{path.relative_to(ROOT)}: {error}")
    assert not broken, "\n".join(broken[:30])


def test_a_reference_reads_paths_globs_and_fields(tmp_path, monkeypatch):
    monkeypatch.setattr(_records, "RECORDS", tmp_path)
    metrics = {"none": {"exact_match": 0.925}, "dot": {"exact_match": 1.0},
               "curve": [0.1, 0.5], "seconds": 3.0}
    _records.write("demo", "quick", metrics, {"wall": 12.0, "cpu": 20.0}, [0],
                   [{"none": {"exact_match": 0.9}, "dot": {"exact_match": 1.0},
                     "curve": [0.2, 0.5], "seconds": 9.0}])
    assert _records.resolve("demo.quick:none.exact_match:.3f") == "0.925"
    assert _records.resolve("demo.quick:min(*.exact_match):.2f") == "0.93"
    assert _records.resolve("demo.quick:curve.1") == "0.5"
    assert _records.resolve("demo.quick:@wall_seconds:.0f") == "12"
    record = _records.load("demo", "quick")
    assert record["tolerance"]["none.exact_match"] == pytest.approx(0.025, abs=1e-6)
    assert "seconds" not in record["tolerance"]          # timings are recorded, not verified
    rows = _records.compare(record, {**metrics, "none": {"exact_match": 0.95}})
    assert [r["ok"] for r in rows if r["metric"] == "none.exact_match"] == [True]
    rows = _records.compare(record, {**metrics, "none": {"exact_match": 0.8}})
    assert [r["ok"] for r in rows if r["metric"] == "none.exact_match"] == [False]
    with pytest.raises(KeyError, match="has no nothing.here"):
        _records.resolve("demo.quick:nothing.here")
