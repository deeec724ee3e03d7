"""The vision demo: its metrics.json contract on a few training steps, and the two numbers it
reads off trained models (effective distance, class specificity) on cases known by hand."""
import json

import numpy as np
import pytest

from attention_np.vision import CNNConfig, init_cnn
from demos._vision_analysis import class_specificity, effective_distance


def test_demo_writes_the_metrics_contract_and_figures(tmp_path, monkeypatch):
    import demos.vision_attention as demo
    monkeypatch.setattr(demo, "QUICK", dict(seeds=(0,), steps=4))
    figures = demo.run(tmp_path)
    metrics = json.loads((tmp_path / "vision_attention" / "metrics.json").read_text())
    for name in ("cnn", "cnn_se", "cnn_cbam", "vit"):
        assert 0.0 <= metrics[name]["test_accuracy"] <= 1.0
        assert metrics[name]["train_steps"] == 4
    config = demo.MODELS["vit"][1]
    distance = np.array(metrics["vit"]["mean_attention_distance"])
    assert distance.shape == (config.encoder.num_layers, config.encoder.num_heads)
    assert np.all((distance >= 0) & (distance <= config.image_size * np.sqrt(2)))
    assert len(metrics["cnn"]["effective_distance_px"]) == len(demo.MODELS["cnn"][1].channels)
    assert len(figures) == 5 and all((tmp_path / f.path).stat().st_size > 0 for f in figures)


def test_effective_distance_of_one_conv_by_hand():
    """One 3×3 conv of positive weights on positive images (ReLU passes everything): every
    unit's gradient is the kernel, so an interior unit's distance is (4·1 + 4·√2) / 9 and a
    corner unit's (1 + 1 + √2) / 4 — the mean over the 8×8 units, computed here directly."""
    config = CNNConfig(channels=(1,), pool=(False,), num_classes=2)
    params = init_cnn(config, np.random.default_rng(0))
    params["conv0.W"][:] = 1.0
    images = np.random.default_rng(1).uniform(0.5, 1.0, (3, 1, 8, 8))
    expected = []
    for i, j in np.ndindex(8, 8):
        offsets = [(u, v) for u in (-1, 0, 1) for v in (-1, 0, 1)
                   if 0 <= i + u < 8 and 0 <= j + v < 8]            # zero padding cuts the edge
        expected.append(np.mean([np.hypot(u, v) for u, v in offsets]))
    assert effective_distance(params, config, images) == [pytest.approx(np.mean(expected))]


def test_class_specificity_bounds():
    labels = np.repeat(np.arange(3), 4)
    by_class = np.eye(3)[labels]                                     # s is a function of the class
    assert class_specificity(by_class, labels) == pytest.approx(1.0)
    noise = np.random.default_rng(0).random((12, 3))
    noise -= np.stack([noise[labels == k].mean(0) for k in labels])  # no class signal at all
    assert class_specificity(noise + 0.5, labels) == pytest.approx(0.0, abs=1e-12)
