"""One configuration dataclass for every date-translation model (nanoGPT's ``GPTConfig`` habit)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.backend import check_backend

RNN_ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general", "luong_concat", "luong_local")
MODELS = RNN_ATTENTIONS + ("transformer",)


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Sizes of an encoder–decoder.

    RNN models: a bidirectional LSTM encoder of ``hidden`` units per direction; an LSTM decoder
    of ``2·hidden`` units started from the encoder's final (h, c) of both directions.
    Transformer: ``d_model`` = ``2·hidden``, ``heads`` heads, ``layers`` encoder and decoder layers.
    """
    src_vocab: int
    tgt_vocab: int
    model: str = "bahdanau"
    emb: int = 32
    hidden: int = 64
    attn_dim: int = 64            # A of the additive (concat / Bahdanau) score
    local_window: int = 4         # D of Luong's local-p: window [p − D, p + D], σ = D / 2
    heads: int = 4
    layers: int = 2
    ffn: int = 256
    max_tgt_len: int = 11         # decoding stops after this many tokens (or at <end>)
    start: int = 1                # token ids: <start> begins every output, <end> closes it,
    end: int = 2                  # <pad> fills the rest
    pad: int = 0
    dtype: str = "float32"
    backend: str = "numpy"        # "numba": the LSTM scans run on the fused kernels (training and
                                  # decoding; same equations, attention_np.nn.recurrent)

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        check_backend(self.backend)
        if self.model == "transformer" and self.d_model % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide d_model ({self.d_model})")

    @property
    def d_model(self) -> int:
        return 2 * self.hidden

    @property
    def np_dtype(self):
        return np.dtype(self.dtype)
