"""Pointer Networks (Vinyals, Fortunato & Jaitly, 2015) sort numbers by pointing at them: the
attention weights over the inputs are the output. Trained on 2–10 numbers and tested on 5, 10,
15 and 20, the pointer keeps sorting longer inputs; a seq2seq decoder with attention that emits
values from a fixed vocabulary, trained for the same steps, falls behind as n grows."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from attention_np.apps.pointer import (MODELS, PointerConfig, init_pointer_model, loss_and_grads,
                                       sort_greedy)
from attention_np.nn.optim import Adam, clip_grad_norm
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, save_figure, write_json
from demos._progress import progress, say

NAME = "pointer_sort"
SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "指针网络（Pointer Networks，Vinyals、Fortunato 与 Jaitly，2015）靠“指向”输入来给数字排序："
    "对输入的注意力权重本身就是输出。模型只在 2–10 个数上训练，在 5、10、15、20 个数上测试，"
    "指针网络在更长的输入上照样能排好；同样训练步数、从固定词表中输出数值的带注意力 seq2seq "
    "解码器，则随着 n 变大越来越落后。"
)

TEST_LENGTHS = (5, 10, 15, 20)


@dataclass(frozen=True)
class Recipe:
    """Training: ``steps`` batches of ``batch`` rows, each batch of one length n drawn from
    ``lengths``; Adam with a linear warm-up and decay, gradients clipped at 1."""
    steps: int = 4000
    batch: int = 32
    lengths: tuple = (2, 10)          # n is drawn per batch from this range (both ends)
    lr: float = 3e-3
    warmup: int = 100
    test_rows: int = 500              # per test length


# The LSTMs run in NumPy: on these short sequences (n ≤ 10, 32 rows) the fused Numba scans
# (backend="numba") made a training step slower, 12–15 ms against 9.4 (AMD EPYC family 26
# model 2, one thread, interleaved), and the demo 51 → 66–77 s.
MODEL = PointerConfig(vocab=100, embed=32, hidden=64, attn=64)
QUICK = FULL = Recipe()
SEEDS = {False: (0,), True: (0, 1, 2)}        # the full run checks the targets on three seeds


def random_rows(rng: np.random.Generator, rows: int, n: int, vocab: int) -> np.ndarray:
    """(rows, n) distinct integers from [0, vocab) per row, in random order."""
    return np.argsort(rng.random((rows, vocab)), axis=1)[:, :n].astype(np.int64)


def train(model: str, recipe: Recipe, seed: int, config: PointerConfig = MODEL):
    """Train one model from seed ``seed`` → (config, params, loss per step)."""
    cfg = replace(config, model=model)
    rng = np.random.default_rng(seed)
    params, opt, losses = init_pointer_model(cfg, rng), Adam(recipe.lr), []
    lo, hi = recipe.lengths
    with progress(recipe.steps, f"  {model} (seed {seed})", every=max(1, recipe.steps // 5)) as bar:
        for step in range(recipe.steps):
            opt.lr = (recipe.lr * min(1.0, (step + 1) / recipe.warmup)
                      * (1 - 0.9 * step / recipe.steps))
            n = int(rng.integers(lo, hi + 1))
            loss, grads = loss_and_grads(params, cfg, random_rows(rng, recipe.batch, n, cfg.vocab))
            clip_grad_norm(grads, 1.0)
            opt.step(params, grads)
            losses.append(loss)
            bar.set_postfix(loss=loss)
            bar.update()
    return cfg, params, losses


def sequence_accuracy(params, cfg: PointerConfig, rows: np.ndarray) -> float:
    """Share of rows whose greedy output is exactly the sorted row."""
    out, _ = sort_greedy(rows, params, cfg)
    return float(np.mean(np.all(out == np.sort(rows, axis=1), axis=1)))


def evaluate(params, cfg: PointerConfig, test: dict) -> dict:
    """{"5": accuracy, …} on the test rows of each length."""
    return {str(n): sequence_accuracy(params, cfg, rows) for n, rows in test.items()}


# ------------------------------------------------------------------------------- figures
def attention_figure(params, cfg: PointerConfig, row: np.ndarray, trained_max: int,
                     out: Path) -> Figure:
    """The pointer's distribution at every output step over the inputs of one row longer
    than any seen in training; the right input of each step circled."""
    import matplotlib.pyplot as plt
    from attention_np.viz import plot_heatmap
    outputs, weights = sort_greedy(row[None], params, cfg)
    n = len(row)
    fig, ax = plt.subplots(figsize=(8.2, 7), layout="constrained")
    plot_heatmap(weights[0], [str(v) for v in outputs[0]], [str(v) for v in row], ax=ax,
                 cmap="magma", vmax=1.0, annotate=False,
                 title=f"pointer attention on n = {n} numbers (trained on n ≤ {trained_max})")
    order = np.argsort(row, kind="stable")
    ax.plot(order, np.arange(n), "o", mfc="none", mec="tab:cyan", ms=9, mew=1.0)
    ax.set_xlabel("input (in the order given)")
    ax.set_ylabel("output step (the number pointed at)")
    return save_figure(fig, out, f"{NAME}/pointer_attention.png",
                       f"The pointer network's attention while it sorts {n} numbers, longer than "
                       f"any input it was trained on (n ≤ {trained_max}). Row i is the "
                       "distribution over the inputs at output step i, and it is the output: "
                       "the number pointed at is printed on the left. Circles mark the input "
                       "that comes next in sorted order.",
                       "Pointer attention on a longer input",
                       caption_zh=f"指针网络给 {n} 个数排序时的注意力，输入比训练时见过的都长"
                                  f"（训练时 n ≤ {trained_max}）。第 i 行是第 i 个输出步在各输入上的"
                                  "分布，它本身就是输出：左侧标出被指向的数。圆圈标出按顺序下一个"
                                  "应当取出的输入。",
                       title_zh="更长输入上的指针注意力")


def accuracy_figure(metrics: dict, trained_max: int, out: Path) -> Figure:
    """Sequence accuracy against n for both models."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4), layout="constrained")
    ns = [int(n) for n in metrics["pointer"]["sequence_accuracy"]]
    for model, style in (("pointer", "o-"), ("seq2seq", "s--")):
        acc = metrics[model]["sequence_accuracy"]
        ax.plot(ns, [acc[str(n)] for n in ns], style, label=model)
    ax.axvspan(min(ns) - 1, trained_max + 0.5, color="grey", alpha=0.12,
               label=f"trained lengths (n ≤ {trained_max})")
    ax.set_xlabel("n (numbers to sort)")
    ax.set_ylabel("sequence accuracy (all n right)")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ns)
    ax.legend(loc="lower left")
    steps = metrics["pointer"]["train_steps"]
    return save_figure(fig, out, f"{NAME}/accuracy.png",
                       f"Share of test rows sorted exactly, by length, after {steps} training "
                       "steps each. The pointer picks among its inputs, so a longer input only "
                       "means more to pick from; the seq2seq decoder must produce each value "
                       "from its vocabulary and loses track on lengths it never saw.",
                       "Sorting accuracy against length",
                       caption_zh=f"各长度下完全排对的测试行所占比例，两个模型各训练 {steps} 步。"
                                  "指针网络只在输入中挑选，输入更长只意味着可选的更多；seq2seq "
                                  "解码器必须从词表中生成每个数值，在没见过的长度上就跟不上了。",
                       title_zh="排序准确率与长度")


# ------------------------------------------------------------------------------- run
def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    with one_blas_thread():
        return _run(Path(out_dir), full, seed)


def _run(out_dir: Path, full: bool, seed: int) -> list[Figure]:
    out = demo_dir(out_dir, NAME)
    start, cpu_start = time.perf_counter(), time.process_time()
    recipe = FULL if full else QUICK
    seeds = tuple(s + seed for s in SEEDS[full])
    say(f"pointer sort: pointer vs seq2seq, {recipe.steps} steps of {recipe.batch} rows "
        f"(n = {recipe.lengths[0]}–{recipe.lengths[1]}) each, seeds {seeds}")
    test_rng = np.random.default_rng(1000)       # the same test rows for every model and seed
    test = {n: random_rows(test_rng, recipe.test_rows, n, MODEL.vocab) for n in TEST_LENGTHS}
    per_seed, kept = {m: [] for m in MODELS}, {}
    for s in seeds:
        for model in MODELS:
            cfg, params, losses = train(model, recipe, s)
            per_seed[model].append(evaluate(params, cfg, test))
            if s == seeds[0]:
                kept[model] = (cfg, params, losses)
    metrics = {}
    for model in MODELS:
        runs = per_seed[model]
        metrics[model] = {"train_steps": recipe.steps,
                          "sequence_accuracy": {str(n): float(np.mean([r[str(n)] for r in runs]))
                                                for n in TEST_LENGTHS},
                          "sequence_accuracy_per_seed": runs,
                          "final_loss": float(np.mean(kept[model][2][-100:]))}
    acc = metrics["pointer"]["sequence_accuracy"]
    metrics["targets_met"] = {"pointer n=10 >= 0.9": acc["10"] >= 0.9,
                              "pointer n=15 >= 0.5": acc["15"] >= 0.5}
    metrics.update(seeds=list(seeds), model=asdict(MODEL), recipe=asdict(recipe),
                   seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start)
    write_json(out / "metrics.json", metrics)
    for model in MODELS:
        a = metrics[model]["sequence_accuracy"]
        say(f"  {model:8s} sequence accuracy " + ", ".join(f"n={n}: {a[n]:.3f}" for n in a))
    cfg, params, _ = kept["pointer"]
    long_row = random_rows(np.random.default_rng(7), 1, 15, MODEL.vocab)[0]
    return [attention_figure(params, cfg, long_row, recipe.lengths[1], out_dir),
            accuracy_figure(metrics, recipe.lengths[1], out_dir)]


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
