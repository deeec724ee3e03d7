"""Overfitting, measured (article §8.2.3): the sentiment classifier of demos.classify_sentiment
(at half width) trained on 4-5 training-set sizes, with 1, 2 or 4 heads and with or without
dropout on the attention weights, every run for the same number of steps. For each run: train
and test accuracy (test: fresh sentences from the training distribution, and sentences with
held-out modifier-adjective pairs) and the entropy of the attention rows on training vs test
sentences, over two or three seeds. One function, measure_overfitting, computes all of it."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from attention_np.apps.sentiment import SentimentConfig, init_sentiment_classifier, predict
from attention_np.core import padding_mask
from attention_np.transformer import EncoderConfig
from attention_np.viz.analysis import head_entropy
from demos._common import (demo_dir, demo_main, demo_workers, one_blas_thread, save_figure,
                           worker_pool, write_json)
from demos._progress import progress, say
from demos._sentiment_data import CLASSES, make_splits, make_validation
from demos.classify_sentiment import train_classifier

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "过拟合的实测（原文 §8.2.3）：把 demos.classify_sentiment 的情感分类器（宽度减半）"
    "在 4～5 种大小的训练集上训练，分别用 1、2、4 个注意力头（attention head），"
    "以及对注意力权重加或不加 dropout，每次运行的训练步数都相同。每次运行记录训练准确率和"
    "测试准确率（测试集有两种：与训练同分布的新句子，以及含有留出的修饰词–形容词组合的句子），"
    "以及注意力行在训练句子和测试句子上的熵；共用两到三个随机种子。"
    "所有数字都由同一个函数 measure_overfitting 计算。"
)

NAME = "overfitting"
# (heads, attention-dropout probability) of each model; d_model is the same for all of them,
# so more heads means narrower heads (Dh = d / H) and the same number of parameters
VARIANTS = ((1, 0.0), (2, 0.0), (4, 0.0), (4, 0.1), (4, 0.3))
QUICK = {"sizes": (250, 1000, 4000, 16000), "steps": 1000, "seeds": (0, 1),
         "variants": VARIANTS, "n_test": 1000}
FULL = {"sizes": (250, 1000, 4000, 16000, 32000), "steps": 3000, "seeds": (0, 1, 2),
        "variants": VARIANTS, "n_test": 2000}
# the site's build-time run (docs/applications/overfitting.md): 24 runs, ~100 CPU s, i.e.
# ~50 s on two idle cores
PAGE = {"sizes": (150, 300, 600, 1200), "steps": 600, "seeds": (0, 1),
        "variants": ((1, 0.0), (4, 0.0), (4, 0.3)), "n_test": 500}
ENTROPY_SENTENCES = 500          # sentences of each split whose attention entropy is averaged
TRAIN_EVAL_SENTENCES = 2000      # training accuracy: on the first 2000 training sentences
BATCH_SIZE = 32


def model_config(vocab_size: int, num_heads: int, attn_dropout: float) -> SentimentConfig:
    """The classify_sentiment encoder (2 post-LN layers, ReLU) at half width: d 32, d_ff 64.
    Attention dropout is the only regulariser: no residual dropout, no weight decay."""
    encoder = EncoderConfig(d_model=32, num_heads=num_heads, d_ff=64, num_layers=2, dropout=0.0,
                            attn_dropout=attn_dropout, activation="relu", norm_first=False)
    return SentimentConfig(vocab_size, len(CLASSES), 48, encoder)


def attention_entropy(weights, lengths, relative: bool = False) -> np.ndarray:
    """Mean entropy of the attention rows per layer and head, in nats:

        H(α_i) = − Σ_j α_ij log α_ij      over the real keys j of a real query row i,

    averaged over the rows of a sentence, then over the sentences. Uniform attention over a
    sentence of n tokens gives log n, a row on a single key 0; with ``relative`` each
    sentence's mean is divided by its log n (1 = uniform), so that sets whose sentences differ
    in length compare. weights: one (N, H, T, T) array per layer (padded rows and columns hold
    zeros); lengths (N,) ≥ 2 → (L, H)."""
    lengths = np.asarray(lengths)
    real = padding_mask(lengths, weights[0].shape[-1])                    # (N, T) True = real
    pairs = real[:, None, :, None] & real[:, None, None, :]               # (N, 1, T, T)
    scale = np.log(lengths)[:, None] if relative else 1.0                 # (N, 1)
    return np.stack([(head_entropy(w, pairs) / scale).mean(axis=0) for w in weights])  # (L, H)


def _subset(split, n: int):
    """The first ``n`` sentences of a split, trimmed to their longest."""
    lengths = split.lengths[:n]
    return replace(split, ids=split.ids[:n, :int(lengths.max())], lengths=lengths,
                   labels=split.labels[:n], sentences=split.sentences[:n])


def _accuracy_and_entropy(params, config, split) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy on the first TRAIN_EVAL_SENTENCES sentences; the attention entropy, in nats
    and relative to uniform, (L, H) each, on the first ENTROPY_SENTENCES."""
    split = _subset(split, min(TRAIN_EVAL_SENTENCES, len(split)))
    correct = predict(split.ids, split.lengths, params, config) == split.labels
    sample = _subset(split, min(ENTROPY_SENTENCES, len(split)))
    _, weights = predict(sample.ids, sample.lengths, params, config, return_weights=True)
    return (float(correct.mean()), attention_entropy(weights, sample.lengths),
            attention_entropy(weights, sample.lengths, relative=True))


def train_one(task: dict) -> dict:
    """One run: train a model with ``task["heads"]`` heads and attention dropout
    ``task["attn_dropout"]`` on ``task["train"]`` for ``task["steps"]`` steps, then measure
    accuracy and attention entropy. Runs in a worker process: everything comes in ``task``."""
    train, iid, held = task["train"], task["iid_test"], task["heldout_test"]
    config = model_config(task["vocab_size"], task["heads"], task["attn_dropout"])
    rng = np.random.default_rng(task["seed"])
    params = init_sentiment_classifier(config, rng)
    start = time.process_time()
    with one_blas_thread():
        history = train_classifier(params, config, train, task["steps"], rng=rng,
                                   weight_decay=0.0, batch_size=BATCH_SIZE)
        train_acc, train_entropy, train_relative = _accuracy_and_entropy(params, config, train)
        test_acc, test_entropy, test_relative = _accuracy_and_entropy(params, config, iid)
        heldout_acc = float(np.mean(predict(held.ids, held.lengths, params, config)
                                    == held.labels))
    n_train = len(train)
    seen = {tuple(words) for words in train.sentences}
    return {"seed": task["seed"], "heads": task["heads"], "attn_dropout": task["attn_dropout"],
            "n_train": n_train, "train_steps": len(history["loss"]),
            "final_loss": float(np.mean(history["loss"][-20:])),
            "train_accuracy": train_acc, "test_accuracy": test_acc,
            "heldout_pair_accuracy": heldout_acc, "gap": train_acc - test_acc,
            "test_seen_in_training": float(np.mean([tuple(w) in seen for w in iid.sentences])),
            # mean over layers and heads, and per layer (mean over heads)
            "entropy_train": float(train_entropy.mean()),
            "entropy_test": float(test_entropy.mean()),
            "entropy_train_per_layer": train_entropy.mean(axis=1).tolist(),
            "entropy_test_per_layer": test_entropy.mean(axis=1).tolist(),
            "relative_entropy_train": float(train_relative.mean()),
            "relative_entropy_test": float(test_relative.mean()),
            "cpu_seconds": time.process_time() - start}


def _run_tasks(tasks: list, workers: int, log) -> list:
    bar = progress(len(tasks), "  runs", unit="run", enabled=log is not None)
    results = []
    with worker_pool(workers) as pool:
        for result in pool.map(train_one, tasks):
            results.append(result)
            bar.update()
    bar.close()
    return results


def _variant_name(heads: int, attn_dropout: float) -> str:
    return f"{heads} head{'s' if heads > 1 else ''}, attention dropout {attn_dropout:g}"


def summarise(runs: list, variants, sizes, seeds) -> dict:
    """Per variant and size: the mean over seeds of every measure, and the min and max of test
    accuracy; per remedy and size: the change in test accuracy against 4 heads without dropout,
    per seed (paired: same data, same initial seed) and its mean."""
    def pick(h, p, n):
        return [r for r in runs if r["heads"] == h and r["attn_dropout"] == p and r["n_train"] == n]
    keys = ("train_accuracy", "test_accuracy", "heldout_pair_accuracy", "gap",
            "test_seen_in_training", "entropy_train",
            "entropy_test", "relative_entropy_train", "relative_entropy_test")
    table = {}
    for h, p in variants:
        table[_variant_name(h, p)] = {str(n): {
            **{k: float(np.mean([r[k] for r in pick(h, p, n)])) for k in keys},
            "test_accuracy_min": float(min(r["test_accuracy"] for r in pick(h, p, n))),
            "test_accuracy_max": float(max(r["test_accuracy"] for r in pick(h, p, n)))}
            for n in sizes}
    reference = (4, 0.0) if (4, 0.0) in variants else variants[0]
    effects = {}
    for h, p in variants:
        if (h, p) == reference:
            continue
        per_size = {}
        for n in sizes:
            base = {r["seed"]: r["test_accuracy"] for r in pick(*reference, n)}
            diffs = [r["test_accuracy"] - base[r["seed"]] for r in pick(h, p, n)]
            per_size[str(n)] = {"mean": float(np.mean(diffs)), "per_seed": diffs}
        effects[_variant_name(h, p)] = per_size
    return {"table": table, "effects_vs": _variant_name(*reference), "effects": effects}


def measure_overfitting(sizes=QUICK["sizes"], steps: int = QUICK["steps"], seeds=QUICK["seeds"],
                        variants=VARIANTS, n_test: int = QUICK["n_test"], workers: int = 1,
                        log=say) -> dict:
    """Train every (heads, attention dropout) variant on every training-set size, for every
    seed, all for ``steps`` steps of 32 sentences, and measure each model.

    For seed s the training sentences are one stream (make_splits(max(sizes), …, s)) and each
    size takes its first n: the sets are nested, and every variant sees the same sentences.
    The test sets depend on the seed only: fresh sentences from the training distribution
    (make_validation) and sentences that each hold a held-out modifier-adjective pair.
    Returns a plain dict: {"settings", "runs": one dict per run, "summary"} (see summarise)."""
    sizes, seeds = [int(n) for n in sizes], [int(s) for s in seeds]
    variants = [(int(h), float(p)) for h, p in variants]
    if not sizes or not seeds or not variants or steps < 1:
        raise ValueError(f"sizes, seeds and variants must be non-empty and steps ≥ 1, got "
                         f"sizes={sizes}, seeds={seeds}, variants={variants}, steps={steps}")
    tasks = []
    for seed in seeds:
        train, _, vocab = make_splits(max(sizes), 1, seed)
        _, heldout, _ = make_splits(1, n_test, seed)          # the same test set for any sizes
        iid = make_validation(n_test, seed)
        for n in sorted(sizes, reverse=True):                 # the longest evaluations first
            for h, p in variants:
                tasks.append({"seed": seed, "heads": h, "attn_dropout": p, "steps": int(steps),
                              "train": _subset(train, n), "iid_test": iid,
                              "heldout_test": heldout, "vocab_size": len(vocab)})
    if log:
        log(f"{len(tasks)} runs of {steps} steps: sizes {sizes}, seeds {seeds}, "
            f"{len(variants)} variants")
    start = time.perf_counter()
    runs = _run_tasks(tasks, workers, log)
    runs.sort(key=lambda r: (r["seed"], r["heads"], r["attn_dropout"], r["n_train"]))
    return {"settings": {"sizes": sizes, "steps": int(steps), "seeds": seeds,
                         "variants": [list(v) for v in variants], "n_test": int(n_test),
                         "batch_size": BATCH_SIZE, "entropy_sentences": ENTROPY_SENTENCES,
                         "encoder": vars(model_config(len(vocab), 4, 0.0).encoder).copy()},
            "runs": runs, "summary": summarise(runs, variants, sizes, seeds),
            "wall_seconds": time.perf_counter() - start,
            "cpu_seconds": float(sum(r["cpu_seconds"] for r in runs))}


# --- the figure ---------------------------------------------------------------------------

def figure(result: dict, out_dir, relpath: str = f"{NAME}/curves.png"):
    """Three panels over the training-set size (log axis): train (dashed) and test (solid)
    accuracy per variant; the held-out-pair accuracy; attention entropy on train vs test."""
    import matplotlib.pyplot as plt
    table, sizes = result["summary"]["table"], result["settings"]["sizes"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(table)))
    for colour, (name, rows) in zip(colours, table.items()):
        get = lambda k: [rows[str(n)][k] for n in sizes]                 # noqa: E731
        axes[0].plot(sizes, get("train_accuracy"), "--", color=colour)
        axes[0].plot(sizes, get("test_accuracy"), "o-", color=colour, label=name)
        axes[0].fill_between(sizes, get("test_accuracy_min"), get("test_accuracy_max"),
                             color=colour, alpha=0.15)
        axes[1].plot(sizes, get("heldout_pair_accuracy"), "o-", color=colour, label=name)
        axes[2].plot(sizes, get("relative_entropy_train"), "--", color=colour)
        axes[2].plot(sizes, get("relative_entropy_test"), "o-", color=colour, label=name)
    titles = ["accuracy: train (dashed), test (solid; band = seed range)",
              "accuracy on held-out modifier-adjective pairs",
              "attention entropy / log n (1 = uniform): train (dashed), test (solid)"]
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xlabel("training sentences")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].axhline(1 / len(CLASSES), color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"sentiment classifier, {result['settings']['steps']} steps for every run, "
                 f"seeds {result['settings']['seeds']}", fontsize=10)
    return save_figure(
        fig, out_dir, relpath,
        "Left: train (dashed) and test (solid) accuracy against the number of training "
        "sentences, every run the same number of steps; the gap between a dashed and a solid "
        "line of one colour is overfitting. Middle: accuracy on sentences with modifier-"
        "adjective pairs never seen in training. Right: mean entropy of the attention rows on "
        "training and on test sentences, divided by log n (n tokens; 1 = uniform attention).",
        "Overfitting against training-set size, heads and attention dropout",
        caption_zh="左：训练准确率（虚线）和测试准确率（实线）随训练句子数的变化，每次运行的"
                   "训练步数相同；同一颜色的虚线与实线之间的差距就是过拟合。中：含有训练中从未"
                   "出现的修饰词–形容词组合的句子上的准确率。右：注意力行在训练句子和测试句子上"
                   "的平均熵除以 log n（n 为词元数；1 表示均匀注意力）。",
        title_zh="过拟合与训练集大小、注意力头数和注意力 dropout 的关系")


# --- what the numbers say -----------------------------------------------------------------

def verdict(per_seed, floor: float = 0.01) -> str:
    """"helped" / "hurt" when every seed's paired difference d_s has the same sign and the mean
    is at least ``floor`` (one percentage point) and at least the disagreement between the
    seeds, max d − min d (for two seeds: a t-statistic ≥ 2); otherwise "noise"; "one seed" when
    there is only one. A rough screen, not a significance test."""
    d = np.asarray(per_seed, dtype=float)
    if len(d) < 2:
        return "one seed"
    if abs(d.mean()) < max(floor, d.max() - d.min()) or not (np.all(d > 0) or np.all(d < 0)):
        return "noise"
    return "helped" if d.mean() > 0 else "hurt"


VERDICT_WORDS = {"en": {"helped": "helped", "hurt": "hurt", "noise": "within seed noise",
                        "one seed": "one seed: noise unknown"},
                 "zh": {"helped": "有帮助", "hurt": "有害", "noise": "在随机种子的波动之内",
                        "one seed": "只有一个随机种子，无法判断波动"}}


def remedy_lines(result: dict, lang: str = "en") -> list[str]:
    """One sentence per variant: its change in test accuracy against the reference at every
    size, and whether all seeds agree on the sign (the verdict)."""
    summary, lines = result["summary"], []
    words = VERDICT_WORDS[lang]
    for name, per_size in summary["effects"].items():
        open_, close = ("（", "）") if lang == "zh" else (" (", ")")
        parts = [f"{e['mean']:+.3f}{open_}{words[verdict(e['per_seed'])]}{close}"
                 for e in per_size.values()]
        sizes = list(per_size)
        if lang == "zh":
            heads, p = name.split(", attention dropout ")
            label = f"{heads.split()[0]} 个头、注意力 dropout {p}"
            lines.append(f"{label}：相对 4 个头、无 dropout，测试准确率在 "
                         + "、".join(f"{n} 句时 {t}" for n, t in zip(sizes, parts)) + "。")
        else:
            lines.append(f"{name}: test accuracy against {summary['effects_vs']}: "
                         + ", ".join(f"{t} at {n} sentences" for n, t in zip(sizes, parts)) + ".")
    return lines


def headline(result: dict) -> dict:
    """The numbers the page's summary stands on: the largest train-test gap (mean over seeds);
    per variant, the largest change in test accuracy against the reference at any size; the
    largest train-vs-test difference in H/log n of any run, and the largest spread of test
    H/log n between the variants at one size."""
    table, effects = result["summary"]["table"], result["summary"]["effects"]
    gaps = [(r["gap"], name, int(n)) for name, rows in table.items() for n, r in rows.items()]
    gap, gap_model, gap_size = max(gaps)
    sizes = result["settings"]["sizes"]
    spread = max(max(rows[str(n)]["relative_entropy_test"] for rows in table.values())
                 - min(rows[str(n)]["relative_entropy_test"] for rows in table.values())
                 for n in sizes)
    return {"largest_gap": gap, "largest_gap_model": gap_model, "largest_gap_size": gap_size,
            "largest_change": {name: max((e["mean"] for e in per_size.values()), key=abs)
                               for name, per_size in effects.items()},
            "entropy_train_test_difference": max(abs(r["relative_entropy_train"]
                                                     - r["relative_entropy_test"])
                                                 for r in result["runs"]),
            "entropy_spread_between_models": spread}


# --- the demo -----------------------------------------------------------------------------

def report_lines(result: dict) -> list[str]:
    """What the run measured, as text: the table, then each remedy's effect."""
    summary, lines = result["summary"], []
    for name, rows in summary["table"].items():
        lines.append(name + ":")
        for n, r in rows.items():
            lines.append(f"  n={n:>6}: train {r['train_accuracy']:.3f}, test "
                         f"{r['test_accuracy']:.3f} ({r['test_accuracy_min']:.3f}-"
                         f"{r['test_accuracy_max']:.3f}), held-out pairs "
                         f"{r['heldout_pair_accuracy']:.3f}; entropy / log n train "
                         f"{r['relative_entropy_train']:.3f} / test "
                         f"{r['relative_entropy_test']:.3f}")
    lines.append(f"change in test accuracy against {summary['effects_vs']}:")
    for name, per_size in summary["effects"].items():
        lines.append(f"  {name}: " + ", ".join(
            f"n={n} {e['mean']:+.3f} [{' '.join(f'{d:+.3f}' for d in e['per_seed'])}]"
            for n, e in per_size.items()))
    return lines


def run(out_dir, full: bool = False, seed: int = 0) -> list:
    """Quick: 4 sizes × 5 variants × 2 seeds, 1000 steps each, in two worker processes
    (:func:`demos._common.demo_workers`).
    ``seed`` s runs the seeds 2s, 2s + 1 (3s … 3s + 2 in full mode)."""
    settings = FULL if full else QUICK
    k = len(settings["seeds"])
    seeds = [k * seed + i for i in range(k)]
    out = demo_dir(out_dir, NAME)
    result = measure_overfitting(settings["sizes"], settings["steps"], seeds,
                                 settings["variants"], settings["n_test"], workers=demo_workers())
    for line in report_lines(result):
        say(line)
    say(f"{len(result['runs'])} runs in {result['wall_seconds']:.0f} s "
        f"({result['cpu_seconds']:.0f} CPU s)")
    write_json(out / "metrics.json", {**result, "headline": headline(result)})
    return [figure(result, out_dir)]


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
