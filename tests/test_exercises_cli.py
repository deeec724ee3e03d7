"""The command line: list, start (never overwriting), check NAME / --all, --dir, exit status."""
import os
import subprocess
import sys

import pytest

from attention_np.exercises import EXERCISES
from attention_np.exercises.cli import main

CAUSAL = ("import numpy as np\n\n\ndef causal_mask(Tq, Tk=None):\n    Tk = Tq if Tk is None "
          "else Tk\n    return np.arange(Tk)[None, :] <= np.arange(Tq)[:, None]\n")


def run(capsys, *argv):
    status = main(list(argv))
    return status, capsys.readouterr().out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A learner's working directory; the default folder is ./exercises inside it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_list_shows_every_exercise_in_order_with_its_status(workdir, capsys):
    status, out = run(capsys, "list")
    assert status == 0
    rows = [line.split() for line in out.splitlines()[1:] 
            if line[:2].strip().isdigit() and line[2:4] == "  "]   # not a "10. …" heading
    assert [row[1] for row in rows] == [ex.name for ex in EXERCISES]
    assert all(" ".join(row[2:4]) == "not started" for row in rows)
    assert f"0 of {len(EXERCISES)} passed" in out


def test_start_writes_a_skeleton_and_never_overwrites(workdir, capsys):
    status, out = run(capsys, "start", "causal_mask")
    path = workdir / "exercises" / "causal_mask.py"
    assert status == 0 and path.exists() and f"wrote {path.relative_to(workdir)}" in out
    assert "def causal_mask(Tq, Tk=None):" in path.read_text()
    path.write_text("# my work\n")
    status, out = run(capsys, "start", "causal_mask")
    assert status == 0 and "exists — left as it is" in out
    assert path.read_text() == "# my work\n"


def test_check_grades_records_and_sets_the_exit_status(workdir, capsys):
    run(capsys, "start", "causal_mask")
    status, out = run(capsys, "check", "causal_mask")
    assert status == 1 and "causal_mask: TODO" in out
    (workdir / "exercises" / "causal_mask.py").write_text(CAUSAL)
    status, out = run(capsys, "check", "causal_mask")
    assert status == 0 and "causal_mask: PASSED" in out
    assert "causal_mask                              passed" in run(capsys, "list")[1]
    (workdir / "exercises" / "causal_mask.py").write_text(CAUSAL.replace("<=", "<"))
    os.utime(workdir / "exercises" / "causal_mask.py", (1, 1))     # an edit after the check
    assert "causal_mask                              started" in run(capsys, "list")[1]
    status, out = run(capsys, "check", "causal_mask")
    assert status == 1 and "causal_mask: FAILED" in out and "masks the diagonal" in out


def test_check_all_grades_every_exercise(workdir, capsys):
    folder = workdir / "exercises"
    folder.mkdir()
    for ex in EXERCISES:
        if ex.name != "flash_attention_forward":
            module, name = ex.solution.rsplit(".", 1)
            (folder / f"{ex.name}.py").write_text(f"from {module} import {name} as "
                                                  f"{ex.function}\n")
    n = len(EXERCISES)
    status, out = run(capsys, "check", "--all", "--accept-library")
    assert status == 1 and f"{n - 1} of {n} passed" in out and out.count(": PASSED") == n - 1
    assert "not started (1): flash_attention_forward" in out
    assert out.count("The library's own solution, to compare with yours:") == n - 1
    status, out = run(capsys, "check", "--all")            # a learner may not hand them in
    assert status == 1 and out.count(": REJECTED") == n - 1


def test_dir_chooses_the_folder_before_or_after_the_command(workdir, capsys):
    run(capsys, "--dir", "mine", "start", "causal_mask")
    assert (workdir / "mine" / "causal_mask.py").exists()
    assert "check causal_mask --dir mine" in (workdir / "mine" / "causal_mask.py").read_text()
    (workdir / "mine" / "causal_mask.py").write_text(CAUSAL)
    assert run(capsys, "check", "causal_mask", "--dir", "mine")[0] == 0
    out = run(capsys, "list", "--dir", "mine")[1]
    assert f"1 of {len(EXERCISES)} passed (files in mine/)" in out
    assert not (workdir / "exercises").exists()


@pytest.mark.parametrize("argv", [["check"], ["check", "causal_mask", "--all"],
                                  ["check", "no_such_exercise"], ["start", "nope"]])
def test_usage_errors_exit_with_2(workdir, capsys, argv):
    assert main(argv) == 2


def test_python_dash_m_end_to_end_without_torch(tmp_path):
    """The grader works with the base install: here torch cannot be imported at all."""
    (tmp_path / "no_torch").mkdir()
    (tmp_path / "no_torch" / "torch.py").write_text("raise ImportError('not installed')\n")
    (tmp_path / "causal_mask.py").write_text(CAUSAL.replace("<=", ">"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "no_torch")}
    done = subprocess.run([sys.executable, "-m", "attention_np.exercises", "check", "causal_mask",
                           "--dir", str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 1, done.stderr
    assert "mask is inverted: True must mean 'may attend'" in done.stdout


def test_list_groups_by_chapter_with_progress(workdir, capsys):
    (workdir / "exercises").mkdir()
    (workdir / "exercises" / "causal_mask.py").write_text(CAUSAL)
    run(capsys, "check", "causal_mask")
    out = run(capsys, "list")[1]
    assert "6. Self-attention — 1 of 6 passed" in out
    assert "Applications › Knowledge graphs: graph attention — 0 of 2 passed" in out
    out = run(capsys, "--lang", "zh", "list")[1]
    assert "6. 自注意力——已通过 1/6" in out


def test_an_unknown_name_gets_the_closest_names(workdir, capsys):
    assert main(["check", "softmax_backwards"]) == 2
    err = capsys.readouterr().err
    assert "unknown exercise 'softmax_backwards' — did you mean softmax_backward" in err
    assert main(["start", "induction"]) == 2
    assert "induction_scores" in capsys.readouterr().err
    assert not (workdir / "exercises").exists()


def test_start_never_shows_the_solution(workdir, capsys):
    run(capsys, "start", *[ex.name for ex in EXERCISES])
    for ex in EXERCISES:
        text = (workdir / "exercises" / f"{ex.name}.py").read_text()
        assert ex.solution not in text and "import attention_np" not in text
        assert f'raise NotImplementedError("write {ex.function}")' in text
