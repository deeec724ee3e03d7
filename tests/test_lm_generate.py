"""Generation with the KV cache against recomputing every prefix (NumPy and numba backends), the
cached step against the full forward, and the arguments generation refuses."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np import scaled_dot_product_attention_forward
from attention_np.lm import (LMConfig, cached_attention, generate, init_kv_cache, lm_forward,
                             lm_step)
from tests.strategies import distinct_dims, examples, seeds
from tests.test_lm import random_lm

CACHE_TOLERANCE = 1e-6          # the contract; measured differences are ~1e-15


@st.composite
def generation_cases(draw):
    H = draw(st.integers(2, 3))
    cfg = LMConfig(vocab_size=draw(st.integers(5, 13)), max_len=16, num_heads=H,
                   d_model=H * draw(st.integers(1, 4)), num_layers=draw(st.integers(1, 3)),
                   d_ff=draw(st.integers(1, 6)), mlp=draw(st.booleans()),
                   tied=draw(st.booleans()))
    return cfg, draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(0, 9))


def _both(params, cfg, prompt, n, temperature, seed):
    return [generate(params, cfg, prompt, n, temperature, np.random.default_rng(seed),
                     use_cache=use_cache) for use_cache in (True, False)]


@given(case=generation_cases(), sample=st.booleans(), seed=seeds)
@examples(ci=100, thorough=2_000)   # ~40 ms an example (up to 9 full forwards per generation)
def test_cache_gives_the_tokens_and_logits_of_recomputing(case, sample, seed):
    """Greedy or sampled (the same draws), any batch, prompt and length."""
    cfg, B, T0, n = case
    rng = np.random.default_rng(seed)
    params = random_lm(cfg, rng, np.float64)
    prompt = rng.integers(0, cfg.vocab_size, (B, T0))
    (ids, logits), (ids_ref, logits_ref) = _both(params, cfg, prompt, n, 0.7 * sample, seed)
    assert ids.shape == (B, T0 + n) and logits.shape == (B, n, cfg.vocab_size)
    np.testing.assert_array_equal(ids[:, :T0], prompt)
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_allclose(logits, logits_ref, rtol=0, atol=CACHE_TOLERANCE)
    if n:
        full, _ = lm_forward(ids[:, :-1], params, cfg)                 # the step logits are the
        np.testing.assert_allclose(logits, full[:, T0 - 1:], atol=1e-12)   # model's there
    if not sample:
        np.testing.assert_array_equal(ids[:, T0:], np.argmax(logits, -1))


@given(case=generation_cases(), seed=seeds, data=st.data())
@examples(ci=25, thorough=1_000)    # numba: ~0.1 s an example
def test_cache_on_the_numba_backend(case, seed, data):
    """backend="numba": the full forward on the flash kernels' causal mode, the cached step on
    their non-causal one; both paths agree with each other and with NumPy."""
    pytest.importorskip("numba")
    cfg, B, T0, n = case
    rng = np.random.default_rng(seed)
    params = random_lm(cfg, rng, np.float64)
    prompt = rng.integers(0, cfg.vocab_size, (B, T0))
    numba_cfg = dataclasses.replace(cfg, backend="numba")
    (ids, logits), (ids_ref, logits_ref) = _both(params, numba_cfg, prompt, n, 0.0, seed)
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_allclose(logits, logits_ref, rtol=0, atol=CACHE_TOLERANCE)
    ids_np, logits_np = generate(params, cfg, prompt, n)
    np.testing.assert_array_equal(ids, ids_np)
    np.testing.assert_allclose(logits, logits_np, rtol=0, atol=1e-10)


@given(case=generation_cases(), seed=seeds, data=st.data())
@examples(ci=100, thorough=2_000)
def test_steps_in_chunks_equal_the_full_forward(case, seed, data):
    """lm_step over any split of a sequence into chunks (a chunk attends to the cache and,
    causally, to itself) gives lm_forward's logits and attention weights."""
    cfg, B, _, _ = case
    rng = np.random.default_rng(seed)
    params = random_lm(cfg, rng, np.float64)
    T = data.draw(st.integers(1, cfg.max_len), label="T")
    ids = rng.integers(0, cfg.vocab_size, (B, T))
    cuts = sorted(data.draw(st.sets(st.integers(1, T - 1), max_size=4), label="cuts")) if T > 1 \
        else []
    kv = init_kv_cache(cfg, B)
    steps = [lm_step(chunk, params, cfg, kv) for chunk in np.split(ids, cuts, axis=1)]
    logits, weights, _ = lm_forward(ids, params, cfg, return_weights=True)
    np.testing.assert_allclose(np.concatenate([s[0] for s in steps], 1), logits, atol=1e-12)
    start = 0
    for _, step_weights in steps:
        for w_step, w in zip(step_weights, weights):                     # layer by layer
            Tn = w_step.shape[2]
            np.testing.assert_allclose(w_step, w[:, :, start:start + Tn, :start + Tn],
                                       atol=1e-12)
        start += step_weights[0].shape[2]
    assert kv.length == T


def test_generation_refuses_bad_arguments():
    cfg = LMConfig(vocab_size=9, max_len=6, d_model=8, num_heads=2, d_ff=6)
    params = random_lm(cfg, np.random.default_rng(0), np.float64)
    prompt = np.zeros((2, 3), int)
    for kwargs, name in [({"max_new_tokens": 5}, "max_len"), ({"max_new_tokens": -1}, "max_new"),
                         ({"max_new_tokens": 2, "temperature": -1.0}, "temperature"),
                         ({"max_new_tokens": 2, "temperature": 1.0}, "rng")]:
        with pytest.raises(ValueError, match=name):
            generate(params, cfg, prompt, **kwargs)
    generate(params, cfg, prompt, 4)                                     # 3 + 4 − 1 = max_len
    kv = init_kv_cache(cfg, 2)
    with pytest.raises(ValueError, match="rows"):
        lm_step(np.zeros((3, 1), int), params, cfg, kv)
    lm_step(np.zeros((2, 6), int), params, cfg, kv)
    with pytest.raises(ValueError, match="max_len"):                     # the cache is full
        lm_step(np.zeros((2, 1), int), params, cfg, kv)


@given(dims=distinct_dims(4, lo=1, hi=6), length=st.integers(0, 5), new=st.integers(1, 3),
       seed=seeds)
def test_cached_attention_equals_causal_attention_over_the_whole_prefix(dims, length, new, seed):
    """Storing Tn new keys/values after `length` cached ones and attending = the last Tn rows of
    causal attention over all length + Tn positions; the cache holds the new keys after."""
    B, H, D, spare = dims
    rng = np.random.default_rng(seed)
    T = length + new
    q, k, v = (rng.standard_normal((B, H, T, D)) for _ in range(3))
    k_cache = np.zeros((B, H, T + spare, D))
    v_cache = np.zeros_like(k_cache)
    k_cache[:, :, :length], v_cache[:, :, :length] = k[:, :, :length], v[:, :, :length]
    out, weights = cached_attention(q[:, :, length:], k[:, :, length:], v[:, :, length:],
                                    k_cache, v_cache, length)
    full, full_w, _ = scaled_dot_product_attention_forward(q, k, v, causal=True)
    np.testing.assert_allclose(out, full[:, :, length:], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(weights, full_w[:, :, length:], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(k_cache[:, :, :T], k)
    with pytest.raises(ValueError, match="fit the caches"):
        cached_attention(q[:, :, :1], k[:, :, :1], v[:, :, :1], k_cache, v_cache, T + spare)
