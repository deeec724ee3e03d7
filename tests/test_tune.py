"""The kernels' autotuner: every candidate configuration gives the reference result (up to
rounding), the choice is saved per machine under XDG_CACHE_HOME and loaded back, the first big
call tunes by itself, and ATTENTION_NP_TUNE=0 keeps the defaults without touching the disk.
Every test here points XDG_CACHE_HOME at a temporary folder."""
import dataclasses
import itertools
import json

import numba
import numpy as np
import pytest

from attention_np import kernels
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from attention_np.kernels import _tune, _tune_search
from tests.helpers import assert_close


@pytest.fixture(autouse=True)
def fresh_state(tmp_path, monkeypatch):
    """A temporary cache folder and a configuration not yet loaded."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ATTENTION_NP_TUNE", raising=False)
    monkeypatch.setattr(_tune, "_STATE", {"config": None, "source": "default"})
    return tmp_path


def _candidates():
    """Every configuration the search can pick, field group by field group."""
    d = _tune.DEFAULT
    groups = [(("flash_block_q", "flash_block_k"), _tune_search.FLASH_FWD),
              (("flash_bwd_block_q", "flash_bwd_block_k"), _tune_search.FLASH_BWD),
              (("flash_chunk",), [(c,) for c in _tune_search.FLASH_CHUNK]),
              (("matmul_mc", "matmul_kc"), _tune_search.MATMUL)]
    return [dataclasses.replace(d, **dict(zip(f, c))) for f, cs in groups for c in cs]


@pytest.mark.parametrize("cfg", _candidates(), ids=lambda c: c.describe().replace(" ", ""))
def test_every_candidate_gives_the_reference_result(cfg):
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((1, 2, 300, 8)), rng.standard_normal((1, 2, 270, 8))
    v, dout = rng.standard_normal((1, 2, 270, 5)), rng.standard_normal((1, 2, 300, 5))
    mask = rng.random((300, 270)) < 0.8
    a, b = rng.standard_normal((150, 1100)), rng.standard_normal((1100, 70))
    with _tune.using(cfg):
        out, lse = kernels.flash_attention_forward(q, k, v, mask=mask, causal=True)
        grads = kernels.flash_attention_backward(dout, q, k, v, out, lse, mask=mask, causal=True)
        c = kernels.matmul(a, b)
        c32 = kernels.matmul(a.astype(np.float32), b.astype(np.float32))
    ref, _, cache = scaled_dot_product_attention_forward(q, k, v, mask=mask, causal=True)
    assert_close("flash out", out, ref, np.float64)
    for name, g, g_ref in zip("qkv", grads, scaled_dot_product_attention_backward(dout, cache)):
        assert_close(f"flash d{name}", g, g_ref, np.float64)
    assert_close("matmul", c, a @ b, np.float64, scale=np.sqrt(1100))
    assert_close("matmul float32", c32, a.astype(np.float32) @ b.astype(np.float32),
                 np.float32, scale=np.sqrt(1100), truth=a.astype(np.float32).astype(float) @
                 b.astype(np.float32).astype(float))


def _small_search(monkeypatch):
    """Two candidates per kernel, so that a real search takes a second."""
    for name in ("FLASH_FWD", "FLASH_BWD", "FLASH_CHUNK", "MATMUL"):
        monkeypatch.setattr(_tune_search, name, getattr(_tune_search, name)[:2])


def test_tune_saves_the_choice_per_machine_and_later_processes_load_it(fresh_state,
                                                                       monkeypatch):
    _small_search(monkeypatch)
    best = kernels.tune(repeats=1)
    assert _tune.source() == "tuned" and _tune.config() is best
    assert best in [dataclasses.replace(_tune.DEFAULT, **c) for c in (
        dict(zip(("flash_block_q", "flash_block_k", "flash_bwd_block_q", "flash_bwd_block_k",
                  "flash_chunk", "matmul_mc", "matmul_kc"), fwd + bwd + (ch,) + mm))
        for fwd, bwd, ch, mm in itertools.product(
            _tune_search.FLASH_FWD, _tune_search.FLASH_BWD, _tune_search.FLASH_CHUNK,
            _tune_search.MATMUL))]
    path = fresh_state / "attention_np" / "kernels_tune.json"
    saved = json.loads(path.read_text())
    key = _tune.machine_key()
    assert list(saved) == [key] and numba.__version__ in key
    assert saved[key]["config"] == dataclasses.asdict(best)
    assert set(saved[key]["timings_ms"]) == {"flash_block_q/flash_block_k",
                                             "flash_bwd_block_q/flash_bwd_block_k",
                                             "flash_chunk", "matmul_mc/matmul_kc"}
    monkeypatch.setattr(_tune, "_STATE", {"config": None, "source": "default"})   # new process
    assert _tune.config() == best and _tune.source() == "saved"


def test_first_big_call_tunes_once_small_calls_do_not(fresh_state, monkeypatch):
    calls = []
    tuned = dataclasses.replace(_tune.DEFAULT, matmul_mc=32)
    monkeypatch.setattr(_tune_search, "search", lambda repeats, verbose: (
        calls.append(repeats) or tuned, {}))
    monkeypatch.setattr(_tune, "TUNE_AT_FLOP", 2 * 64**3)
    kernels.matmul(np.ones((8, 8)), np.ones((8, 8)))
    assert calls == [] and _tune.source() == "default"
    kernels.matmul(np.ones((64, 64)), np.ones((64, 64)))
    kernels.matmul(np.ones((64, 64)), np.ones((64, 64)))
    assert len(calls) == 1 and _tune.config() == tuned
    assert (fresh_state / "attention_np" / "kernels_tune.json").is_file()


def test_tuning_off_keeps_the_defaults_and_the_disk_untouched(fresh_state, monkeypatch):
    monkeypatch.setenv("ATTENTION_NP_TUNE", "0")
    monkeypatch.setattr(_tune, "TUNE_AT_FLOP", 1.0)
    kernels.matmul(np.ones((9, 9)), np.ones((9, 9)))
    assert _tune.config() == _tune.DEFAULT and _tune.source() == "default"
    assert not (fresh_state / "attention_np").exists()


def test_unreadable_or_foreign_cache_falls_back_to_defaults(fresh_state):
    path = fresh_state / "attention_np" / "kernels_tune.json"
    path.parent.mkdir()
    path.write_text("{not json")
    assert _tune.config() == _tune.DEFAULT
    path.write_text(json.dumps({_tune.machine_key(): {"config": {"flash_block_q": 64}}}))
    _tune._STATE["config"] = None
    assert _tune.config() == _tune.DEFAULT           # fields of an older version: ignored


def test_tune_checks_its_arguments():
    with pytest.raises(ValueError, match="repeats"):
        kernels.tune(repeats=0)
