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
COMPARE = re.compile(r"^```\{record-compare\}\n(?::[\w-]+:.*\n)*((?:(?!```).*\n)*)```", re.M)
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
        numbers = set(_records.flatten(record["metrics"]))
        assert set(record["tolerance"]) <= numbers, path.name
        verified = {p for p in numbers if _records.is_verified(p)}
        assert verified <= set(record["tolerance"]), sorted(verified - set(record["tolerance"]))
        assert all(t > 0 for t in record["tolerance"].values())


def test_every_demo_has_a_quick_and_a_full_record():
    """Issue 29: docs/records/ holds a quick and a full record of every demo, and the kernel
    bench's record."""
    from demos import DEMOS
    missing = [f"{demo}.{mode}" for demo in DEMOS for mode in ("quick", "full")
               if not _records.record_path(demo, mode).exists()]
    assert not missing, f"no record: {missing} (python -m demos --record NAME [--full])"
    assert _records.record_path("kernels", None).exists()


def test_readme_is_what_the_records_say():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _readme.rendered(text) == text, (
        "README's generated tables differ from docs/records/: run "
        "`python -m demos --readme-only` (never edit between the records markers by hand)")


@pytest.mark.parametrize("path, kind", [
    ("cost.exact (NumPy).time_s.0", "timing"), ("recall.Linformer r=16.train_s", "timing"),
    ("tokens_per_s", "timing"), ("flash.peak_mib_slope", "timing"), ("wall_seconds", "timing"),
    ("luong.history.val_exact.3", "trajectory"), ("by_step_x.test_exact_match_by_step.2",
                                                  "trajectory"),
    ("seeds.seed 0.loss_ratio", "seed copy"), ("mean_pool.test_accuracy_per_seed.0", "seed copy"),
    ("bahdanau.train_steps", "verified"), ("faithfulness.flow.deletion_curve.7", "verified"),
    ("none.exact_match", "verified")])
def test_which_metrics_verify_checks(path, kind):
    found = ("timing" if _records.is_timing(path) else "trajectory" if _records.is_trajectory(path)
             else "seed copy" if _records.is_seed_copy(path) else "verified")
    assert found == kind
    assert _records.is_verified(path) == (kind == "verified")


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
        for body in COMPARE.findall(text):              # demo | path | label | 中文: both modes
            for line in filter(str.strip, body.splitlines()):
                demo, reference = (f.strip() for f in line.split("|")[:2])
                refs += [f"{demo}.quick:{reference}", f"{demo}.full:{reference}"]
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
    rows = _records.compare(record, metrics)                      # the recording run itself
    assert rows and all(r["ok"] and r["exact"] for r in rows)
    # allowed: three times the seeds' spread (0.025) plus a rounding floor
    rows = _records.compare(record, {**metrics, "none": {"exact_match": 0.925 - 0.074}})
    assert [(r["ok"], r["exact"]) for r in rows if r["metric"] == "none.exact_match"] == \
        [(True, False)]
    rows = _records.compare(record, {**metrics, "none": {"exact_match": 0.925 - 0.076}})
    assert [r["ok"] for r in rows if r["metric"] == "none.exact_match"] == [False]
    # dot.exact_match was 1.0 for every seed: only rounding may move it
    rows = _records.compare(record, {**metrics, "dot": {"exact_match": 1.0 - 5e-7}})
    assert [r["ok"] for r in rows if r["metric"] == "dot.exact_match"] == [True]
    rows = _records.compare(record, {**metrics, "dot": {"exact_match": 0.999}})
    assert [r["ok"] for r in rows if r["metric"] == "dot.exact_match"] == [False]
    # a training curve is recorded, not verified
    assert "curve.0" in record["tolerance"]
    assert "curve.0" not in {r["metric"] for r in _records.compare(record, metrics)}
    with pytest.raises(KeyError, match="has no nothing.here"):
        _records.resolve("demo.quick:nothing.here")


def test_cpu_name_tells_generations_of_one_model_name_apart():
    """Zen 4 and Zen 5 both call themselves "AMD EPYC": the name adds family and model."""
    zen5 = {"cpu": "AMD EPYC", "cpu_family_model": "26/2", "vector_isa": "AVX-512", "cores": 2}
    assert _records.cpu_name(zen5) == "AMD EPYC (family 26 model 2, AVX-512)"
    assert _records.cpu_name(zen5, cores=True) == "AMD EPYC (family 26 model 2, AVX-512, 2 cores)"
    assert _records.cpu_name(zen5, chinese=True, cores=True) == "AMD EPYC（系列 26 型号 2，AVX-512，2 核）"
    older = {"cpu": "AMD EPYC", "cores": 2}                      # made before the fields existed
    assert _records.cpu_name(older) == "AMD EPYC"
    assert _records.cpu_name(older, chinese=True, cores=True) == "AMD EPYC（2 核）"
    unknown = {"cpu": "Some CPU", "cpu_family_model": "?/?", "vector_isa": "SSE2", "cores": 1}
    assert _records.cpu_name(unknown) == "Some CPU (SSE2)"
