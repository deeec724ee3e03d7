"""Show, Attend and Tell, evaluated: BLEU by hand, training reduces the loss, localization by
hand, and the demo's metrics and figures (the model's gradients: tests/test_captioning.py)."""
import numpy as np
import pytest

from attention_np.apps.captioning.baseline import baseline_loss_and_grads, init_baseline_params
from attention_np.apps.captioning.bleu import corpus_bleu
from attention_np.apps.captioning.model import CaptionConfig, init_params, loss_and_grads
from attention_np.nn.optim import Adam
from demos._digits_data import END, FIRST_DIGIT, make_caption_data

# ------------------------------------------------------------------------------ BLEU
def test_bleu():
    ref = [["three", "seven", "one", "four", "two"]]
    assert corpus_bleu(ref, ref) == pytest.approx(1.0)
    assert corpus_bleu([["nine", "nine"]], [["one", "two"]]) == 0.0
    # hand count: p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1 → BLEU-4 = 0;
    # BLEU-3 = (3/4 · 2/3 · 1/2)^(1/3) · BP with BP = exp(1 − 5/4) (4 words against 5)
    cand, reference = ["a", "b", "c", "x"], ["a", "b", "c", "d", "e"]
    expected = (3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3) * np.exp(1 - 5 / 4)
    assert corpus_bleu([cand], [reference], max_n=3) == pytest.approx(expected)
    assert corpus_bleu([cand], [reference]) == 0.0
    with pytest.raises(ValueError, match="one reference per candidate"):
        corpus_bleu([cand], [])


# ------------------------------------------------------------------------ training
@pytest.mark.parametrize("attention", ["soft", "hard", "article"])
def test_a_few_training_steps_reduce_the_loss(attention):
    data = make_caption_data(8, "train", seed=0)
    cfg = CaptionConfig(attention="soft" if attention == "article" else attention,
                        channels=(4, 8, 8), hidden=16, embed=8, attn=8, soft_mix=0.0)
    rng = np.random.default_rng(0)
    if attention == "article":
        params = init_baseline_params(cfg, rng)
        step = lambda: baseline_loss_and_grads(params, cfg, data.images, data.captions)  # noqa
    else:
        params = init_params(cfg, rng)
        step = lambda: loss_and_grads(params, cfg, data.images, data.captions, rng)      # noqa
    opt = Adam(lr=1e-2)
    losses = []
    for _ in range(25):
        stats, grads = step()
        losses.append(stats["ce"])
        opt.step(params, grads)
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses


def test_localization_hits_by_hand():
    """A 1 × 16 grid of 4 px columns and a 2 × 8 grid of 8 × 8 cells on one strip whose first
    digit fills x 10–20 (rows 2–12) and second x 30–40 (rows 6–16)."""
    from demos.caption_digits import localization_hits
    boxes = np.array([[[2, 10, 12, 20], [6, 30, 16, 40], [-1, -1, -1, -1]]])
    tokens = np.array([[FIRST_DIGIT + 1, FIRST_DIGIT + 7, FIRST_DIGIT, END]])
    alphas = np.zeros((1, 4, 16))
    alphas[0, [0, 1, 2], [3, 6, 7]] = 1.0        # column centres x = 14 (in), 26 (out), 30 (no 3rd box)
    assert localization_hits(tokens, alphas, boxes, (1, 16)).tolist() == [True, False, False]
    alphas = np.zeros((1, 4, 16))
    alphas[0, [0, 1], [1, 4]] = 1.0             # row 0: col 1 (box centre y 7, in); col 4 (x 36 in
    #                                             box 2, but its centre y 11 lies in row 1: miss)
    assert localization_hits(tokens[:, [0, 1, 3]], alphas, boxes, (2, 8)).tolist() == [True, False]


def test_evenly_spaced_columns_by_hand():
    """k = 4 digits on the 64 px strip: x = 8, 24, 40, 56 → columns 2, 6, 10, 14 of 16; with two
    rows of 8 cells the rule uses the lower row (gh // 2 = 1): cells 8 + 1, 3, 5, 7."""
    from demos.caption_digits import evenly_spaced_columns
    assert evenly_spaced_columns(4, (1, 16)).argmax(axis=1).tolist() == [2, 6, 10, 14]
    assert evenly_spaced_columns(4, (2, 8)).argmax(axis=1).tolist() == [9, 11, 13, 15]
    assert evenly_spaced_columns(3, (1, 16)).sum(axis=1).tolist() == [1, 1, 1]


def test_localization_floor_and_chance_by_hand():
    """Two strips: 2 digits at x 0–20 and 40–52 (the rule looks at x = 16 and 48: both hit);
    3 digits at x 30–40, 40–50, 50–60 (x = 10.7, 32, 53.3 → columns 2, 8, 13, centres 10, 34,
    54: one hit). Floor 3/5. Chance: the digits cover 5, 3, 3, 2, 3 of the 16 column centres
    (2, 6, …, 62): (5 + 3 + 3 + 2 + 3) / (5 · 16)."""
    from demos._digits_data import CaptionData, MAX_DIGITS
    from demos.caption_digits import localization_chance, localization_floor
    boxes = np.full((2, MAX_DIGITS, 4), -1)
    boxes[0, :2] = [[0, 0, 16, 20], [2, 40, 14, 52]]
    boxes[1, :3] = [[0, 30, 10, 40], [4, 40, 14, 50], [6, 50, 16, 60]]
    digits = np.full((2, MAX_DIGITS), -1)
    digits[0, :2], digits[1, :3] = [1, 2], [3, 4, 5]
    captions = np.zeros((2, MAX_DIGITS + 2), dtype=int)
    captions[0, :4] = [1, FIRST_DIGIT + 1, FIRST_DIGIT + 2, END]
    captions[1, :5] = [1, FIRST_DIGIT + 3, FIRST_DIGIT + 4, FIRST_DIGIT + 5, END]
    data = CaptionData(np.zeros((2, 16, 64)), captions, digits, boxes)
    assert localization_floor(data, (1, 16)) == pytest.approx(3 / 5)
    assert localization_chance(data, (1, 16)) == pytest.approx(16 / 80)


def test_demo_writes_metrics_and_figures(tmp_path, monkeypatch):
    """A few steps of the whole demo: every metric the README reports, and every figure."""
    import json

    import demos.caption_digits as demo
    monkeypatch.setattr(demo, "QUICK", dict(n_test=6, steps=(12, 8), batch=4))
    figures = demo.run(tmp_path)
    metrics = json.loads((tmp_path / demo.NAME / "metrics.json").read_text())
    for kind in ("soft", "hard", "hard_from_scratch"):
        assert {"sequence_accuracy", "bleu4", "localization_accuracy"} <= set(metrics[kind])
    assert "article" in metrics["article_baseline"]["label"]
    assert [metrics[k]["train_steps"] for k in ("soft", "hard", "hard_from_scratch",
                                                 "article_baseline")] == [12, 20, 20, 12]
    assert 0 <= metrics["localization_chance_uniform"] <= metrics["localization_floor"] <= 1
    assert all((tmp_path / f.path).stat().st_size > 0 for f in figures) and len(figures) == 7
