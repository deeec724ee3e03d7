"""The translator's training step as a benchmark row: the Bahdanau model of
``demos/translate_dates.py`` (:mod:`attention_np.apps.seq2seq`, default sizes), forward and
backward — the mean cross-entropy of a teacher-forced batch and the gradient of every parameter
(no optimiser update) — for ours with ``backend="numba"`` (the encoder's two LSTM scans and the
decoder's time loop, attention + LSTM cell, on the fused kernels of
:mod:`attention_np.kernels.recurrent` and :mod:`attention_np.kernels.bahdanau`), the NumPy
reference (``backend="numpy"``) and the same model written here in torch (autograd), on the
same parameters, batch and threads.

    encoder   e = E_src[x],  h = [LSTM→(e) ; LSTM←(e)]  (bidirectional, padded rows packed)
    decoder   t = 1 … T:  c_t = Σ_j α_tj h_j,  α_t = softmax_j vᵀ tanh(s_{t−1} W_q + h_j W_k)
                          s_t = LSTMCell([E_tgt[y_{t−1}] ; c_t], s_{t−1})
    head      logits_t = tanh([c_t ; s_t] W_c + b_c) W_s + b_s

The batch imitates the demo's: B = 64 sources of 20–28 characters (length-bucketed, so they
differ little), targets of 10 characters + <end> (YYYY-MM-DD). Work credited: the products'
FLOP, forward ×3 (the backward makes two products for each).
"""
from __future__ import annotations

import numpy as np

from attention_np.kernels._bench_utils import Row, best_times

SIZES = {"B": 64, "Tk": 28, "T": 11, "src_vocab": 40, "tgt_vocab": 14}


def batch(rng, cfg, B: int, Tk: int, T: int):
    """src (B, Tk) int, src_mask (B, Tk) bool, tgt (B, T) int: a length-bucketed batch."""
    lengths = rng.integers(Tk - 8, Tk + 1, size=B)
    lengths[0] = Tk
    src_mask = np.arange(Tk)[None, :] < lengths[:, None]
    src = np.where(src_mask, rng.integers(1, cfg.src_vocab, size=(B, Tk)), cfg.pad)
    tgt = rng.integers(cfg.end + 1, cfg.tgt_vocab, size=(B, T))
    tgt[:, -1] = cfg.end
    return src, src_mask, tgt


def _flops(cfg, B, Tk, T) -> float:
    """Forward FLOP of the products: encoder scans, W_k, per step attention + LSTM cell, head."""
    E, H, Hd, A = cfg.emb, cfg.hidden, cfg.d_model, cfg.attn_dim
    enc = 2 * 2 * B * Tk * (E + H) * 4 * H
    att = 2 * B * Tk * Hd * A + T * (2 * B * Hd * A + 2 * B * Tk * A + 2 * 2 * B * Tk * Hd)
    dec = T * 2 * B * (E + Hd + Hd) * 4 * Hd
    head = T * 2 * B * ((2 * Hd) * Hd + Hd * cfg.tgt_vocab)
    return float(enc + att + dec + head)


def torch_model(torch, cfg, params: dict):
    """The same model in torch: ``(loss_fn(src, src_mask, tgt) -> loss, grads() -> {name:
    array})``, on copies of our parameters (the LSTMs' row-vector weights transposed into
    torch's modules; ``grads`` maps the gradients back to our names and layout)."""
    nn, F = torch.nn, torch.nn.functional
    P = {k: torch.nn.Parameter(torch.from_numpy(np.array(v))) for k, v in params.items()}
    H, Hd = cfg.hidden, cfg.d_model
    dtype = P["dec.W_h"].dtype
    enc = nn.LSTM(cfg.emb, H, batch_first=True, bidirectional=True).to(dtype)
    dec = nn.LSTMCell(cfg.emb + Hd, Hd).to(dtype)
    with torch.no_grad():
        for suffix, name in (("", "enc_f"), ("_reverse", "enc_b")):
            getattr(enc, f"weight_ih_l0{suffix}").copy_(P[f"{name}.W_x"].T)
            getattr(enc, f"weight_hh_l0{suffix}").copy_(P[f"{name}.W_h"].T)
            getattr(enc, f"bias_ih_l0{suffix}").copy_(P[f"{name}.b"])
            getattr(enc, f"bias_hh_l0{suffix}").zero_()
        dec.weight_ih.copy_(P["dec.W_x"].T)
        dec.weight_hh.copy_(P["dec.W_h"].T)
        dec.bias_ih.copy_(P["dec.b"])
        dec.bias_hh.zero_()
    pack, unpack = nn.utils.rnn.pack_padded_sequence, nn.utils.rnn.pad_packed_sequence

    def loss_fn(src, src_mask, tgt):
        B, Tk = src.shape
        lengths = src_mask.sum(1)
        e = F.embedding(src, P["src_emb.W"])                                # (B, Tk, E)
        out, (h_n, c_n) = enc(pack(e, lengths, batch_first=True, enforce_sorted=False))
        keys, _ = unpack(out, batch_first=True, total_length=Tk)          # (B, Tk, 2H)
        h, c = torch.cat([h_n[0], h_n[1]], -1), torch.cat([c_n[0], c_n[1]], -1)
        tgt_in = torch.cat([torch.full_like(tgt[:, :1], cfg.start), tgt[:, :-1]], 1)
        y = F.embedding(tgt_in, P["tgt_emb.W"])                             # (B, T, E)
        kp = keys @ P["att.W_k"]                                            # (B, Tk, A)
        hs, ctxs = [], []
        for t in range(tgt.shape[1]):
            a = torch.tanh((h @ P["att.W_q"])[:, None, :] + kp)             # (B, Tk, A)
            scores = (a @ P["att.v"]).masked_fill(~src_mask, float("-inf"))  # (B, Tk)
            w = torch.softmax(scores, -1)
            ctx = torch.bmm(w[:, None, :], keys)[:, 0]                       # (B, 2H)
            h, c = dec(torch.cat([y[:, t], ctx], -1), (h, c))
            hs.append(h), ctxs.append(ctx)
        feats = torch.cat([torch.stack(ctxs, 1), torch.stack(hs, 1)], -1)   # (B, T, 2Hd)
        ht = torch.tanh(feats @ P["out_c.W"] + P["out_c.b"])
        logits = ht @ P["out_s.W"] + P["out_s.b"]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                               ignore_index=cfg.pad)

    def grads() -> dict:
        g = {k: p.grad.numpy() for k, p in P.items() if p.grad is not None}
        for suffix, name in (("", "enc_f"), ("_reverse", "enc_b")):
            g[f"{name}.W_x"] = getattr(enc, f"weight_ih_l0{suffix}").grad.numpy().T
            g[f"{name}.W_h"] = getattr(enc, f"weight_hh_l0{suffix}").grad.numpy().T
            g[f"{name}.b"] = getattr(enc, f"bias_ih_l0{suffix}").grad.numpy()
        g["dec.W_x"], g["dec.W_h"] = dec.weight_ih.grad.numpy().T, dec.weight_hh.grad.numpy().T
        g["dec.b"] = dec.bias_ih.grad.numpy()
        return g

    modules = (enc, dec)
    return loss_fn, grads, modules, P


def torch_step(torch, cfg, params, src, src_mask, tgt):
    """(run, grads): ``run()`` is one forward + backward of the torch model, returning the loss;
    ``grads()`` the gradients of the last run, keyed and shaped like ours."""
    loss_fn, grads, modules, P = torch_model(torch, cfg, params)
    ts, tm, tt = torch.from_numpy(src), torch.from_numpy(src_mask), torch.from_numpy(tgt)

    def run():
        for p in P.values():
            p.grad = None
        for m in modules:
            m.zero_grad(set_to_none=True)
        loss = loss_fn(ts, tm, tt)
        loss.backward()
        return loss.detach()
    return run, grads


def ours_step(cfg, params, src, src_mask, tgt):
    """A callable: ``loss_and_grads`` of the app with NumPy's BLAS on one thread, as the demo
    trains (its products are a few hundred kFLOP: a second BLAS thread only waits, and on a
    loaded machine a waiting BLAS thread costs milliseconds a call); the Numba kernels use all
    of Numba's threads (the same number torch gets)."""
    from attention_np.apps.seq2seq.model import loss_and_grads
    from attention_np.kernels._config import single_threaded_blas

    def run():
        with single_threaded_blas():
            return loss_and_grads(params, cfg, src, src_mask, tgt)
    return run


def setup(backend: str = "numba", seed: int = 0):
    """(cfg, params, src, src_mask, tgt) of the bench row."""
    from attention_np.apps.seq2seq.config import Seq2SeqConfig
    from attention_np.apps.seq2seq.model import init_model
    cfg = Seq2SeqConfig(SIZES["src_vocab"], SIZES["tgt_vocab"], model="bahdanau",
                        backend=backend)
    params = init_model(cfg, seed)
    src, src_mask, tgt = batch(np.random.default_rng(seed + 1), cfg, SIZES["B"], SIZES["Tk"],
                               SIZES["T"])
    return cfg, params, src, src_mask, tgt


def seq2seq_rows(peaks: dict, repeats: int, torch) -> list[Row]:
    """Row "Bahdanau train step": fwd+bwd of the translator, ours (numba) / NumPy / torch."""
    cfg, params, src, src_mask, tgt = setup("numba")
    cfg_np, _, _, _, _ = setup("numpy")
    t = best_times({"ours": ours_step(cfg, params, src, src_mask, tgt),
                    "numpy": ours_step(cfg_np, params, src, src_mask, tgt),
                    "torch": torch and torch_step(torch, cfg, params, src, src_mask, tgt)[0]},
                   repeats)
    B, Tk, T = SIZES["B"], SIZES["Tk"], SIZES["T"]
    return [Row("Bahdanau train step fwd+bwd", f"B={B} Tk={Tk} T={T} H={cfg.hidden}",
                t["ours"], t["numpy"], t["torch"], 3 * _flops(cfg, B, Tk, T), "GFLOPS",
                peaks["gemm_gflops"])]
