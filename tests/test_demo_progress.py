"""Progress you can see: bars on a terminal, one line per epoch in a log, silence with --quiet."""
import io

import pytest

from demos import DEMOS, QUICK_SECONDS
from demos import __main__ as demos_main
from demos import _progress


@pytest.fixture(autouse=True)
def _loud_again():
    yield
    _progress.set_quiet(False)


def test_epoch_lines_prints_one_line_per_epoch_and_one_at_the_end():
    out = io.StringIO()
    with _progress.EpochLines(total=25, desc="train", every=10, file=out) as bar:
        for step in range(25):
            bar.set_postfix(loss=1.0 / (step + 1))
            bar.update()
    lines = out.getvalue().splitlines()
    assert [line.split(":")[1].split()[0] for line in lines] == ["10/25", "20/25", "25/25"]
    assert "loss 0.04" in lines[-1] and "s elapsed" in lines[-1]


def test_a_log_file_gets_lines_and_quiet_gets_nothing(capsys):
    with _progress.progress(4, "train", every=2) as bar:    # pytest's stderr is not a terminal
        bar.update(4)
    assert "train: 4/4" in capsys.readouterr().out
    _progress.set_quiet(True)
    with _progress.progress(4, "train", every=2) as bar:
        bar.update(4)
    _progress.say("a report line")
    assert capsys.readouterr().out == ""


def test_demos_list_names_every_demo_with_its_quick_time(capsys):
    demos_main.main(["--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:len(DEMOS)]] == DEMOS
    totals = lines[len(DEMOS):]     # the whole job where it is recorded, else the demos' sum
    assert totals and all(line.startswith(("all, two at a time", "one by one")) for line in totals)
    assert any(line.startswith("one by one") for line in totals) == \
        (demos_main.main_job_record() is None)
    assert set(QUICK_SECONDS) == set(DEMOS)
    assert all("~" in line for line in lines)


def test_python_m_demos_quiet_prints_nothing_but_still_builds_the_gallery(tmp_path, capsys):
    demos_main.main(["formulas", "--quiet", "--out", str(tmp_path)])
    assert capsys.readouterr().out == ""
    assert (tmp_path / "index.html").exists()
