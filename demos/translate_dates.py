"""Machine translation of human-written dates ("the 3rd of March, two thousand twenty-one",
"Tue, 09/03/21") into ISO 8601 with a bidirectional-LSTM encoder and seven decoders: no
attention (the fixed-vector bottleneck), Bahdanau, Luong dot / general / concat / local-p, and a
small Transformer. Every layer is NumPy with a hand-written backward pass. Every model gets the
same step budget (early stopping may end a run sooner, never later; no time budget). Shows
held-out exact match per model, against input length and against training steps (sample
efficiency), and the character alignments."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attention_np.apps.seq2seq.config import MODELS, Seq2SeqConfig
from attention_np.apps.seq2seq.model import init_model
from attention_np.apps.seq2seq.search import translate_beam
from attention_np.apps.seq2seq.train import TrainConfig, crop, exact_match, predict, train
from demos import _dates_data as data
from demos import _dates_figures as figures
from demos._common import (demo_dir, demo_main, one_blas_thread, one_numba_thread, worker_pool,
                           write_json)
from demos._progress import say

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "机器翻译（machine translation）：把人写的日期（如“the 3rd of March, two thousand "
    "twenty-one”“Tue, 09/03/21”）翻译成 ISO 8601 格式。编码器（encoder）是双向 LSTM，"
    "解码器（decoder）有七种：无注意力（固定向量瓶颈）、Bahdanau、Luong 的 dot / general "
    "/ concat / local-p，以及一个小型 Transformer。每一层都用 NumPy 实现，"
    "反向计算全部手写。所有模型的训练步数相同（早停可能让训练提前结束，但绝不会延后；"
    "不设时间预算）。演示程序给出每个模型在留出测试集上的完全匹配率，"
    "以及它随输入长度和随训练步数（样本效率）的变化，并画出字符级的对齐（alignment）。"
)

NAME = "translate_dates"
SETTINGS = {  # the same step budget for every model; test accuracy every ``test_every`` steps
    False: dict(n_train=30_000, n_val=1_000, n_test=1_000, steps=2_000, patience=8,
                beam_rows=200, test_every=200),
    True: dict(n_train=100_000, n_val=1_000, n_test=3_000, steps=6_000, patience=8,
               beam_rows=1_000, test_every=500),
}


# ------------------------------------------------------------------------------- data
def load_data(s: dict) -> dict:
    """Training and validation pairs from the training dates and formats; test pairs from
    dates and formats never seen in training (demos/_dates_data.py)."""
    return {"train": data.sample(s["n_train"], "train", seed=0),
            "val": data.sample(s["n_val"], "train", seed=1),
            "test": data.sample(s["n_test"], "test", seed=2)}


# ------------------------------------------------------------------------------- model
SIZES = {"transformer": dict(hidden=32, ffn=128, layers=1),   # d_model 64, one layer each side
         "luong_local": dict(local_window=8)}                # window p ± 8, σ = 4


def make_model(model: str, seed: int, backend: str = "numba"):
    """The config (default sizes: attention_np/apps/seq2seq/config.py) and fresh parameters.
    The demo trains and decodes with the LSTM scans on the fused Numba kernels (the same
    equations as the NumPy reference the site teaches; ``backend="numpy"`` runs that)."""
    cfg = Seq2SeqConfig(len(data.SRC_VOCAB), len(data.TGT_VOCAB), model=model,
                        start=data.START, end=data.END, pad=data.PAD, backend=backend,
                        **SIZES.get(model, {}))
    return cfg, init_model(cfg, seed)


# ------------------------------------------------------------------------------- training
# Every model: the same ``steps`` budget, Adam (lr 5e-3 decaying linearly to 5e-4 over it),
# early stopping on validation exact match. Local-p and the Transformer rarely stop early:
# started first, they keep both workers busy.
LONG_RUNNERS = ("luong_local", "transformer")


def test_accuracy_recorder(cfg, test, every: int):
    """A ``checkpoint(step, params)`` for the training loop that measures greedy exact match on
    the test set every ``every`` steps → (checkpoint, {"step": [...], "exact_match": [...]})."""
    curve = {"step": [], "exact_match": []}

    def checkpoint(step, params):
        if step % every == 0:
            curve["step"].append(step)
            curve["exact_match"].append(
                exact_match(cfg, predict(params, cfg, test.src, test.src_len), test.tgt))
    return checkpoint, curve


def train_and_evaluate(model: str, sets: dict, s: dict, seed: int = 0):
    """Train one model for at most ``s["steps"]`` steps, then score the best parameters on the
    test set. Returns (cfg, params, metrics). Runs in a worker process: everything comes as
    arguments."""
    with one_blas_thread(), one_numba_thread():
        cfg, params = make_model(model, seed)
        tc = TrainConfig(batch=64, lr=5e-3, max_steps=s["steps"], max_seconds=float("inf"),
                         eval_every=100, patience=s["patience"], seed=seed)
        checkpoint, curve = test_accuracy_recorder(cfg, sets["test"], s["test_every"])
        hist = train(params, cfg, sets["train"], sets["val"], tc,
                     log=lambda msg: say(f"{model:13s} {msg}"), checkpoint=checkpoint)
        metrics = evaluate(params, cfg, sets["test"], s["beam_rows"])
    metrics.update({"train_steps": hist.steps[-1], "step_budget": s["steps"],
                    "stopped": hist.stopped, "train_seconds": round(hist.seconds, 1),
                    "train_wall_seconds": round(hist.wall_seconds, 1),
                    "parameters": int(sum(v.size for v in params.values())),
                    "test_exact_match_by_step": curve,
                    "history": {"step": hist.steps, "train_loss": hist.train_loss,
                                "val_exact": hist.val_exact}})
    return cfg, params, metrics


def train_all(sets: dict, s: dict, seed: int = 0) -> dict:
    """Every model (initialised and trained from ``seed``), two at a time in worker processes
    (one after the other when ``python -m demos`` runs two demos side by side: see
    :func:`demos._common.worker_pool`)
    → {model: (cfg, params, metrics)}."""
    order = sorted(MODELS, key=lambda m: m not in LONG_RUNNERS)        # longest jobs first
    n = len(order)
    with worker_pool() as pool:
        return dict(zip(order, pool.map(train_and_evaluate, order, [sets] * n, [s] * n,
                                        [seed] * n)))


# ------------------------------------------------------------------------------- evaluation
LENGTH_BINS = [(6, 15), (16, 25), (26, 35), (36, 45), (46, 60)]


def char_accuracy(pred, tgt) -> float:
    """Share of the 10 date characters predicted correctly at their position."""
    return float(np.mean(pred[:, :10] == tgt[:, :10]))


def accuracy_by_length(pred, tgt, src_len) -> list[float | None]:
    ok = np.all(pred == tgt, axis=1)
    out = []
    for lo, hi in LENGTH_BINS:
        rows = (src_len >= lo) & (src_len <= hi)
        out.append(float(ok[rows].mean()) if rows.any() else None)
    return out


def evaluate(params, cfg, test, beam_rows: int) -> dict:
    """Greedy exact match, character accuracy and exact match per input length on the test
    set; beam-4 exact match on its first ``beam_rows`` rows."""
    pred = predict(params, cfg, test.src, test.src_len)
    rows = np.arange(min(beam_rows, len(test.src)))
    beam = translate_beam(params, cfg, *crop(test.src, test.src_len, rows), beam=4)[0]
    return {"exact_match": exact_match(cfg, pred, test.tgt),
            "char_accuracy": char_accuracy(pred, test.tgt),
            "beam4_exact_match": exact_match(cfg, beam, test.tgt[rows]),
            "beam4_rows": len(rows),
            "exact_match_by_length": accuracy_by_length(pred, test.tgt, test.src_len)}


def print_table(metrics: dict) -> str:
    head = ("| model | exact match | beam-4 exact | char acc. | "
            + " | ".join(f"len {lo}–{hi}" for lo, hi in LENGTH_BINS)
            + " | CPU s | steps | stopped by |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, m in metrics.items():
        bins = " | ".join("–" if a is None else f"{a:.3f}" for a in m["exact_match_by_length"])
        lines.append(f"| {name} | {m['exact_match']:.3f} | {m['beam4_exact_match']:.3f} | "
                     f"{m['char_accuracy']:.4f} | {bins} | {m['train_seconds']:.0f} | "
                     f"{m['train_steps']} | {m['stopped']} |")
    table = "\n".join(lines)
    say(table)
    return table


# ------------------------------------------------------------------------------- demo
def run(out_dir: Path, full: bool = False, seed: int = 0) -> list:
    """``seed`` initialises and trains every model; the date pairs stay the same."""
    import matplotlib
    matplotlib.use("Agg")
    s = SETTINGS[full]
    out = demo_dir(out_dir, NAME)
    sets = load_data(s)
    say(f"{len(sets['train'].sources)} training pairs, {len(sets['test'].sources)} held-out "
          f"test pairs (unseen dates and unseen formats), e.g. "
          f"{sets['test'].sources[0]!r} → {sets['test'].targets[0]}")
    start = time.perf_counter()
    results = train_all(sets, s, seed)
    models = {name: results[name][:2] for name in MODELS}
    metrics = {name: results[name][2] for name in MODELS}
    table = print_table(metrics)
    write_json(out / "metrics.json", {**metrics, "settings": {
        **s, "budget": f"{s['steps']} steps for every model; early stopping (patience "
                       f"{s['patience']} evaluations, one every 100 steps) may end a run sooner; "
                       "no time budget"}})
    (out / "table.md").write_text(table + "\n")
    figs = figures.make_all(out_dir, NAME, models, metrics, sets["test"], LENGTH_BINS)
    say(f"total {time.perf_counter() - start:.0f} s; wrote {out}")
    return figs


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
