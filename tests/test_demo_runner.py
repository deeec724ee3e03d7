"""python -m demos runs two demos side by side, one core each; a demo's own worker pool then
runs its trainings in its own process (demos._common.worker_pool)."""
import os
import sys
import time
import types
from argparse import Namespace

import pytest

from demos import __main__ as demos_main
from demos import _progress
from demos._common import WORKERS_VARIABLE, Figure, InlineExecutor, demo_workers, worker_pool


def test_worker_pool_is_this_process_when_one_worker_is_asked_for(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "1")
    assert demo_workers() == 1
    pool = worker_pool()
    assert isinstance(pool, InlineExecutor)
    with pool:
        assert pool.submit(pow, 2, 10).result() == 1024
        assert list(pool.map(pow, [2, 3], [3, 2])) == [8, 9]
        failed = pool.submit(int, "not a number")
        with pytest.raises(ValueError):
            failed.result()                 # raised where the result is read, as a pool does


def test_demo_workers_defaults_to_two_and_reads_the_variable(monkeypatch):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    assert demo_workers() == 2
    assert worker_pool(1).__class__ is InlineExecutor        # asked for one: no processes
    monkeypatch.setenv(WORKERS_VARIABLE, "3")
    assert demo_workers() == 3


def _fake_demo(name: str):
    """A module demos.<name> whose run() reports what its process was given."""
    module = types.ModuleType(f"demos.{name}")
    module.__doc__ = f"{name}: a stand-in demo."

    def run(out_dir, full=False):
        from threadpoolctl import threadpool_info
        time.sleep(0.2)
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        _progress.say("a report line")
        return [Figure(path=f"{name}/{os.environ.get(WORKERS_VARIABLE)}-{max(blas or [1])}.png",
                       caption=f"pid {os.getpid()}", caption_zh="图")]
    module.run = run
    return module


def test_side_by_side_runs_each_demo_on_one_core_and_keeps_the_order(monkeypatch, capfd):
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    for name in ("fake_cheap", "fake_costly"):
        monkeypatch.setitem(sys.modules, f"demos.{name}", _fake_demo(name))
    monkeypatch.setattr(demos_main, "cpu_cost", {"fake_cheap": 1, "fake_costly": 9}.get)
    args = Namespace(full=False, quiet=False, out="unused")
    sections = demos_main.run_side_by_side(["fake_cheap", "fake_costly"], args)
    assert [s[0] for s in sections] == ["fake_cheap", "fake_costly"]          # names' order
    for name, _, figures, seconds, skipped in sections:
        # one worker of its own ("1") and one BLAS thread in the side-by-side process
        assert figures[0].path == f"{name}/1-1.png"
        assert figures[0].caption != f"pid {os.getpid()}"                    # not this process
        assert seconds >= 0.2 and skipped == ""
    out = capfd.readouterr().out
    assert "[fake_costly] a report line" in out and "[fake_cheap] a report line" in out
    assert os.environ.get(WORKERS_VARIABLE) is None                          # parent untouched
    assert out.index("[fake_costly] === [1/2]") < out.index("2/2 demos done")


def test_prefixed_progress_is_lines_not_a_bar(capsys):
    _progress.set_prefix("[x] ")
    try:
        bar = _progress.progress(4, "train", every=2)
        assert isinstance(bar, _progress.EpochLines)
        bar.update(4)
    finally:
        _progress.set_prefix("")
    assert "[x] train: 4/4" in capsys.readouterr().out


def test_demos_run_the_kernels_with_default_blocks_unless_the_user_says(monkeypatch, capsys):
    """python -m demos (and each demo's own main) turn the kernels' autotuner off: no timing
    taken beside another demo is saved for the machine, and the demos' block sizes are the
    defaults whatever a tuning file says. A value the user set is kept."""
    from attention_np.kernels import _tune
    from demos._common import TUNE_VARIABLE, demo_main
    monkeypatch.delenv(TUNE_VARIABLE, raising=False)
    demos_main.main(["--list"])
    assert "translate_dates" in capsys.readouterr().out
    assert os.environ[TUNE_VARIABLE] == "0" and not _tune.enabled()
    monkeypatch.delenv(TUNE_VARIABLE)
    demo_main(lambda out, full=False: [], "A demo that draws nothing.")(["--quiet"])
    assert os.environ[TUNE_VARIABLE] == "0"
    monkeypatch.setenv(TUNE_VARIABLE, "1")
    demos_main.main(["--list"])
    assert os.environ[TUNE_VARIABLE] == "1" and _tune.enabled()


def test_the_inline_pool_computes_each_result_when_it_is_read():
    """Like Executor.map, and so that a progress bar over the results moves with the runs
    (demos.overfitting reads them one by one)."""
    calls = []
    results = InlineExecutor().map(lambda x: calls.append(x) or 10 * x, [1, 2, 3])
    assert calls == []
    assert next(results) == 10 and calls == [1]
    assert list(results) == [20, 30] and calls == [1, 2, 3]
