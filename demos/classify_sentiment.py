"""Self-attention sentiment classifier (article §5.2): a 2-layer Transformer encoder reads
generated movie-review sentences and predicts one of 5 classes from its [CLS] token. Negators
flip, intensifiers scale and "but" favours its second clause; the test set holds unseen
(modifier, adjective) pairs. We measure whether heads specialise as §4.3.3 claims (role score
= attention from [CLS] to a word class ÷ that class's share of tokens; 1 = no preference) and
what removing each head costs, over several seeds."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attention_np.apps.sentiment import (SentimentConfig, ablate_head, init_sentiment_classifier,
                                           predict, role_scores, sentiment_loss)
from attention_np.nn.optim import Adam, clip_grad_norm
from attention_np.transformer import EncoderConfig
from demos._common import demo_dir, demo_main, one_blas_thread, save_figure, write_json
from demos._sentiment_data import CLASSES, make_splits, word_class

NAME = "classify_sentiment"
QUICK = {"n_train": 30000, "n_test": 2000, "steps": 4500, "seeds": (0,),
         "overfit_train": 400, "overfit_steps": 500}
FULL = {"n_train": 40000, "n_test": 4000, "steps": 6000, "seeds": (0, 1, 2),
        "overfit_train": 800, "overfit_steps": 1000}
ROLES = ["sentiment", "negator", "intensifier", "contrast"]
LR = 2e-3


def model_config(vocab_size: int, dropout=0.1, attn_dropout=0.0) -> SentimentConfig:
    encoder = EncoderConfig(d_model=64, num_heads=4, d_ff=128, num_layers=2, dropout=dropout,
                            attn_dropout=attn_dropout, activation="relu", norm_first=False)
    return SentimentConfig(vocab_size, len(CLASSES), 48, encoder)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Endless length-bucketed batches: sentences of similar length share a batch (little
    padding), buckets come in random order, membership is reshuffled every epoch."""
    while True:
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        for i in rng.permutation(len(chunks)):
            yield chunks[i]


def train_classifier(params, config, split, steps: int, lr: float = LR, batch_size: int = 64,
                     rng=None, weight_decay: float = 0.01, evaluate=None, eval_every: int = 0,
                     log=None):
    """AdamW with linear warm-up (first 10 %) and linear decay, gradients clipped to norm 1.
    Every ``eval_every`` steps ``evaluate(params) -> dict`` is recorded (and ``log``ged)."""
    rng = np.random.default_rng(0) if rng is None else rng
    opt = Adam(lr=lr, weight_decay=weight_decay)
    history = {"loss": [], "evals": []}
    warmup, start = max(1, steps // 10), time.perf_counter()
    for step, idx in zip(range(1, steps + 1), _batches(split.lengths, batch_size, rng)):
        opt.lr = lr * min(step / warmup, (steps - step + 1) / (steps - warmup + 1))
        width = int(split.lengths[idx].max())
        loss, grads, _ = sentiment_loss(split.ids[idx, :width], split.lengths[idx],
                                        split.labels[idx], params, config, rng, training=True)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        history["loss"].append(loss)
        if evaluate is not None and eval_every and (step % eval_every == 0 or step == steps):
            row = {"step": step, "loss": float(np.mean(history["loss"][-eval_every:])),
                   **evaluate(params)}
            history["evals"].append(row)
            if log:
                log("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items())
                    + f" ({time.perf_counter() - start:.0f} s)")
    return history


def accuracies(params, config, split) -> dict:
    """Accuracy on all sentences and on those containing a negator."""
    correct = predict(split.ids, split.lengths, params, config) == split.labels
    return {"accuracy": float(correct.mean()),
            "accuracy_negated": float(correct[split.negated].mean())}


def token_classes(split, vocab) -> np.ndarray:
    """(N, T) word class of every position ([CLS] and padding count as "other")."""
    table = np.array(["other", "other"] + [word_class(w) for w in vocab[2:]])
    return table[split.ids]


def analyse_heads(params, config, split, vocab) -> dict:
    """Role scores (query = [CLS]) and accuracy with each head removed, for every layer/head."""
    enc = config.encoder
    _, weights = predict(split.ids, split.lengths, params, config, return_weights=True)
    classes = token_classes(split, vocab)
    roles, ablation = {}, {}
    for l, w in enumerate(weights):
        scores = role_scores(w, classes, split.lengths, ROLES)             # (H, roles)
        for h in range(enc.num_heads):
            roles[f"L{l}H{h}"] = dict(zip(ROLES, np.round(scores[h], 3).tolist()))
            ablated = ablate_head(params, l, h, enc.num_heads)
            ablation[f"L{l}H{h}"] = accuracies(ablated, config, split)["accuracy"]
    return {"role_scores": roles, "head_ablation": ablation, "weights": weights}


def _log(line: str) -> None:
    print(line, flush=True)


def run_seed(seed: int, settings: dict, log=_log) -> dict:
    """Generate data, train, evaluate and analyse one seed."""
    train, test, vocab = make_splits(settings["n_train"], settings["n_test"], seed)
    config = model_config(len(vocab))
    rng = np.random.default_rng(seed)
    params = init_sentiment_classifier(config, rng)
    start = time.perf_counter()
    history = train_classifier(params, config, train, settings["steps"], rng=rng,
                               evaluate=lambda p: accuracies(p, config, test),
                               eval_every=max(1, settings["steps"] // 5), log=log)
    seconds = time.perf_counter() - start
    # the last evaluation ran at the final step on these parameters: accuracy on the test set
    final_accuracies = {k: v for k, v in history["evals"][-1].items() if k not in ("step", "loss")}
    result = {"seed": seed, "params": params, "config": config, "test": test, "vocab": vocab,
              "history": history, "train_seconds": seconds,
              "label_counts": np.bincount(train.labels, minlength=len(CLASSES)),
              **final_accuracies, **analyse_heads(params, config, test, vocab)}
    log(f"seed {seed}: test accuracy {result['accuracy']:.3f}, negated "
        f"{result['accuracy_negated']:.3f}, trained in {seconds:.0f} s")
    return result


def overfitting(seed: int, settings: dict, log=_log) -> dict:
    """Train on a small subset with and without regularisation (attention dropout 0.1,
    residual dropout 0.1, weight decay 0.1); record train and test accuracy as it goes."""
    train, test, vocab = make_splits(settings["overfit_train"], 1000, seed + 100)
    runs = {"no regularisation": (0.0, 0.0, 0.0),
            "attention dropout + dropout + weight decay": (0.1, 0.1, 0.1)}
    curves = {}
    for name, (attn_p, drop_p, decay) in runs.items():
        config = model_config(len(vocab), dropout=drop_p, attn_dropout=attn_p)
        rng = np.random.default_rng(seed)
        params = init_sentiment_classifier(config, rng)

        def evaluate(p, config=config):
            return {"train": accuracies(p, config, train)["accuracy"],
                    "test": accuracies(p, config, test)["accuracy"]}
        log(f"overfitting, {name}:")
        history = train_classifier(params, config, train, settings["overfit_steps"], rng=rng,
                                   weight_decay=decay, evaluate=evaluate,
                                   eval_every=max(1, settings["overfit_steps"] // 10), log=log)
        curves[name] = history["evals"]
    return curves


# --- figures ---------------------------------------------------------------------------------

def _head_names(num_layers: int, num_heads: int) -> list[str]:
    return [f"L{l}H{h}" for l in range(num_layers) for h in range(num_heads)]


def _example_indices(test) -> list[int]:
    """A short negated sentence with a degree word, and a short "but" sentence."""
    short = [i for i, s in enumerate(test.sentences) if len(s) <= 13]
    picks = [next(i for i in short if test.negated[i] and
                  any(word_class(w) == "intensifier" for w in test.sentences[i]))]
    picks.append(next(i for i in short if "but" in test.sentences[i] and i not in picks))
    return picks


def figure_examples(result, out_dir: Path) -> list:
    from attention_np.viz.static import plot_heads, plot_heatmap
    test, enc = result["test"], result["config"].encoder
    figures = []
    for k, i in enumerate(_example_indices(test)):
        n = int(test.lengths[i])
        tokens = ["[CLS]"] + test.sentences[i]
        attn = np.stack([w[i, :, :n, :n] for w in result["weights"]])          # (L, H, n, n)
        pred = predict(test.ids[i:i + 1], test.lengths[i:i + 1], result["params"],
                       result["config"])[0]
        label = f"label {CLASSES[test.labels[i]]}, predicted {CLASSES[pred]}"
        fig = plot_heads(attn, tokens, title=f"\"{' '.join(test.sentences[i])}\" ({label})")
        figures.append(save_figure(fig, out_dir, f"{NAME}/heads_{k}.png",
                                   "Every head's attention (rows = queries); row 0 is [CLS], "
                                   "the only row the classifier reads in the last layer.",
                                   f"example {k + 1}: all heads"))
        cls_rows = attn[:, :, 0, :].reshape(-1, n)                          # (L·H, n)
        fig = plot_heatmap(cls_rows, _head_names(enc.num_layers, enc.num_heads), tokens,
                           title=f"[CLS] attention per head\n({label})", annotate=True)
        fig.axes[0].set_ylabel("head")
        fig.axes[0].set_xlabel("token")
        figures.append(save_figure(fig, out_dir, f"{NAME}/cls_attention_{k}.png",
                                   "Where [CLS] looks, one row per head: heads that "
                                   "specialise light up on negators, degree words or adjectives.",
                                   f"example {k + 1}: [CLS] attention"))
    return figures


def figure_roles(results, out_dir: Path):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(3.4 * len(results) + 0.8, 4.2),
                             squeeze=False, constrained_layout=True)
    for ax, r in zip(axes[0], results):
        names = list(r["role_scores"])
        m = np.array([[r["role_scores"][h][c] for c in ROLES] for h in names])
        image = ax.imshow(np.log2(np.maximum(m, 1e-3)), cmap="RdBu_r", vmin=-3, vmax=3,
                          aspect="auto")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(ROLES)), ROLES, rotation=30, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(f"seed {r['seed']} (acc {r['accuracy']:.2f})", fontsize=10)
    fig.colorbar(image, ax=axes[0], shrink=0.8, label="log₂ role score (0 = no preference)")
    fig.suptitle("Attention from [CLS] to each word class ÷ that class's share of tokens")
    return save_figure(fig, out_dir, f"{NAME}/role_scores.png",
                       "Head × word-class role scores for every seed (number in the cell; "
                       "red = the head over-attends to that class, blue = avoids it).",
                       "head × word class")


def figure_ablation(results, out_dir: Path):
    import matplotlib.pyplot as plt
    names = list(results[0]["head_ablation"])
    fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        drop = [r["accuracy"] - r["head_ablation"][h] for h in names]
        ax.bar(np.arange(len(names)) + (k - (len(results) - 1) / 2) * width, drop, width,
               label=f"seed {r['seed']} (full model {r['accuracy']:.3f})")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("test accuracy lost")
    ax.set_title("Removing one head at a time (its rows of W_o set to 0)")
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, f"{NAME}/head_ablation.png",
                       "Accuracy lost when each head is removed: the heads the classifier "
                       "relies on, which need not be the ones with the clearest role.",
                       "head ablation")


def figure_overfitting(curves: dict, settings: dict, out_dir: Path):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True, constrained_layout=True)
    for ax, (name, rows) in zip(axes, curves.items()):
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["train"] for r in rows], "o-", label="train")
        ax.plot(steps, [r["test"] for r in rows], "s-", label="test (unseen pairs)")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    fig.suptitle(f"Overfitting (§8.2.3): {settings['overfit_train']} training sentences")
    return save_figure(fig, out_dir, f"{NAME}/overfitting.png",
                       "Train vs test accuracy on a small training set, without and with "
                       "regularisation: the gap between the curves is the overfitting.",
                       "overfitting")


# --- the demo --------------------------------------------------------------------------------

def _summary(r) -> dict:
    best = {c: max(r["role_scores"].items(), key=lambda kv: kv[1][c]) for c in ROLES}
    return {"seed": r["seed"], "test_accuracy": r["accuracy"],
            "test_accuracy_negated": r["accuracy_negated"], "train_seconds": r["train_seconds"],
            "role_scores": r["role_scores"], "head_ablation": r["head_ablation"],
            "best_head": {c: {"head": h, "score": s[c]} for c, (h, s) in best.items()},
            "train_label_counts": r["label_counts"],
            "curve": r["history"]["evals"]}


def run(out_dir, full: bool = False) -> list:
    settings = FULL if full else QUICK
    out = demo_dir(out_dir, NAME)
    with one_blas_thread():
        results = [run_seed(seed, settings) for seed in settings["seeds"]]
        curves = overfitting(0, settings)
    seeds = [_summary(r) for r in results]
    main = seeds[0]
    metrics = {"test_accuracy": main["test_accuracy"],
               "test_accuracy_negated": main["test_accuracy_negated"],
               "role_scores": main["role_scores"], "head_ablation": main["head_ablation"],
               "seeds": seeds, "overfitting": curves,
               "settings": {**settings, "encoder": vars(results[0]["config"].encoder).copy()}}
    write_json(out / "metrics.json", metrics)
    figures = figure_examples(results[0], out_dir)
    figures += [figure_roles(results, out_dir), figure_ablation(results, out_dir),
                figure_overfitting(curves, settings, out_dir)]
    return figures


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
