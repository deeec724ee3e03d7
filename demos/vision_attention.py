"""Attention in vision (article §1.2.2, §2.2.2): a small CNN, the same CNN with channel attention
(Squeeze-and-Excitation) or with channel + spatial attention (CBAM), and a Vision Transformer,
trained alike on scikit-learn's 8×8 handwritten digits and scored on held-out images. The
figures show where each attends, and how far the ViT's heads look layer by layer next to how
far the CNN's units see — how attention differs from convolution."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from attention_np.nn.optim import Adam
from attention_np.vision import cnn, vit
from attention_np.vision.distance import mean_attention_distance, patch_distances
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, write_json
from demos._progress import progress, say
from demos._vision_analysis import class_specificity, effective_distance
from demos._vision_data import Digits, load_split
from demos._vision_figures import (cbam_figure, distance_figure, loss_figure, rollout_figure,
                                   se_figure)

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "视觉中的注意力（原文 §1.2.2、§2.2.2）：一个小型 CNN、"
    "加了通道注意力（Squeeze-and-Excitation）或通道 + 空间注意力（CBAM）的同一个 CNN，"
    "以及一个 Vision Transformer，在 scikit-learn 的 8×8 手写数字上以相同方式训练，"
    "并在留出图像上评分。图中展示每个模型关注哪里，并把 ViT 各层的头能看多远与 CNN "
    "的单元能看多远并排比较——注意力与卷积的区别由此可见。"
)

NAME = "vision_attention"
QUICK = dict(seeds=(0,), steps=1500)
FULL = dict(seeds=(0, 1, 2), steps=1500)
BATCH, LR, WARMUP = 64, 3e-3, 100


# ------------------------------------------------------------------------------- models
# ~20 k parameters each. CNN: 3×3 convs of 16, 32, 48 channels, 2×2 max-pools after the first
# two, global average pooling. ViT: 2×2 patches (16 tokens + [CLS]), d = 24, 4 heads, 4 pre-LN
# blocks with GELU (the library's encoder block). The CNNs' convolution and pool copies run on
# Numba kernels (the same numbers as the NumPy layers, attention_np.nn.conv).
MODELS = {"cnn": (cnn, cnn.CNNConfig(attention="none", backend="numba")),
          "cnn_se": (cnn, cnn.CNNConfig(attention="se", backend="numba")),
          "cnn_cbam": (cnn, cnn.CNNConfig(attention="cbam", backend="numba")),
          "vit": (vit, vit.ViTConfig())}


def init_model(name: str, rng: np.random.Generator) -> dict:
    module, config = MODELS[name]
    init = cnn.init_cnn if module is cnn else vit.init_vit
    return init(config, rng, np.float32)


# ------------------------------------------------------------------------------- training
def train(name: str, train_set: Digits, steps: int, seed: int):
    """Adam, a linear warm-up over WARMUP steps then a cosine decay to 0; batches of BATCH
    random training images. Returns (params, losses)."""
    module, config = MODELS[name]
    rng = np.random.default_rng(seed)
    params, opt, losses = init_model(name, rng), Adam(LR), []
    with progress(steps, f"  {name} (seed {seed})", every=steps // 5) as bar:
        for step in range(steps):
            opt.lr = LR * min(1.0, (step + 1) / WARMUP) * 0.5 * (1 + np.cos(np.pi * step / steps))
            idx = rng.choice(len(train_set), BATCH, replace=False)
            loss, grads = module.loss_and_grads(params, config, train_set.images[idx],
                                                train_set.labels[idx])
            opt.step(params, grads)
            losses.append(loss)
            bar.set_postfix(loss=float(np.mean(losses[-50:])))
            bar.update()
    return params, np.array(losses)


# ------------------------------------------------------------------------------- evaluation
def evaluate(name: str, params: dict, test_set: Digits) -> dict:
    """Test accuracy, the predictions and the attention weights on the whole test set."""
    module, config = MODELS[name]
    logits, weights = module.predict(params, config, test_set.images)
    predicted = logits.argmax(axis=1)
    return {"accuracy": float(np.mean(predicted == test_set.labels)), "predicted": predicted,
            "weights": weights}


def vit_distances(weights) -> np.ndarray:
    """(L, H) mean attention distance in pixels over the test images."""
    c = MODELS["vit"][1]
    return mean_attention_distance(weights, c.grid, c.patch_size)


def model_metrics(name: str, runs: list, params0: dict, test_set: Digits, steps: int) -> dict:
    """The metrics.json entry of one model: accuracy (mean over seeds), per seed, sizes."""
    accuracies = [r["accuracy"] for r in runs]
    entry = {"test_accuracy": float(np.mean(accuracies)), "test_accuracy_per_seed": accuracies,
             "test_accuracy_std": float(np.std(accuracies)),
             "params": int(sum(p.size for p in params0.values())), "train_steps": steps,
             "batch": BATCH, "seconds_per_seed": [r["seconds"] for r in runs]}
    config = MODELS[name][1]
    if name == "vit":
        entry["mean_attention_distance"] = vit_distances(runs[0]["weights"]).tolist()
        entry["mean_attention_distance_per_seed"] = [vit_distances(r["weights"]).mean(1).tolist()
                                                     for r in runs]
        entry["uniform_attention_distance"] = float(patch_distances(config.grid,
                                                                    config.patch_size).mean())
    else:
        entry["receptive_field_px"] = [r for r, _ in cnn.receptive_fields(config)]
        entry["effective_distance_px"] = effective_distance(params0, config, test_set.images[:64])
    if name == "cnn_se":
        entry["se_class_specificity"] = [class_specificity(s, test_set.labels)
                                         for s in runs[0]["weights"]]
    if name == "cnn_cbam":                           # how far the gates close, per block
        entry["channel_gate_mean"] = [float(s.mean()) for s, _ in runs[0]["weights"]]
        entry["spatial_gate_mean"] = [float(a.mean()) for _, a in runs[0]["weights"]]
        entry["spatial_gate_min"] = [float(a.min()) for _, a in runs[0]["weights"]]
    return entry


# ------------------------------------------------------------------------------- run
def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` shifts the seeds of initialisation and training; the data stay the same."""
    with one_blas_thread():
        return _run(Path(out_dir), full, seed)


def _run(out_dir: Path, full: bool, seed: int = 0) -> list[Figure]:
    out, start, setup = demo_dir(out_dir, NAME), time.perf_counter(), FULL if full else QUICK
    setup = dict(setup, seeds=tuple(s + seed for s in setup["seeds"]))
    train_set, test_set = load_split()
    say(f"{NAME}: {len(train_set)} training / {len(test_set)} held-out 8×8 digits; "
        f"{setup['steps']} steps of {BATCH} images per model, seeds {setup['seeds']}")
    metrics, first, curves = {}, {}, {}
    for name in MODELS:
        runs = []
        for seed in setup["seeds"]:
            t0 = time.perf_counter()
            params, losses = train(name, train_set, setup["steps"], seed)
            runs.append({**evaluate(name, params, test_set), "seconds": time.perf_counter() - t0})
            if seed == setup["seeds"][0]:
                first[name], curves[name] = (params, runs[0]), losses
        metrics[name] = model_metrics(name, runs, first[name][0], test_set, setup["steps"])
        say(f"  {name}: test accuracy {metrics[name]['test_accuracy']:.4f} "
            f"({metrics[name]['params']} parameters)")
    say("  ViT mean attention distance (px) per layer, averaged over heads: " + ", ".join(
        f"{np.mean(d):.2f}" for d in metrics["vit"]["mean_attention_distance"]))
    metrics.update(data={"train_images": len(train_set), "test_images": len(test_set),
                         "augmentation": "none"},
                   seconds=time.perf_counter() - start)
    write_json(out / "metrics.json", metrics)
    return [rollout_figure(MODELS["vit"][1], first["vit"][1], test_set, out_dir),
            cbam_figure(first["cnn_cbam"][1], test_set, out_dir),
            se_figure(first["cnn_se"][1], test_set, metrics["cnn_se"], out_dir),
            distance_figure(metrics, out_dir),
            loss_figure(curves, out_dir)]


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
