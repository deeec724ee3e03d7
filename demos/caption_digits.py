"""Image captioning with visual attention (Show, Attend and Tell; article §5.1 and §3.2).

Strips of 2–5 handwritten digits are captioned word by word ("three seven one") by a conv
encoder and an attention LSTM decoder, all written in NumPy. Soft attention takes the expected
feature; hard attention samples one location and is trained with REINFORCE — starting from the
trained soft model's weights, a curriculum — and, next to it, from scratch for the same total
number of steps. Every step trains on freshly drawn strips. Because we know where each digit
was drawn, we measure whether the model looks at the digit it names, against an honest floor:
a rule that knows the digit count and looks at evenly spaced columns. The article's printed
decoder, which attends over its own LSTM states, is trained as a baseline for as many steps as
Show-Attend-Tell.
"""
from __future__ import annotations

import time

import numpy as np

from attention_np.apps.captioning.baseline import (baseline_decoder_forward, baseline_generate,
                                              baseline_loss_and_grads, init_baseline_params)
from attention_np.apps.captioning.bleu import corpus_bleu
from attention_np.apps.captioning.encoder import encoder_forward
from attention_np.apps.captioning.model import (CaptionConfig, generate, init_params,
                                           loss_and_grads, update_baseline)
from attention_np.nn.optim import Adam, clip_grad_norm
from demos._common import demo_dir, demo_main, one_blas_thread, worker_pool, write_json
from demos._digits_data import CANVAS, END, FIRST_DIGIT, START, decode, make_caption_data
from demos._caption_figures import (plot_baseline_vs_soft, plot_curves, plot_overlays,
                                    write_gif)
from demos._progress import say, progress

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "带视觉注意力的图像字幕生成（image captioning；Show, Attend and Tell，原文 §5.1 与 "
    "§3.2）。由 2–5 个手写数字拼成的条带图像被逐词配上字幕（如“three seven one”），"
    "模型是一个卷积编码器加一个带注意力的 LSTM 解码器，全部用 NumPy 写成。"
    "软注意力取特征的期望；硬注意力采样一个位置，用 REINFORCE 训练："
    "一种从训练好的软注意力模型的权重出发（相当于课程学习），另一种作为对照从头训练，"
    "总步数相同。每一步都在新画出的条带上训练。由于知道每个数字画在哪里，"
    "我们可以度量模型说出一个数字时是否正看着它，并与一个诚实的下限比较："
    "一条知道数字个数、只看等间距各列的规则。原文印出的解码器只对自己的 LSTM "
    "状态做注意力，它作为基线（baseline）训练与 Show, Attend and Tell 相同的步数。"
)

NAME = "caption_digits"
# test strips; steps: soft (S), hard fine-tuning the soft model (H); strips per step. The
# article's decoder trains S steps, as soft attention; hard attention from scratch S + H, as
# the fine-tuned one in all.
QUICK = dict(n_test=400, steps=(3000, 1000), batch=32)
FULL = dict(n_test=1000, steps=(8000, 4000), batch=32)


# ------------------------------------------------------------------------------- data
def _fresh_strips(batch):
    """Every step draws new strips (new layouts of the 1400 training digit images)."""
    def draw(rng):
        data = make_caption_data(batch, "train", seed=rng)
        return data.images.astype(np.float32), data.captions
    return draw


# ------------------------------------------------------------------------------- model
# Show-Attend-Tell (attention_np/apps/captioning) with a small encoder: one row of 16
# full-height columns, as the strip is one line of text, read left to right. The encoder's
# copies run on Numba kernels (the same numbers as the NumPy layers the site teaches).
MODEL = dict(channels=(8, 16, 32), pools=((2, 2), (2, 2), (4, 1)), hidden=96, backend="numba")


# ------------------------------------------------------------------------------- training
def train(loss_fn, params, steps: int, rng, lr: float = 6e-3, warmup: int = 100,
          label: str = ""):
    """Adam with gradient clipping, a linear warm-up over ``warmup`` steps and a linear decay
    to 10 % of ``lr``; returns the loss curve."""
    opt, losses = Adam(lr=lr), []
    with progress(steps, f"  {label}", every=250) as bar:
        for step in range(steps):
            opt.lr = lr * min(1.0, (step + 1) / warmup) * (1 - 0.9 * step / steps)
            stats, grads = loss_fn(rng)
            clip_grad_norm(grads, 5.0)
            opt.step(params, grads)
            losses.append(stats["ce"])
            bar.set_postfix(ce=float(np.mean(losses[-50:])))
            bar.update()
    return np.array(losses)


def _train_attention_model(kind, steps, batch, seed, init=None, label=None):
    """Soft or hard attention from scratch, or from ``init`` (the trained soft weights)."""
    cfg = CaptionConfig(attention=kind, **MODEL)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng, np.float32)
    if init is not None:
        params = {k: v.copy() for k, v in init.items()}
    draw, state = _fresh_strips(batch), {"b": None}

    def loss_fn(rng):
        stats, grads = loss_and_grads(params, cfg, *draw(rng), rng,
                                      0.0 if state["b"] is None else state["b"])
        if kind == "hard":
            state["b"] = update_baseline(state["b"], stats, cfg)
        return stats, grads
    lr = 6e-3 if init is None else 1e-3
    curve = train(loss_fn, params, steps, rng, lr=lr, label=label or kind)
    return cfg, params, curve


def _train_article(steps, batch, seed):
    cfg = CaptionConfig(**MODEL)
    rng = np.random.default_rng(seed)
    params = init_baseline_params(cfg, rng, np.float32)
    draw = _fresh_strips(batch)
    curve = train(lambda r: baseline_loss_and_grads(params, cfg, *draw(r)), params, steps, rng,
                  label="article")
    return cfg, params, curve


# ------------------------------------------------------------------------------- evaluation
def localization_hits(tokens, alphas, boxes, grid) -> np.ndarray:
    """For each generated digit word k (in order): does the argmax cell of α_k lie on the k-th
    digit of the image? A hit needs the cell's centre x inside the digit's box and the box's
    vertical centre inside the cell's row band (with one row of cells — full-height columns —
    only x matters). A word past the last digit has no box and counts as a miss."""
    gh, gw = grid
    cell_h, cell_w = CANVAS[0] / gh, CANVAS[1] / gw
    hits = []
    for tok, alpha, box in zip(tokens, alphas, boxes):
        for k, t in enumerate(tok):
            if t == END or t < FIRST_DIGIT:
                break
            if k >= len(box) or box[k][0] < 0:
                hits.append(False)
                continue
            r, c = divmod(int(alpha[k].argmax()), gw)
            top, left, bottom, right = box[k]
            in_x = left <= (c + 0.5) * cell_w < right
            hits.append(in_x and r * cell_h <= (top + bottom) / 2 < (r + 1) * cell_h)
    return np.array(hits)


def evenly_spaced_columns(n_digits: int, grid) -> np.ndarray:
    """The positional rule behind the localisation floor: for a strip of k digits, word j
    looks at the column under x = (j + ½) · W / k, the centre of the j-th of k equal slices.
    → one-hot α (k, cells) over the grid's cells (the middle row when there are several)."""
    gh, gw = grid
    x = (np.arange(n_digits) + 0.5) * CANVAS[1] / n_digits
    alphas = np.zeros((n_digits, gh * gw))
    alphas[np.arange(n_digits), (gh // 2) * gw + (x // (CANVAS[1] / gw)).astype(int)] = 1.0
    return alphas


def localization_floor(data, grid) -> float:
    """Localisation of the evenly-spaced-columns rule on the true captions (it knows the digit
    count): what a model scores without looking at the image at all."""
    tokens = data.captions[:, 1:]                                 # w_1 … w_k <end> <pad> …
    alphas = [evenly_spaced_columns(int((data.digits[i] >= 0).sum()), grid)
              for i in range(len(data))]
    return float(localization_hits(tokens, alphas, data.boxes, grid).mean())


def localization_chance(data, grid) -> float:
    """Expected localisation of a uniformly random column: the share of columns whose centre
    lies inside each digit's box, averaged over the digits."""
    gw = grid[1]
    centres = (np.arange(gw) + 0.5) * CANVAS[1] / gw                  # (gw,)
    boxes = data.boxes[data.digits >= 0]                            # (n digits, 4)
    inside = (boxes[:, 1:2] <= centres) & (centres < boxes[:, 3:4])  # (n, gw)
    return float(inside.mean())


def evaluate(tokens, data, alphas=None, grid=None) -> dict:
    words = [decode(t) for t in tokens]
    refs = [decode(c) for c in data.captions]
    out = {"sequence_accuracy": float(np.mean([w == r for w, r in zip(words, refs)])),
           "bleu4": corpus_bleu(words, refs)}
    if alphas is not None:            # a model that names no digit localises none (0, not NaN)
        hits = localization_hits(tokens, alphas, data.boxes, grid)
        out["localization_accuracy"] = float(hits.mean()) if hits.size else 0.0
    return out


# ------------------------------------------------------------------------------- figures
def _figures(curves, models, article, test, out_dir):
    cfg_a, params_a, tokens_a = article
    figures = [plot_curves(curves, out_dir, NAME)]
    figures += plot_overlays(models, test, out_dir, NAME)
    figures.append(write_gif(models["soft"], test, out_dir, NAME))
    n_words = len(decode(tokens_a[0]))
    inputs = np.concatenate([[START], tokens_a[0, :n_words]])[None]  # <start> w_1 … w_n
    image = test.images[:1].astype(np.float32)
    a_article = encoder_forward(image, params_a, cfg_a.block_pools, cfg_a.backend)[0]
    _, own_weights, _ = baseline_decoder_forward(a_article, inputs, params_a)
    figures.append(plot_baseline_vs_soft(models["soft"], tokens_a[0], own_weights[0], test,
                                         out_dir, NAME))
    return figures


# ------------------------------------------------------------------------------- demo
def _attention_runs(chain, setup: dict, Xt, test) -> dict:
    """Train the runs of ``chain`` in order — [(name, (kind, steps, start_from), seed)], where a
    run may start from an earlier run's weights — and evaluate each on the test strips.
    Returns {name: (cfg, params, tokens, alphas, curve, metrics)}. Runs in a worker process."""
    out = {}
    with one_blas_thread():
        for name, (kind, steps, start_from), seed in chain:
            init = out[start_from][1] if start_from else None
            cfg, params, curve = _train_attention_model(kind, steps, setup["batch"], seed, init,
                                                        label=name)
            tokens, alphas, _ = generate(params, cfg, Xt, beam_size=3)
            metrics = {**evaluate(tokens, test, alphas, cfg.grid), "train_steps": steps}
            say(f"  {name}: {metrics}")
            out[name] = (cfg, params, tokens, alphas, curve, metrics)
    return out


def _article_run(setup: dict, Xt, test, seed: int = 7) -> dict:
    """The article's decoder for S steps (seed 7 by default), evaluated. Runs in a worker
    process."""
    n_soft = setup["steps"][0]
    with one_blas_thread():
        cfg_a, params_a, curve = _train_article(n_soft, setup["batch"], seed)
        tokens_a, _ = baseline_generate(params_a, cfg_a, Xt, beam_size=3)
    metrics = {"label": "the article's printed decoder (attends over its own LSTM states, "
                        "applied causally); not Show-Attend-Tell", **evaluate(tokens_a, test),
               "train_steps": n_soft}
    say(f"  article: {metrics}")
    return {"article": (cfg_a, params_a, tokens_a, curve, metrics)}


def train_all(setup: dict, test, seed: int = 0):
    """Soft (S steps), hard fine-tuned from it (H), hard from scratch (S + H) and the article's
    decoder (S) → (models, metrics, curves, article model).

    The runs are independent but for the fine-tuning, which starts from the soft model: soft
    then hard in one worker process, hard from scratch in another, the article's decoder in
    whichever frees first (all of them one after the other in this process when
    :func:`demos._common.worker_pool` gives one worker). Every run has its own seed and draws
    its own strips, so the numbers are those of running them one after the other. ``seed`` moves every run's seed by 10·seed
    (seed 0: the seeds 0, 1, 2 and 7 of the recorded runs)."""
    Xt = test.images.astype(np.float32)
    n_soft, n_hard = setup["steps"]
    runs = {"soft": ("soft", n_soft, None), "hard": ("hard", n_hard, "soft"),
            "hard_from_scratch": ("hard", n_soft + n_hard, None)}
    seeds = {name: 10 * seed + k for k, name in enumerate(runs)}      # 0, 1, 2 for seed 0
    chains = [[(n, runs[n], seeds[n]) for n in ("soft", "hard")],
              [("hard_from_scratch", runs["hard_from_scratch"], seeds["hard_from_scratch"])]]
    with worker_pool() as pool:
        jobs = [pool.submit(_attention_runs, chain, setup, Xt, test) for chain in chains]
        article_job = pool.submit(_article_run, setup, Xt, test, 10 * seed + 7)
        done = {k: v for job in jobs for k, v in job.result().items()}
        cfg_a, params_a, tokens_a, curve_a, metrics_a = article_job.result()["article"]
    models, metrics, curves = {}, {}, {}
    for name in runs:
        cfg, params, tokens, alphas, curves[name], metrics[name] = done[name]
        models[name] = (cfg, params, tokens, alphas)
    metrics["hard"].update(train_steps=n_soft + n_hard, fine_tune_steps=n_hard,
                           init=f"fine-tuned from the soft model ({n_soft} steps) for "
                                f"{n_hard} steps")
    metrics["hard_from_scratch"]["init"] = "random, as soft attention; lr 6e-3"
    curves["article"] = curve_a
    metrics["article_baseline"] = metrics_a
    return models, metrics, curves, (cfg_a, params_a, tokens_a)


def floors(test, grid) -> dict:
    """What localisation scores without a model: the positional rule and a random column."""
    out = {"localization_floor": localization_floor(test, grid),
           "localization_floor_rule": "knows the digit count k and looks, for word j, at the "
                                      "column under x = (j + 1/2) W / k",
           "localization_chance_uniform": localization_chance(test, grid)}
    say(f"  localization floor (evenly spaced columns) {out['localization_floor']:.3f}, "
        f"uniform chance {out['localization_chance_uniform']:.3f}")
    return out


def run(out_dir, full: bool = False, seed: int = 0):
    """``seed`` moves the seeds of every training run (initialisation and the strips drawn for
    training); the test strips stay the same."""
    setup = FULL if full else QUICK
    out = demo_dir(out_dir, NAME)
    start = time.perf_counter()
    test = make_caption_data(setup["n_test"], "test", seed=1)
    models, metrics, curves, article = train_all(setup, test, seed)
    metrics.update(floors(test, models["soft"][0].grid))
    metrics["setup"] = {**setup, "mode": "full" if full else "quick", **MODEL,
                        "data": "fresh strips every step from 1400 training digit images; "
                                "test strips from the 397 held-out images",
                        "seconds": round(time.perf_counter() - start, 1)}
    write_json(out / "metrics.json", metrics)
    return _figures(curves, models, article, test, out_dir)


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
