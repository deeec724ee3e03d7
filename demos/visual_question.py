"""Visual question answering over strips of handwritten digits ("what is left of 7?", "which
digit is largest?", "is there a 3?", "how many 5s?"): the question chooses where to look with
stacked question-to-region attention (Yang et al., 2016) whose second hop is location-aware
(Chorowski et al., 2015): it can look beside the digit the first hop found. Compared, for the same steps, with
the question alone (the language prior) and with mean-pooled regions (no attention), on
question–layout combinations never seen in training."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from attention_np.apps.captioning.encoder import encoder_backward, encoder_forward
from attention_np.apps.vqa import VQAConfig, init_vqa, loss_and_grads, predict
from attention_np.core import linear_backward, linear_forward
from attention_np.nn.init import xavier_uniform
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.optim import Adam, clip_grad_norm
from attention_np.nn.params import sub
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, write_json
from demos._progress import progress, say
from demos._vqa_data import (ANSWERS, FAMILIES, WORDS, column_labels, make_vqa_data,
                             target_columns)

NAME = "visual_question"
SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "在手写数字条带上做视觉问答（“7 左边是什么？”“哪个数字最大？”“有没有 3？”“有几个 5？”）："
    "问题通过堆叠的“问题到区域”注意力（Yang et al., 2016）决定看哪里，其第二跳是位置感知的"
    "（Chorowski et al., 2015），能看向第一跳找到的数字旁边。与之对比的是训练步数相同的"
    "两个基线：只看问题（语言先验），以及把各区域特征取平均（不用注意力）；测试集只含训练中从未"
    "出现过的问题–布局组合。"
)

# Regions: the captioning CNN's 16 columns, standardised, with no context between them (each
# says what stands under it and nothing about its neighbours, so their mean is a bag of
# digits); 2 hops, the second location-aware with filters 15 columns wide (±7 columns: a
# digit is 2–3 columns wide); the widths of VQAConfig.
# The question GRU runs in NumPy: with the fused Numba scan (backend="numba") the demo took
# 81–85 s against 67 s (AMD EPYC family 26 model 2, python -m demos --verify, one run each).
MODEL = VQAConfig(n_words=len(WORDS), n_answers=len(ANSWERS), hops=2, context=0, location=15,
                  pixels=False)
MODELS = {"attention": "attention", "mean_pool": "mean", "question_only": "question_only"}


@dataclass(frozen=True)
class Recipe:
    """The CNN first learns to read the digit under each column (``cnn_steps``), then stays
    fixed: its columns are computed once, standardised, and every model answers questions from them for
    ``steps`` batches (Adam, linear warm-up and decay, gradients clipped at 1)."""
    n_train: int = 8000
    n_test: int = 1000
    cnn_steps: int = 2000
    steps: int = 6000
    batch: int = 32
    lr: float = 6e-3
    warmup: int = 100


QUICK = Recipe()
FULL = Recipe(n_train=16000, n_test=2000, cnn_steps=3000, steps=10000)
SEEDS = {False: (0,), True: (0, 1, 2)}


def _lr(recipe: Recipe, step: int, steps: int) -> float:
    return recipe.lr * min(1.0, (step + 1) / recipe.warmup) * (1 - 0.9 * step / steps)


# ------------------------------------------------------------------------------- the CNN
def train_cnn(data, recipe: Recipe, rng: np.random.Generator):
    """The CNN of MODEL and a linear read-out trained to name the digit under each of its
    columns (11 classes: 0–9 and none), as a VQA model starts from a CNN trained to recognise
    things → (CNN params, losses). Its convolution and pool copies run on Numba kernels (the
    same numbers as the NumPy layers, attention_np.nn.conv)."""
    cnn = sub(init_vqa(replace(MODEL, pixels=True), rng), "cnn")
    C = MODEL.channels[-1]
    head = {"read.W": xavier_uniform((C, 11), rng, np.float32), "read.b": np.zeros(11, np.float32)}
    labels, params = column_labels(data), cnn | head
    opt, losses = Adam(recipe.lr), []
    with progress(recipe.cnn_steps, "  CNN reads digits", every=max(1, recipe.cnn_steps // 4)) as bar:
        for step in range(recipe.cnn_steps):
            opt.lr = _lr(recipe, step, recipe.cnn_steps)
            idx = rng.integers(0, len(data), recipe.batch)
            a, enc_cache = encoder_forward(data.images[idx].astype(np.float32),     # (B, L, C)
                                           {k: params[k] for k in cnn}, MODEL.pools, "numba")
            z, lin_cache = linear_forward(a, params["read.W"], params["read.b"])   # (B, L, 11)
            loss, ce_cache = cross_entropy_forward(z.reshape(-1, 11), labels[idx].reshape(-1))
            dz = cross_entropy_backward(1.0, ce_cache).reshape(z.shape)
            da, dW, db = linear_backward(dz, lin_cache)
            grads = encoder_backward(da, enc_cache) | {"read.W": dW, "read.b": db}
            clip_grad_norm(grads, 1.0)
            opt.step(params, grads)
            losses.append(float(loss))
            bar.set_postfix(loss=float(loss))
            bar.update()
    return {k: params[k] for k in cnn}, head, losses


def cnn_columns(cnn: dict, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """The fixed CNN's columns of every image: (N, L, C) float32."""
    return np.concatenate([encoder_forward(images[s:s + batch].astype(np.float32), cnn,
                                           MODEL.pools, "numba")[0]
                           for s in range(0, len(images), batch)])


def standardise(train_feats: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Every channel of the fixed columns to mean 0 and std 1 over the training strips (the
    raw columns are large: ReLU outputs up to ~50, which saturate the additive scores' tanh).
    Part of the fixed features, so every model reads the same standardised columns."""
    mu = train_feats.mean(axis=(0, 1))
    sd = train_feats.std(axis=(0, 1)) + 1e-6
    return [((f - mu) / sd).astype(np.float32) for f in (train_feats, *others)]


def column_accuracy(cnn: dict, head: dict, feats: np.ndarray, data) -> float:
    """Share of the test strips' columns whose digit (or none) the read-out names."""
    z = feats @ head["read.W"] + head["read.b"]
    return float(np.mean(z.argmax(-1) == column_labels(data)))


# ------------------------------------------------------------------------------- answering
def train_answers(pooling: str, feats, data, recipe: Recipe, seed: int):
    """One model (``pooling``: attention, mean or question_only) → (config, params, losses)."""
    cfg = replace(MODEL, pooling=pooling)
    rng = np.random.default_rng(seed)
    params, opt, losses = init_vqa(cfg, rng), Adam(recipe.lr), []
    name = next(k for k, v in MODELS.items() if v == pooling)
    with progress(recipe.steps, f"  {name} (seed {seed})", every=max(1, recipe.steps // 5)) as bar:
        for step in range(recipe.steps):
            opt.lr = _lr(recipe, step, recipe.steps)
            idx = rng.integers(0, len(data), recipe.batch)
            loss, grads = loss_and_grads(params, cfg, feats[idx], data.questions[idx],
                                         data.lengths[idx], data.answers[idx])
            clip_grad_norm(grads, 1.0)
            opt.step(params, grads)
            losses.append(loss)
            bar.set_postfix(loss=loss)
            bar.update()
    return cfg, params, losses


def evaluate(cfg: VQAConfig, params, feats, data) -> dict:
    """Test accuracy (all and per family) and, with attention, the attention mass of the last
    hop on the columns of the digit a left_of / largest answer names."""
    answers, weights = predict(params, cfg, feats, data.questions, data.lengths)
    right = answers == data.answers
    out = {"test_accuracy": float(right.mean()),
           "test_accuracy_by_family": {f: float(right[data.family == i].mean())
                                       for i, f in enumerate(FAMILIES)}}
    if weights is not None:
        has_target = data.target.any(axis=1)
        mass = (weights[:, -1] * target_columns(data)).sum(axis=1)          # (N,)
        out["attention_on_target"] = float(mass[has_target].mean())
        out["attention_on_target_by_family"] = {
            f: float(mass[data.family == FAMILIES.index(f)].mean()) for f in ("left_of", "largest")}
    return out


def train_seed(recipe: Recipe, seed: int):
    """Data, CNN and the three models of one seed → (results, things the figures need)."""
    train = make_vqa_data(recipe.n_train, "train", seed=seed)
    test = make_vqa_data(recipe.n_test, "test", seed=10_000 + seed)
    rng = np.random.default_rng(seed)
    cnn, head, cnn_losses = train_cnn(train, recipe, rng)
    train_feats, test_feats = cnn_columns(cnn, train.images), cnn_columns(cnn, test.images)
    results = {"cnn_column_accuracy": column_accuracy(cnn, head, test_feats, test)}
    train_feats, test_feats = standardise(train_feats, test_feats)
    kept = {}
    for name, pooling in MODELS.items():
        cfg, params, losses = train_answers(pooling, train_feats, train, recipe, seed)
        results[name] = evaluate(cfg, params, test_feats, test)
        kept[name] = (cfg, params, losses)
    return results, {"cnn": cnn, "models": kept, "test": test, "test_feats": test_feats,
                     "cnn_losses": cnn_losses}


# ------------------------------------------------------------------------------- run
def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    with one_blas_thread():
        return _run(Path(out_dir), full, seed)


def _run(out_dir: Path, full: bool, seed: int) -> list[Figure]:
    from demos import _vqa_figures as figs
    out = demo_dir(out_dir, NAME)
    start, cpu_start = time.perf_counter(), time.process_time()
    recipe = FULL if full else QUICK
    seeds = tuple(s + seed for s in SEEDS[full])
    say(f"visual question answering: CNN {recipe.cnn_steps} steps, then {recipe.steps} steps "
        f"of {recipe.batch} questions per model, seeds {seeds}")
    runs = {s: train_seed(recipe, s) for s in seeds}
    per_seed = [r for r, _ in runs.values()]
    metrics = {}
    for name in MODELS:
        metrics[name] = {"test_accuracy": float(np.mean([r[name]["test_accuracy"]
                                                         for r in per_seed])),
                         "train_steps": recipe.steps,
                         "test_accuracy_per_seed": [r[name]["test_accuracy"] for r in per_seed],
                         "test_accuracy_by_family": per_seed[0][name]["test_accuracy_by_family"]}
    metrics["attention_on_target"] = float(np.mean([r["attention"]["attention_on_target"]
                                                    for r in per_seed]))
    metrics["attention_on_target_by_family"] = per_seed[0]["attention"][
        "attention_on_target_by_family"]
    metrics["cnn_pretrain_steps"] = recipe.cnn_steps
    metrics["cnn_column_accuracy"] = float(np.mean([r["cnn_column_accuracy"] for r in per_seed]))
    att = metrics["attention"]["test_accuracy"]
    metrics["targets_met"] = {
        "attention >= mean_pool + 0.10": att >= metrics["mean_pool"]["test_accuracy"] + 0.10,
        "attention >= question_only + 0.30": att >= metrics["question_only"]["test_accuracy"] + 0.30,
        "attention_on_target >= 0.5": metrics["attention_on_target"] >= 0.5}
    metrics.update(seeds=list(seeds), model=asdict(MODEL), recipe=asdict(recipe),
                   seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu_start)
    write_json(out / "metrics.json", metrics)
    _report(metrics)
    kept = runs[seeds[0]][1]
    return figs.all_figures(kept, metrics, out_dir)


def _report(m: dict) -> None:
    for name in MODELS:
        fam = ", ".join(f"{f} {a:.2f}" for f, a in m[name]["test_accuracy_by_family"].items())
        say(f"  {name:13s} test accuracy {m[name]['test_accuracy']:.3f}  ({fam})")
    say(f"  attention on the answer's digit {m['attention_on_target']:.2f}; CNN columns read "
        f"right {m['cnn_column_accuracy']:.2f}")


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
