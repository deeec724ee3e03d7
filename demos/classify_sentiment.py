"""Self-attention sentiment classifier (article §5.2): a 2-layer Transformer encoder reads
generated movie-review sentences and predicts one of 5 classes from its [CLS] token. Negators
flip, intensifiers scale and "but" favours its second clause; the test set holds unseen
(modifier, adjective) pairs. We measure whether heads specialise as §4.3.3 claims (role score
= attention from [CLS] to a word class ÷ that class's share of tokens; 1 = no preference) and
what removing each head costs, over several seeds."""
from __future__ import annotations

import time

import numpy as np

from attention_np.apps.sentiment import (SentimentConfig, ablate_head, init_sentiment_classifier,
                                         loss_and_grads, predict, role_scores)
from attention_np.nn.optim import Adam, clip_grad_norm
from attention_np.transformer import EncoderConfig
from demos._common import demo_dir, demo_main, one_blas_thread, write_json
from demos._sentiment_data import CLASSES, make_splits, word_class
from demos._sentiment_figures import all_figures
from demos._progress import progress, say

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
    bar = progress(steps, "  training", every=eval_every or steps, enabled=log is not None)
    for step, idx in zip(range(1, steps + 1), _batches(split.lengths, batch_size, rng)):
        opt.lr = lr * min(step / warmup, (steps - step + 1) / (steps - warmup + 1))
        width = int(split.lengths[idx].max())
        loss, grads, _ = loss_and_grads(params, config, split.ids[idx, :width],
                                        split.lengths[idx], split.labels[idx], rng,
                                        training=True)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads)
        history["loss"].append(loss)
        bar.set_postfix(loss=float(np.mean(history["loss"][-50:])))
        bar.update()
        if evaluate is not None and eval_every and (step % eval_every == 0 or step == steps):
            row = {"step": step, "loss": float(np.mean(history["loss"][-eval_every:])),
                   **evaluate(params)}
            history["evals"].append(row)
            if log:
                log("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items())
                    + f" ({time.perf_counter() - start:.0f} s)")
    bar.close()
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
    say(line)                              # prints above the progress bar


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
    return all_figures(results, curves, settings, out_dir, NAME)


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
