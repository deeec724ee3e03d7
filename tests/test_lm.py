"""The decoder-only LM against the same model written in torch (float64 autograd; float32 judged
against the float64 truth), finite differences, and its loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from attention_np.lm import LMConfig, init_lm, lm_backward, lm_forward, lm_loss_and_grads
from tests.helpers import assert_matches_torch, check_finite_differences, stacked_condition
from tests.strategies import dtypes, examples, seeds
from tests.test_transformer_causal import torch_block


def torch_lm(ids, p, cfg: LMConfig, ln_rows=None):
    """logits = LN_f(blocks(E[ids] + P[:T])) U in torch, the blocks from test_transformer_causal."""
    T, d = ids.shape[1], cfg.d_model
    x = p["tok_emb.W"][ids] + p["pos_emb.W"][:T]
    for layer in range(cfg.num_layers):
        prefix = f"blocks.{layer}."
        bp = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
        x = torch_block(x, bp, cfg.num_heads, norm_first=True, mlp=cfg.mlp, causal=True,
                        activation=cfg.activation, eps=cfg.eps, ln_rows=ln_rows)
    if ln_rows is not None:
        ln_rows.append(x.detach().numpy())
    z = F.layer_norm(x, (d,), p["ln_f.gamma"], p["ln_f.beta"], eps=cfg.eps)
    return z @ (p["tok_emb.W"].T if cfg.tied else p["head.W"])


def random_lm(cfg, rng, dtype):
    """init_lm with unit-scale embeddings and non-trivial biases and norms (every gradient
    matters; GPT-2's 0.02 embeddings would make every layer norm ill-conditioned)."""
    params = init_lm(cfg, rng, dtype)
    for name, value in params.items():
        if "emb" in name:
            params[name] = rng.standard_normal(value.shape).astype(dtype)
        elif ".b_" in name or ".ln" in name or name.startswith("ln_f"):
            params[name] = (value + 0.3 * rng.standard_normal(value.shape)).astype(dtype)
    return params


def lm_pair(cfg):
    def ours(ids, **params):
        logits, cache = lm_forward(ids, params, cfg)
        return logits, lambda dlogits: lm_backward(dlogits, cache)
    return ours


def lm_condition(ids, params, cfg):
    """The float32 condition factor: 1/σ of the worst row entering a layer norm (float64)."""
    rows = []
    with torch.no_grad():
        torch_lm(torch.from_numpy(ids), {k: torch.from_numpy(v.astype(np.float64))
                                         for k, v in params.items()}, cfg, ln_rows=rows)
    return stacked_condition(rows, cfg.eps)


@st.composite
def lm_cases(draw):
    """B > 1, odd T, H > 1, and sizes that differ from each other."""
    H, Dh = draw(st.integers(2, 3)), draw(st.integers(1, 4))
    return dict(B=draw(st.integers(2, 4)), T=draw(st.sampled_from([1, 3, 5, 7])),
                cfg=LMConfig(vocab_size=draw(st.integers(5, 13)), num_heads=H, d_model=H * Dh,
                             num_layers=draw(st.integers(1, 2)), d_ff=draw(st.integers(1, 6)),
                             mlp=draw(st.booleans()), tied=draw(st.booleans()),
                             activation=draw(st.sampled_from(["relu", "gelu"])), max_len=8))


@given(case=lm_cases(), dtype=dtypes, seed=seeds)
@examples(ci=200, thorough=3_000)     # ~25 ms an example (two torch runs, all parameters)
@example(case=dict(B=3, T=3, cfg=LMConfig(vocab_size=12, max_len=8, d_model=2, num_heads=2,
                                          num_layers=1, d_ff=2, activation="relu")),
         dtype=np.float32, seed=2848)     # failed under thorough: cond was one norm's 1/σ
def test_lm_matches_torch(case, dtype, seed):
    """Logits and the gradient of every parameter (tied or untied E, attention-only or with an
    MLP); the position rows past T (max_len is 8) get zero gradient."""
    cfg, B, T = case["cfg"], case["B"], case["T"]
    rng = np.random.default_rng(seed)
    params = random_lm(cfg, rng, dtype)
    ids = rng.integers(0, cfg.vocab_size, size=(B, T))
    cond = 1.0 if dtype == np.float64 else lm_condition(ids, params, cfg)
    assert_matches_torch("lm", lm_pair(cfg), lambda ids, **p: torch_lm(ids, p, cfg),
                         {"ids": ids, **params}, list(params), seed=seed, cond=cond)


@pytest.mark.parametrize("mlp, tied", [(False, True), (True, False)])
def test_lm_finite_differences(mlp, tied):
    cfg = LMConfig(vocab_size=7, max_len=6, d_model=6, num_heads=2, num_layers=2, d_ff=5,
                   mlp=mlp, tied=tied)
    rng = np.random.default_rng(0)
    params = random_lm(cfg, rng, np.float64)
    ids = np.array([[1, 5, 5, 0, 3], [6, 2, 1, 1, 4]])                 # repeats: dE accumulates
    check_finite_differences(lm_pair(cfg), {"ids": ids, **params}, list(params), n_entries=4)


def test_loss_and_grads_is_next_token_cross_entropy():
    cfg = LMConfig(vocab_size=9, max_len=8, d_model=8, num_heads=2, d_ff=6, mlp=False)
    rng = np.random.default_rng(1)
    params = random_lm(cfg, rng, np.float64)
    ids = rng.integers(0, 9, size=(3, 8))
    loss, grads = lm_loss_and_grads(ids, params, cfg)
    t = {k: torch.from_numpy(v).requires_grad_(True) for k, v in params.items()}
    logits = torch_lm(torch.from_numpy(ids[:, :-1]), t, cfg)
    ref = F.cross_entropy(logits.reshape(-1, 9), torch.from_numpy(ids[:, 1:]).reshape(-1))
    ref.backward()
    np.testing.assert_allclose(loss, ref.item(), rtol=1e-12)
    for name, value in t.items():
        np.testing.assert_allclose(grads[name], value.grad.numpy(), atol=1e-12, err_msg=name)


def test_weights_are_causal_distributions_and_float32_stays_float32():
    cfg = LMConfig(vocab_size=9, max_len=8, d_model=8, num_heads=2, d_ff=6)
    rng = np.random.default_rng(2)
    params = init_lm(cfg, rng, np.float32)
    logits, weights, cache = lm_forward(rng.integers(0, 9, (2, 6)), params, cfg,
                                        return_weights=True)
    grads = lm_backward(np.ones_like(logits), cache)
    assert logits.shape == (2, 6, 9) and logits.dtype == np.float32
    assert set(grads) == set(params) and all(g.dtype == np.float32 for g in grads.values())
    for w in weights:
        assert w.shape == (2, 2, 6, 6) and np.all(w[..., np.triu_indices(6, 1)[0],
                                                    np.triu_indices(6, 1)[1]] == 0)
        np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-5)


def test_numba_backend_matches_numpy():
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    params = random_lm(LMConfig(vocab_size=9, max_len=8, d_model=8, num_heads=2, d_ff=6), rng,
                       np.float64)
    ids = rng.integers(0, 9, (3, 7))
    runs = {}
    for backend in ("numpy", "numba"):
        cfg = LMConfig(vocab_size=9, max_len=8, d_model=8, num_heads=2, d_ff=6, backend=backend)
        logits, weights, cache = lm_forward(ids, params, cfg, return_weights=True)
        runs[backend] = {"logits": logits, **lm_backward(np.cos(logits), cache)}
        # the flash kernels keep no weights: None entries say the backend reached the blocks
        assert [w is None for w in weights] == [backend == "numba"] * cfg.num_layers
    for name, value in runs["numpy"].items():
        np.testing.assert_allclose(runs["numba"][name], value, atol=1e-10, err_msg=name)


def test_bad_arguments_raise_value_error():
    cfg = LMConfig(vocab_size=9, max_len=5, d_model=8, num_heads=2, d_ff=6)
    params = init_lm(cfg, np.random.default_rng(4))
    with pytest.raises(ValueError, match="num_heads"):
        LMConfig(d_model=6, num_heads=4)
    with pytest.raises(ValueError, match="max_len"):
        lm_forward(np.zeros((1, 6), int), params, cfg)
    with pytest.raises(ValueError, match="ids"):
        lm_forward(np.full((1, 3), 9), params, cfg)
    with pytest.raises(ValueError, match="head.W"):
        lm_forward(np.zeros((1, 3), int), params, LMConfig(vocab_size=9, max_len=5, d_model=8,
                                                           num_heads=2, d_ff=6, tied=False))
    with pytest.raises(ValueError, match="dlogits"):
        lm_backward(np.zeros((1, 2, 9)), lm_forward(np.zeros((1, 3), int), params, cfg)[1])


def test_error_messages_name_the_argument_and_value():
    """Exact messages: the position past max_len, the id range, the type of a wrong cfg or
    params, the size or activation field named, eps = 0 refused, and lm_loss_and_grads checks
    the targets ids[:, 1:] (a bad id at t = 1 is reported with the targets' range and shape)."""
    cfg = LMConfig(vocab_size=9, max_len=5, d_model=8, num_heads=2, d_ff=6)
    params = init_lm(cfg, np.random.default_rng(4))
    cases = [
        (lambda: lm_forward(np.zeros((1, 6), int), params, cfg),
         "ids with shape (1, 6) reaches position 6 > max_len 5"),
        (lambda: lm_forward(np.full((1, 3), 9), params, cfg),        # only above V, none below 0
         "ids must lie in [0, vocab_size=9), got ids in [9, 9] (shape (1, 3))"),
        (lambda: lm_forward(np.zeros((1, 3), int), params, "cfg"),
         "cfg must be an LMConfig, got str"),
        (lambda: lm_forward(np.zeros((1, 3), int), [params], cfg),
         "params must be a dict of arrays (make it with init_lm), got list"),
        (lambda: init_lm("cfg", np.random.default_rng(0)), "cfg must be an LMConfig, got str"),
        (lambda: LMConfig(num_layers=0), "num_layers must be an integer ≥ 1, got 0"),
        (lambda: LMConfig(activation="tanh"),
         "activation must be one of ['gelu', 'relu'], got 'tanh'"),
        (lambda: LMConfig(eps=0.0), "eps must be positive, got 0.0"),
        (lambda: lm_loss_and_grads(np.array([[0, 9, 1]]), params, cfg),
         "ids must lie in [0, vocab_size=9), got ids in [1, 9] (shape (1, 2))"),
        (lambda: lm_loss_and_grads(np.array([[3]]), params, cfg),
         "ids must be (B, T) with T ≥ 2 (inputs and next tokens), got shape (1, 1)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message


def test_full_context_and_shortest_loss_are_accepted():
    """T = max_len fills every learned position (all of P gets a gradient), and T = 2 is the
    shortest sequence with a next-token loss: one prediction per row, −log softmax(logits)[w₁]."""
    cfg = LMConfig(vocab_size=7, max_len=4, d_model=4, num_heads=2, num_layers=1, d_ff=3)
    rng = np.random.default_rng(5)
    params = random_lm(cfg, rng, np.float64)
    ids = rng.integers(0, 7, (2, 4))
    logits, cache = lm_forward(ids, params, cfg)
    assert logits.shape == (2, 4, 7)
    assert np.all(np.abs(lm_backward(np.cos(logits), cache)["pos_emb.W"]).sum(axis=1) > 0)
    long_ids = np.concatenate([ids, rng.integers(0, 7, (2, 1))], axis=1)  # inputs fill max_len
    assert np.isfinite(lm_loss_and_grads(long_ids, params, cfg)[0])
    pair = ids[:, :2]
    loss, grads = lm_loss_and_grads(pair, params, cfg)
    first = lm_forward(pair[:, :1], params, cfg)[0][:, 0]               # (B, V)
    log_p = first - np.log(np.exp(first).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss, -log_p[np.arange(2), pair[:, 1]].mean(), rtol=1e-12)
    assert set(grads) == set(params)


def test_eps_reaches_every_layer_norm():
    """cfg.eps is the ε of every block's norms and of LN_f: a large ε changes the logits, and
    they still match torch run with the same ε."""
    cfg = LMConfig(vocab_size=6, max_len=5, d_model=4, num_heads=2, num_layers=2, d_ff=3,
                   eps=0.5)
    rng = np.random.default_rng(6)
    params = random_lm(cfg, rng, np.float64)
    ids = rng.integers(0, 6, (2, 5))
    logits = lm_forward(ids, params, cfg)[0]
    with torch.no_grad():
        ref = torch_lm(torch.from_numpy(ids), {k: torch.from_numpy(v) for k, v in params.items()},
                       cfg)
    np.testing.assert_allclose(logits, ref.numpy(), rtol=1e-12, atol=1e-12)
