"""The bench's setting for idle threads (kernels/bench.py): it re-runs itself once with
OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 unless they are set or opted out."""
import sys

import pytest

from attention_np.kernels import bench


@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(bench.os, "execve", lambda path, argv, env: calls.append((argv, env)))
    monkeypatch.setattr(sys, "argv", ["bench.py", "--quick", "--out", "somewhere"])
    for name in (*bench.QUIET_IDLE_THREADS, "ATTENTION_NP_BENCH_SPIN"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_reexecs_with_sleeping_idle_threads_and_the_same_arguments(execs):
    bench.reexec_with_quiet_idle_threads()
    assert len(execs) == 1
    argv, env = execs[0]
    assert argv[1:] == ["-m", "attention_np.kernels.bench", "--quick", "--out", "somewhere"]
    assert {k: env[k] for k in bench.QUIET_IDLE_THREADS} == bench.QUIET_IDLE_THREADS


def test_does_not_reexec_when_set_or_opted_out(execs, monkeypatch):
    for name, value in bench.QUIET_IDLE_THREADS.items():
        monkeypatch.setenv(name, value)
    bench.reexec_with_quiet_idle_threads()
    assert "OMP_WAIT_POLICY=PASSIVE" in bench._idle_threads()
    for name in bench.QUIET_IDLE_THREADS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ATTENTION_NP_BENCH_SPIN", "1")
    bench.reexec_with_quiet_idle_threads()
    assert execs == []
    assert "(default)" in bench._idle_threads()
