"""tools/mutation.py's record (issue 34): scores from mutmut's verdicts, accepted equivalents
left out of the denominator, and a file whose verdicts in mutants/ are missing or partly reset
(mutmut resets them when new tests call its functions) keeping its old row."""
from __future__ import annotations

import json

from tools import mutation


def _setup(tmp_path, monkeypatch, old_rows):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.mutmut]\nonly_mutate = ["attention_np/a.py", "attention_np/b.py"]\n')
    for name in ("README.md", "README.zh-CN.md"):
        (tmp_path / name).write_text("x\n<!-- records:mutation start -->\nold\n"
                                     "<!-- records:mutation end -->\ny\n", encoding="utf-8")
    record = tmp_path / "mutation.json"
    record.write_text(json.dumps({"metrics": {"files": old_rows}}), encoding="utf-8")
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    monkeypatch.setattr(mutation, "RECORD", record)
    return record


def test_report_scores_verdicts_and_keeps_the_rows_of_files_not_run(tmp_path, monkeypatch):
    old_b = {"generated": 10, "killed": 10, "survived": 0, "timed_out": 0,
             "accepted_equivalent": 0, "score": 1.0, "target": 0.95, "survivors": [],
             "wall_seconds": 5.0, "cpu_seconds": 4.0}
    record = _setup(tmp_path, monkeypatch, {"b": old_b})
    meta = tmp_path / "mutants" / "attention_np" / "a.py.meta"
    meta.parent.mkdir(parents=True)
    codes = {"attention_np.a.x_f__mutmut_1": 1, "attention_np.a.x_f__mutmut_2": 0,
             "attention_np.a.x_f__mutmut_3": 0, "attention_np.a.x_f__mutmut_4": 152}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (tmp_path / "mutants" / "attention_np" / "b.py.meta").write_text(   # reset: a verdict lost
        json.dumps({"exit_code_by_key": {"attention_np.b.x_g__mutmut_1": None,
                                         "attention_np.b.x_g__mutmut_2": 1}}))
    monkeypatch.setattr(mutation, "accepted_equivalents",
                        lambda: {"attention_np.a.x_f__mutmut_3": "equivalent"})
    assert mutation.main(["--report"]) == 0
    files = json.loads(record.read_text())["metrics"]["files"]
    a = files["a"]
    assert (a["generated"], a["killed"], a["timed_out"], a["accepted_equivalent"]) == (4, 1, 1, 1)
    assert a["survivors"] == ["attention_np.a.x_f__mutmut_2"]
    assert a["score"] == round(2 / 3, 4)                      # (killed + timed out) / (4 − 1)
    assert files["b"] == old_b
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "| `a.py` | 4 | 1 | 1 | 1 | 1 | 66.7 % | 95 % | — |" in readme
    assert "| `b.py` | 10 | 10 | 0 | 0 | 0 | 100.0 % | 95 % | 0.1 |" in readme
