"""The induction-heads demo: its data, its scores on attention patterns built by hand, head
ablation, and a short run that writes every file and metrics.json key of the issue."""
import json

import numpy as np
import pytest

import demos.induction_heads as demo
from attention_np.lm import LMConfig, init_lm, lm_forward
from attention_np.lm.circuits import induction_scores, previous_token_scores
from demos._induction_data import (control_rows, repeated_rows, training_batch, trigram_table,
                                   without_head)

ISSUE_KEYS = ("loss_first_half", "loss_second_half", "induction_score", "prev_token_score",
              "phase_change_step", "kv_cache_max_abs_diff", "kv_cache_speedup")


def test_rows_repeat_their_first_half_and_controls_follow_the_table():
    rng = np.random.default_rng(0)
    rows = repeated_rows(rng, 5, 7, 12)
    assert rows.shape == (5, 14)
    np.testing.assert_array_equal(rows[:, :7], rows[:, 7:])
    assert all(len(set(r[:7])) == 7 for r in rows)                      # distinct per half
    table = trigram_table(12, rng)
    ctrl = control_rows(rng, 4, 6, table, p=1.0)
    np.testing.assert_array_equal(ctrl[:, 2:], table[ctrl[:, :-2], ctrl[:, 1:-1]])
    batch = training_batch(rng, 10, (3, 5), table, control=0.3, p=0.5)
    assert batch.shape[0] == 10 and batch.shape[1] % 2 == 0
    half = batch.shape[1] // 2
    np.testing.assert_array_equal(batch[3:, :half], batch[3:, half:])     # 7 repeated rows


def test_scores_of_perfect_heads_are_one_and_of_uniform_heads_small():
    half, T = 6, 11                                                       # inputs ids[:, :-1]
    prev = np.zeros((1, 1, T, T))
    prev[0, 0, 0, 0] = 1
    prev[0, 0, np.arange(1, T), np.arange(T - 1)] = 1
    ind = np.full((1, 1, T, T), 0.0)
    i = np.arange(half, T)
    ind[0, 0, i, i - half + 1] = 1
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    weights = [np.concatenate([prev, uniform[None, None]], 1),
               np.concatenate([ind, uniform[None, None]], 1)]
    induction, previous = induction_scores(weights, half), previous_token_scores(weights)
    assert previous[0, 0] == 1 and induction[1, 0] == 1
    assert previous[0, 1] < 0.5 and induction[1, 1] < 0.2


def test_zeroing_a_head_equals_a_head_with_zero_values():
    """without_head removes exactly that head's share of Concat(heads) W_o."""
    cfg = LMConfig(vocab_size=9, max_len=8, d_model=6, num_heads=3, num_layers=2, mlp=False)
    params = init_lm(cfg, np.random.default_rng(1))
    ids = np.random.default_rng(2).integers(0, 9, (2, 7))
    silent = dict(params)
    for name in ("W_v", "b_v"):
        value = params[f"blocks.1.attn.{name}"].copy()
        value[..., 2:4] = 0                                               # head 2: Dh = 2
        silent[f"blocks.1.attn.{name}"] = value
    np.testing.assert_allclose(lm_forward(ids, without_head(params, cfg, 1, 1), cfg)[0],
                               lm_forward(ids, silent, cfg)[0], atol=1e-12)


def test_phase_change_is_where_the_loss_crosses_its_midpoint():
    losses = [3.5, 3.5, 3.4, 2.0, 1.9, 0.4]             # midpoint 1.95
    history = [{"step": 10 * k, "loss_second_half": v} for k, v in enumerate(losses)]
    assert demo.phase_change_step(history) == 40


def test_a_short_run_writes_the_files_and_the_issue_keys(tmp_path, monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.setattr(demo, "QUICK", demo.Recipe(steps=30, eval_every=10, eval_rows=8))
    figures = demo.run(tmp_path)
    for figure in figures:
        assert (tmp_path / figure.path).stat().st_size > 0
    metrics = json.loads((tmp_path / "induction_heads" / "metrics.json").read_text())
    assert all(np.isfinite(metrics[k]) for k in ISSUE_KEYS)
    assert metrics["kv_cache_tokens_equal"] and metrics["kv_cache_max_abs_diff"] < 1e-6
