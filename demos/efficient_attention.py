"""The cost of attention (article §8.2.1, §8.2.2, §8.3.1), measured.

1. Cost: time and peak memory of one forward pass vs sequence length T for exact attention
   (NumPy, Numba flash kernel) and each efficient variant; slopes of the log-log fit.
2. Approximation: relative error of each variant against exact attention on real query/key/value
   vectors (layer 0 of all-MiniLM-L6-v2 on a 512-token text; random vectors if the model is not
   installed), as a function of its budget (window, features, rank).
3. Reach: one attention layer trained with each variant on associative recall; accuracy vs the
   distance between the queried pair and the question. With one question at the last token,
   "window + global question" scores like exact attention by construction: a global token
   attends to every key, so the one row the readout uses *is* exact attention. The second
   setting asks several questions at random positions, so no token can be made the global one.

    python -m demos.efficient_attention --out out [--full]
"""
from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np

from attention_np import kernels
from attention_np import efficient as ef
from attention_np.self_attention import scaled_dot_product_attention_forward
from demos import _recall_task as recall
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, write_json
from demos._efficient_data import qkv_vectors
from demos._efficient_figures import plot_approximation, plot_cost, plot_recall
from demos._efficient_recall import global_row_gap, run_recall
from demos._progress import say
from attention_np.kernels import efficient as ke

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "实测注意力的计算代价（原文 §8.2.1、§8.2.2、§8.3.1）。1. 代价：对精确注意力（NumPy "
    "实现和 Numba flash 内核）以及每种高效变体，测量一次前向计算的时间和峰值内存随序列长"
    "度 T 的变化，并给出双对数拟合的斜率。2. 近似：在真实的查询/键/值向量上"
    "（all-MiniLM-L6-v2 第 0 层作用于一段 512 个词元的文本；"
    "未安装该模型时改用随机向量），每种变体相对精确注意力的误差随其预算（窗口、特征数、"
    "秩）的变化。3. 可及范围：用每种变体训练一个单层注意力模型做联想回忆（associative "
    "recall），看准确率随被查询的键值对与问题之间距离的变化。"
    "当唯一的问题位于最后一个词元时，“window + global question”按构造就与精确注意力得分相"
    "同：全局词元关注所有键，所以读出层唯一用到的那一行就是精确注意力。"
    "第二种设定在随机位置提出多个问题，因此没有哪个词元能被设为全局词元。运行：python -m "
    "demos.efficient_attention --out out [--full]"
)

NAME = "efficient_attention"
WINDOW, BLOCK, FEATURES, RANK = 64, 64, 128, 128


# --- 1. cost ---------------------------------------------------------------------------------

def cost_ops(T: int, D: int, rng: np.random.Generator) -> dict:
    """name → f(q, k, v) running one forward pass (q, k, v of shape (1, H, T, D), float32).

    The variants' fixed inputs (random features, BigBird layout, Linformer's E and F) are made
    here, so that their creation is not what is timed.
    """
    W = ef.orthogonal_random_features(FEATURES, D, rng, np.float32)
    nb = -(-T // BLOCK)
    layout = ef.block_layout(nb, nb, window=1, global_blocks=[0], random_blocks=1, rng=rng)
    projections = ef.init_linformer_projections(RANK, T, rng, np.float32)
    return {
        "exact (NumPy)": lambda q, k, v: scaled_dot_product_attention_forward(q, k, v),
        f"sliding window w={WINDOW}": lambda q, k, v: ef.sliding_window_attention_forward(
            q, k, v, WINDOW),
        f"block-sparse b={BLOCK} (BigBird)": lambda q, k, v: ef.block_sparse_attention_forward(
            q, k, v, layout, BLOCK),
        "linear (elu+1)": lambda q, k, v: ef.linear_attention_forward(q, k, v),
        "linear causal": lambda q, k, v: ef.linear_attention_forward(q, k, v, causal=True),
        f"Performer m={FEATURES}": lambda q, k, v: ef.performer_attention_forward(q, k, v, W),
        f"Linformer r={RANK}": lambda q, k, v: ef.linformer_attention_forward(
            q, k, v, projections),
        "exact flash (Numba)": lambda q, k, v: kernels.flash_attention_forward(q, k, v),
        f"sliding window w={WINDOW} (Numba)": lambda q, k, v: (
            ke.sliding_window_attention_forward(q, k, v, WINDOW)),
        "linear (Numba)": lambda q, k, v: ke.linear_attention_forward(q, k, v),
    }


def measure(op, q, k, v, repeats: int) -> tuple[float, float]:
    """(best wall time in s, peak traced memory in MiB) of op(q, k, v)."""
    op(q, k, v)                                                     # warm-up / JIT
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        op(q, k, v)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    op(q, k, v)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), peak / 2**20


def run_cost(lengths, exact_max: int, H: int = 2, D: int = 64, log=say) -> dict:
    rng = np.random.default_rng(0)
    rows = {}
    for T in lengths:
        q, k, v = (rng.standard_normal((1, H, T, D)).astype(np.float32) for _ in range(3))
        for name, op in cost_ops(T, D, rng).items():
            if name == "exact (NumPy)" and T > exact_max:
                continue
            t, mem = measure(op, q, k, v, repeats=3 if T <= 4096 else 1)
            row = rows.setdefault(name, {"T": [], "time_s": [], "peak_mib": []})
            for key, val in zip(("T", "time_s", "peak_mib"), (T, t, mem)):
                row[key].append(val)
            log(f"  T={T:6d} {name:32s} {1e3 * t:9.1f} ms  {mem:8.1f} MiB")
    for r in rows.values():                                         # slope of log t vs log T
        big = np.asarray(r["T"]) >= 1024
        fit = big if big.sum() >= 2 else slice(None)
        for key in ("time_s", "peak_mib"):
            r[f"{key}_slope"] = float(np.polyfit(np.log(np.asarray(r["T"])[fit]),
                                                 np.log(np.asarray(r[key])[fit]), 1)[0])
    return rows


# --- 2. approximation error on real vectors ---------------------------------------------------

def relative_error(approx: np.ndarray, exact: np.ndarray) -> float:
    """‖approx − exact‖_F / ‖exact‖_F."""
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def run_approximation(seeds: int = 3, first: int = 0) -> dict:
    """Relative error vs budget (keys, features or rank per query) for every variant."""
    (q, k, v), source = qkv_vectors(512)
    T = q.shape[-2]
    exact, _, _ = scaled_dot_product_attention_forward(q, k, v)
    err = lambda out: relative_error(out, exact)                    # noqa: E731
    windows, blocks = [2, 4, 8, 16, 32, 64, 128], [0, 1, 2, 4, 8]
    budgets = [8, 16, 32, 64, 128, 256]
    res = {"source": source, "T": T}
    res["sliding window"] = [(2 * w + 1, err(ef.sliding_window_attention_forward(q, k, v, w)[0]))
                             for w in windows]
    res["window + global [CLS]"] = [
        (2 * w + 2, err(ef.sliding_window_attention_forward(q, k, v, w, global_tokens=[0])[0]))
        for w in windows]
    nb = T // 16
    res["block-sparse b=16"] = [
        (16 * ef.block_layout(nb, nb, window=c).sum() / nb,
         err(ef.block_sparse_attention_forward(q, k, v, ef.block_layout(nb, nb, window=c), 16)[0]))
        for c in blocks]
    rngs = [np.random.default_rng(s) for s in range(first, first + seeds)]
    res["Performer (FAVOR+)"] = [(m, float(np.mean([err(ef.performer_attention_forward(
        q, k, v, ef.orthogonal_random_features(m, q.shape[-1], r))[0]) for r in rngs])))
        for m in budgets]
    res["Linformer (random E, F)"] = [(r_, float(np.mean([err(ef.linformer_attention_forward(
        q, k, v, ef.init_linformer_projections(r_, T, r))[0]) for r in rngs]))) for r_ in budgets]
    res["Linformer (mean-pool E, F)"] = [(r_, err(ef.linformer_attention_forward(
        q, k, v, ef.mean_pool_projections(r_, T))[0])) for r_ in budgets]
    logits = (q @ np.swapaxes(k, -1, -2)) / np.sqrt(q.shape[-1])
    res["logit_std"] = float(logits.std(axis=-1).mean())           # FAVOR+ variance grows with it
    res["linear (elu+1)"] = [(T, err(ef.linear_attention_forward(q, k, v)[0]))]
    return res


# --- driver -----------------------------------------------------------------------------------

def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` draws the random features and projections of the approximations and the
    recall task's parameters and batches; the cost measurement does not depend on it."""
    # NumPy on one BLAS thread (its batched matmuls were 25x slower with OpenBLAS threads
    # fighting over 2 shared cores); the Numba kernels still use all of Numba's threads.
    with one_blas_thread():
        return _run(out_dir, full, seed)


def _run(out_dir: Path, full: bool, seed: int = 0) -> list[Figure]:
    out = demo_dir(out_dir, NAME)
    lengths = [256, 512, 1024, 2048, 4096] + ([8192, 16384] if full else [])
    say(f"[{NAME}] 1. cost of one forward pass, float32, B=1, H=2, D=64")
    cost = run_cost(lengths, exact_max=8192 if full else 4096)
    say(f"[{NAME}] 2. approximation error vs budget")
    approx = run_approximation(first=seed)
    for name, pts in approx.items():
        if isinstance(pts, list):
            say(f"  {name:28s} " + "  ".join(f"{b:.0f}:{e:.3f}" for b, e in pts))
    T, steps = (128, 600) if full else (64, 250)
    single = recall.RecallConfig(T=T, steps=steps, seed=seed)
    multi = recall.RecallConfig(T=T, steps=steps, n_pairs=6, n_queries=4, seed=seed)
    window = T // 8
    figs = [plot_cost(cost, out_dir, "time_s"), plot_cost(cost, out_dir, "peak_mib"),
            plot_approximation(approx, out_dir)]
    metrics = {"full": full, "cost": cost, "approximation": approx}
    for key, cfg in (("recall", single), ("recall_multi_query", multi)):
        say(f"[{NAME}] 3. associative recall, T={T}, {cfg.n_queries} question(s), "
            f"{cfg.steps} Adam steps per variant")
        rec = run_recall(cfg, window)
        figs.append(plot_recall(rec, cfg, window, out_dir))
        metrics[key] = {name: {k: v for k, v in r.items() if k != "losses"}
                        if isinstance(r, dict) else r for name, r in rec.items()}
        metrics[f"{key}_config"] = vars(cfg) | {"window": window}
    metrics["recall_global_question"] = {
        "exact_by_construction": "a global token attends to every key, so with the question "
                                 "global its row — the only one the readout uses — is exact "
                                 "attention; its accuracy equals exact attention's by design",
        "row_max_abs_diff_vs_exact": global_row_gap(T, window)}
    write_json(out / "metrics.json", metrics)
    return figs


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
