"""Training loop: length-bucketed mini-batches, Adam, global gradient clipping, and early
stopping on validation exact match (the best parameters seen — the latest of equally good
ones — are the ones returned)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from attention_np.nn.optim import Adam, clip_grad_norm
from attention_np.apps.seq2seq.model import loss_and_grads
from attention_np.apps.seq2seq.search import translate_greedy


@dataclass
class TrainConfig:
    batch: int = 64
    lr: float = 3e-3
    clip: float = 1.0
    max_steps: int = 2000
    max_seconds: float = 60.0    # CPU seconds of this process (machine load does not count)
    eval_every: int = 100
    patience: int = 5            # evaluations without improvement before stopping
    final_lr: float = 0.1        # lr decays linearly to final_lr · lr over the step/time budget
    seed: int = 0


@dataclass
class History:
    steps: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    val_exact: list = field(default_factory=list)
    seconds: float = 0.0         # CPU seconds
    wall_seconds: float = 0.0
    stopped: str = ""


def crop(src, src_len, rows):
    """The rows' sources cut to their longest length, and the (B, Tk) mask of real characters."""
    T = int(src_len[rows].max())
    mask = np.arange(T)[None, :] < src_len[rows][:, None]
    return src[rows, :T], mask


def batches(n, src_len, batch, rng, pool: int = 16):
    """Endless index batches: draw ``pool`` batches' worth, sort by length, cut (less padding)."""
    pool = max(1, min(pool, n // batch))
    while True:
        idx = rng.choice(n, size=batch * pool, replace=False)
        idx = idx[np.argsort(src_len[idx], kind="stable")]
        for k in rng.permutation(pool):
            yield idx[k * batch:(k + 1) * batch]


def predict(params, cfg, src, src_len, batch: int = 256):
    """Greedy tokens (N, T) for a whole data set, in batches."""
    out = []
    for start in range(0, len(src), batch):
        rows = np.arange(start, min(start + batch, len(src)))
        out.append(translate_greedy(params, cfg, *crop(src, src_len, rows))[0])
    return np.concatenate(out)


def exact_match(cfg, pred, tgt) -> float:
    """Share of rows whose tokens match the target up to and including <end>."""
    valid = tgt != cfg.pad
    return float(np.mean(np.all((pred == tgt) | ~valid, axis=1)))


def _validate(params, cfg, val, hist: History, running: list, step: int, log, elapsed) -> float:
    """Validation exact match at ``step``, recorded in ``hist`` (with the mean training loss
    since the last evaluation) and logged."""
    score = exact_match(cfg, predict(params, cfg, val.src, val.src_len), val.tgt)
    hist.steps.append(step), hist.val_exact.append(score)
    hist.train_loss.append(float(np.mean(running)))
    log(f"  step {step:5d}  loss {np.mean(running):.4f}  val exact {score:.3f}  "
        f"({elapsed:.0f} CPU s)")
    return score


def train(params, cfg, data, val, tc: TrainConfig, log=print, checkpoint=None) -> History:
    """Train ``params`` in place on ``data`` (an object with src, src_len, tgt arrays).
    ``checkpoint(step, params)``, if given, is called after every validation evaluation with
    the parameters of that step (e.g. to measure test accuracy against training steps)."""
    rng = np.random.default_rng(tc.seed)
    opt, hist = Adam(lr=tc.lr), History()
    best, best_score, bad = {k: v.copy() for k, v in params.items()}, -1.0, 0
    start, wall, running = time.process_time(), time.perf_counter(), []
    for step, rows in enumerate(batches(len(data.src), data.src_len, tc.batch, rng), 1):
        src, mask = crop(data.src, data.src_len, rows)
        loss, grads, _ = loss_and_grads(params, cfg, src, mask, data.tgt[rows])
        clip_grad_norm(grads, tc.clip)
        elapsed = time.process_time() - start
        progress = min(1.0, max(step / tc.max_steps, elapsed / tc.max_seconds))
        opt.lr = tc.lr * (1.0 - (1.0 - tc.final_lr) * progress)
        opt.step(params, grads)
        running.append(loss)
        out_of_budget = step >= tc.max_steps or elapsed >= tc.max_seconds
        if step % tc.eval_every == 0 or out_of_budget:
            score = _validate(params, cfg, val, hist, running, step, log, elapsed)
            if checkpoint is not None:
                checkpoint(step, params)
            running = []
            bad = 0 if score > best_score else bad + 1
            if score >= best_score:      # on a tie keep the later (lower-loss) parameters
                best, best_score = {k: v.copy() for k, v in params.items()}, score
            if bad >= tc.patience or score == 1.0:
                hist.stopped = "early stop" if bad else "perfect validation"
                break
        if out_of_budget:
            hist.stopped = "step budget" if step >= tc.max_steps else "time budget"
            break
    for k in params:
        params[k][...] = best[k]
    hist.seconds = time.process_time() - start
    hist.wall_seconds = time.perf_counter() - wall
    return hist
