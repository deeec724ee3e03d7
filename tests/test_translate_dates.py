"""Date-translation demo: the data generator, every model's gradients, decoding, a training step."""
import datetime as dt

import numpy as np
import pytest
import torch

from attention_np.apps.seq2seq.attention import attention_backward, attention_forward, init_attention
from attention_np.apps.seq2seq.config import MODELS, Seq2SeqConfig
from attention_np.apps.seq2seq.model import decode_step, encode, init_model, loss_and_grads
from attention_np.apps.seq2seq.search import translate_beam, translate_greedy
from attention_np.nn.losses import log_softmax
from attention_np.apps.seq2seq.train import TrainConfig, exact_match, predict, train
from demos import _dates_data as data
from tests.helpers import assert_matches_torch, check_finite_differences


# ------------------------------------------------------------------ data
def test_words():
    assert [data.ordinal_words(n) for n in (1, 2, 3, 12, 20, 21, 30, 31)] == [
        "first", "second", "third", "twelfth", "twentieth", "twenty-first", "thirtieth",
        "thirty-first"]
    assert [data.ordinal_suffix(n) for n in (1, 2, 3, 4, 11, 12, 13, 22, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "22nd", "31st"]
    rng = np.random.default_rng(0)
    assert data.year_words(1987, rng) == "nineteen eighty-seven"
    assert data.year_words(1950, rng) == "nineteen fifty"
    assert data.year_words(2000, rng) == "two thousand"
    assert data.year_words(2005, rng) in ("two thousand five", "two thousand and five")


@pytest.mark.parametrize("template,expected", [
    ("dd/mm/yy", "09/03/21"), ("yyyy.m.d", "2021.3.9"), ("dd.mm.yyyy", "09.03.2021"),
    ("yyyy/mm/dd", "2021/03/09")])
def test_numeric_formats_are_day_first_or_year_first(template, expected):
    text = data.render(dt.date(2021, 3, 9), template, "none", "{}", np.random.default_rng(0))
    assert text == expected


def test_weekday_is_the_real_one():
    rng = np.random.default_rng(0)
    text = data.render(dt.date(2021, 3, 9), "dd-mm-yyyy", "full", "{}", rng)
    assert text.lower() == "tuesday 09-03-2021"


def test_samples_are_valid_and_the_splits_disjoint():
    train, test = data.sample(3000, "train", 0), data.sample(600, "test", 1)
    for ds in (train, test):
        assert ds.src.shape == (len(ds.sources), data.MAX_LEN)
        assert ds.src_len.min() >= 6 and ds.src_len.max() <= data.MAX_LEN
        assert all(data.decode_target(t) == s for t, s in zip(ds.tgt, ds.targets))
        assert all(dt.date.fromisoformat(t) for t in ds.targets)
    assert not set(train.targets) & set(test.targets)             # unseen dates
    assert train.src_len.max() - train.src_len.min() >= 40         # lengths vary a lot
    ids = train.src[0, :train.src_len[0]]
    assert "".join(data.SRC_VOCAB[i] for i in ids) == train.sources[0]
    assert np.all(train.src[0, train.src_len[0]:] == data.PAD)
    with pytest.raises(ValueError, match="split"):
        data.sample(1, "val", 0)


# ----------------------------------------------------------------- models
def _tiny(model, dtype="float64"):
    cfg = Seq2SeqConfig(11, 8, model=model, emb=5, hidden=4, attn_dim=3, heads=2, layers=1,
                        ffn=6, local_window=2, dtype=dtype, max_tgt_len=4)
    rng = np.random.default_rng(0)
    src = rng.integers(1, 11, (3, 7))
    mask = np.arange(7)[None] < np.array([7, 3, 5])[:, None]
    src[~mask] = 0
    return cfg, src, mask, rng.integers(3, 8, (3, 4))


@pytest.mark.parametrize("model", MODELS)
def test_model_gradients_match_finite_differences(model):
    cfg, src, mask, tgt = _tiny(model)
    params = init_model(cfg, seed=1)

    def ours(**p):
        loss, grads, _ = loss_and_grads(p, cfg, src, mask, tgt)
        return np.array([loss]), lambda dout: {k: g * dout[0] for k, g in grads.items()}
    assert set(ours(**params)[1](np.ones(1))) == set(params)
    check_finite_differences(ours, params, list(params), n_entries=3, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("model", ["bahdanau", "luong_dot", "luong_local"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_backend_gives_the_numpy_loss_and_gradients(model, dtype):
    """backend="numba" (the demo's training) runs the LSTM scans on the fused kernels: the same
    loss, gradients and greedy decoding as the NumPy reference."""
    from dataclasses import replace
    cfg, src, mask, tgt = _tiny(model, dtype)
    params = init_model(cfg, seed=1)
    loss, grads, _ = loss_and_grads(params, cfg, src, mask, tgt)
    fast = replace(cfg, backend="numba")
    loss_n, grads_n, _ = loss_and_grads(params, fast, src, mask, tgt)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(loss_n, loss, **tol)
    assert set(grads_n) == set(grads)
    for name in grads:
        np.testing.assert_allclose(grads_n[name], grads[name], err_msg=name, **tol)
    np.testing.assert_array_equal(translate_greedy(params, fast, src, mask)[0],
                                  translate_greedy(params, cfg, src, mask)[0])


def test_the_workers_numba_thread_limit_keeps_the_workqueue_layer():
    """demos._common.one_numba_thread (the translate_dates workers) starts Numba's thread pool;
    it must start it with the library's threading layer (workqueue: fork-safe, and torch keeps
    its speed), not the default OpenMP one."""
    import os
    import subprocess
    import sys
    code = ("import numba\n"
            "from demos._common import one_numba_thread\n"
            "with one_numba_thread():\n"
            "    assert numba.get_num_threads() == 1\n"
            "print(numba.threading_layer())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "workqueue"


def _torch_attention(kind, q, k, mask, D, W=None, W_q=None, W_k=None, v=None, W_p=None, v_p=None):
    if kind == "dot":
        scores = q @ k.transpose(1, 2)
    elif kind == "concat":
        scores = torch.tanh((q @ W_q)[:, :, None] + (k @ W_k)[:, None]) @ v
    else:
        scores = q @ W @ k.transpose(1, 2)
    key_mask = torch.as_tensor(mask)[:, None, :]
    if kind != "local":
        return torch.softmax(scores.masked_fill(~key_mask, -torch.inf), -1) @ k
    S = torch.as_tensor(mask.sum(1) - 1, dtype=q.dtype)[:, None]
    p = S * torch.sigmoid(torch.tanh(q @ W_p) @ v_p)                     # (B, Tq)
    dist = torch.arange(k.shape[1], dtype=q.dtype) - p[..., None]
    window = (dist.abs() <= D) & key_mask
    align = torch.softmax(scores.masked_fill(~window, -torch.inf), -1)
    return (align * torch.exp(-dist ** 2 / (2 * (D / 2) ** 2))) @ k


@pytest.mark.parametrize("kind", ["dot", "general", "concat", "local"])
def test_decoder_attention_matches_torch(kind):
    rng = np.random.default_rng(3)
    B, Tq, Tk, H = 3, 5, 8, 6
    mask = np.arange(Tk)[None] < np.array([8, 2, 5])[:, None]
    inputs = {"q": rng.standard_normal((B, Tq, H)), "k": rng.standard_normal((B, Tk, H)),
              **init_attention(kind, H, H, 4, rng, np.float64)}
    inputs = {n: v * 2 for n, v in inputs.items()}

    def ours(q, k, **p):
        c, _, cache = attention_forward(kind, p, q, k, mask, local_window=3)

        def backward(dc):
            dq, dk, g = attention_backward(dc, cache)
            return {"q": dq, "k": dk, **g}
        return c, backward
    assert_matches_torch(f"seq2seq_{kind}_attention", ours,
                         lambda q, k, **p: _torch_attention(kind, q, k, mask, 3, **p),
                         inputs, grad_wrt=list(inputs))


@pytest.mark.parametrize("model", ["bahdanau", "luong_local", "transformer"])
def test_teacher_forcing_equals_step_by_step_decoding(model):
    from attention_np.apps.seq2seq.model import forward, shift_right
    cfg, src, mask, tgt = _tiny(model)
    params = init_model(cfg, seed=2)
    logits, weights, _ = forward(params, cfg, src, mask, shift_right(cfg, tgt))
    memory, state = encode(params, cfg, src, mask), None
    state = memory.state0
    y = np.full(3, cfg.start)
    for t in range(tgt.shape[1]):
        step_logits, state, w = decode_step(params, cfg, memory, y, state)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-10)
        np.testing.assert_allclose(w, weights[:, t], atol=1e-10)
        y = tgt[:, t]


@pytest.mark.parametrize("model", ["luong_general", "transformer"])
def test_beam_search(model):
    cfg, src, mask, _ = _tiny(model)
    params = init_model(cfg, seed=3)
    greedy, _ = translate_greedy(params, cfg, src, mask)
    one, _, _ = translate_beam(params, cfg, src, mask, beam=1)
    assert np.array_equal(one, greedy)
    best, weights, score = translate_beam(params, cfg, src, mask, beam=4)
    assert weights.shape == (3, cfg.max_tgt_len, src.shape[1])

    def total_logp(tokens):
        memory, y, state, s = encode(params, cfg, src, mask), np.full(3, cfg.start), None, 0
        state = memory.state0
        for t in range(tokens.shape[1]):
            logits, state, _ = decode_step(params, cfg, memory, y, state)
            lp = log_softmax(logits)[np.arange(3), tokens[:, t]]
            s = s + np.where(np.any(tokens[:, :t] == cfg.end, axis=1), 0, lp)
            y = tokens[:, t]
        return s
    np.testing.assert_allclose(score, total_logp(best), atol=1e-9)
    assert np.all(score >= total_logp(greedy) - 1e-9)


@pytest.mark.parametrize("model", ["bahdanau", "luong_dot", "transformer"])
def test_a_short_training_run_lowers_the_loss(model):
    cfg = Seq2SeqConfig(len(data.SRC_VOCAB), len(data.TGT_VOCAB), model=model, emb=16,
                        hidden=16, attn_dim=16, heads=2, layers=1, ffn=32)
    ds = data.sample(400, "train", 0)
    params = init_model(cfg, 0)
    rows = np.arange(64)
    L = int(ds.src_len[rows].max())
    mask = np.arange(L)[None] < ds.src_len[rows][:, None]
    before = loss_and_grads(params, cfg, ds.src[rows, :L], mask, ds.tgt[rows])[0]
    hist = train(params, cfg, ds, data.sample(20, "train", 1),
                 TrainConfig(batch=32, lr=1e-2, max_steps=30, max_seconds=30, eval_every=30),
                 log=lambda *a: None)
    after = loss_and_grads(params, cfg, ds.src[rows, :L], mask, ds.tgt[rows])[0]
    assert hist.steps == [30]
    assert after < 0.8 * before, (before, after)
    assert all(v.dtype == np.float32 for v in params.values())


def test_checkpoints_see_each_evaluated_step_and_the_budget_is_never_exceeded():
    """The sample-efficiency curve of the demo: ``checkpoint(step, params)`` runs after every
    validation evaluation with that step's parameters; the recorder measures the test set
    every ``every`` steps on those parameters; a step budget stops training, not a clock."""
    from demos.translate_dates import test_accuracy_recorder
    cfg = Seq2SeqConfig(len(data.SRC_VOCAB), len(data.TGT_VOCAB), model="luong_dot", emb=8,
                        hidden=8, attn_dim=8, layers=1)
    ds, test = data.sample(200, "train", 0), data.sample(16, "test", 1)
    params = init_model(cfg, 0)
    seen, snapshots = [], []

    def checkpoint(step, p):
        seen.append(step)
        snapshots.append({k: v.copy() for k, v in p.items()})
        record(step, p)
    record, curve = test_accuracy_recorder(cfg, test, every=10)
    hist = train(params, cfg, ds, data.sample(8, "train", 1),
                 TrainConfig(batch=16, lr=1e-2, max_steps=25, max_seconds=float("inf"),
                             eval_every=5, patience=100), log=lambda *a: None,
                 checkpoint=checkpoint)
    assert seen == hist.steps == [5, 10, 15, 20, 25] and hist.stopped == "step budget"
    assert curve["step"] == [10, 20]
    for step, em in zip(curve["step"], curve["exact_match"]):
        p = snapshots[seen.index(step)]
        assert em == exact_match(cfg, predict(p, cfg, test.src, test.src_len), test.tgt)
