"""Training and scoring of the sentiment classifiers (the Transformer and the mean-pooling
baseline share both): length-bucketed batches, AdamW with warm-up and linear decay."""
from __future__ import annotations

import time

import numpy as np

from attention_np.apps.sentiment import loss_and_grads, predict
from attention_np.nn.optim import Adam, clip_grad_norm
from demos._progress import progress

LR = 2e-3


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Endless length-bucketed batches: sentences of similar length share a batch (little
    padding), buckets come in random order, membership is reshuffled every epoch."""
    while True:
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        for i in rng.permutation(len(chunks)):
            yield chunks[i]


def _log_row(log, row: dict, seconds: float) -> None:
    log("  " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in row.items()) + f" ({seconds:.0f} s)")


def train_classifier(params, config, split, steps: int, lr: float = LR, batch_size: int = 64,
                     rng=None, weight_decay: float = 0.01, evaluate=None, eval_every: int = 0,
                     log=None):
    """AdamW with linear warm-up (first 10 %) and linear decay, gradients clipped to norm 1.
    Every ``eval_every`` steps ``evaluate(params) -> dict`` is recorded (and ``log``ged).
    Returns the history: the loss of every step and the evaluations."""
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
                _log_row(log, row, time.perf_counter() - start)
    bar.close()
    return history


def accuracies(params, config, split) -> dict:
    """Accuracy on all sentences, on those whose deciding clause holds a negator (the
    headline "negated" set) and, labelled as the earlier definition, on every sentence that
    contains a negator anywhere (also in a clause that "but" overrides)."""
    correct = predict(split.ids, split.lengths, params, config) == split.labels
    return {"accuracy": float(correct.mean()),
            "accuracy_negated": float(correct[split.negated].mean()),
            "accuracy_any_negator": float(correct[split.has_negator].mean())}
