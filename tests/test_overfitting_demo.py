"""demos/overfitting.py: the one function behind the overfitting page and demo, on a tiny
budget (the demo's quick mode takes minutes and is not run here), and the attention entropy
it reports."""
from __future__ import annotations

import numpy as np
import pytest

from demos import overfitting as ovf

SIZES, SEEDS = (12, 24, 36, 48), (0, 1)
VARIANTS = ((1, 0.0), (4, 0.0), (4, 0.3))


@pytest.fixture(scope="module")
def tiny():
    return ovf.measure_overfitting(SIZES, steps=6, seeds=SEEDS, variants=VARIANTS, n_test=30,
                                   log=None)


def _without_times(result):
    return [{k: v for k, v in r.items() if k != "cpu_seconds"} for r in result["runs"]]


def test_returns_a_plain_dict_with_one_run_per_size_seed_and_variant(tiny):
    assert set(tiny) == {"settings", "runs", "summary", "wall_seconds", "cpu_seconds"}
    assert tiny["settings"]["sizes"] == list(SIZES) and tiny["settings"]["steps"] == 6
    assert len(tiny["runs"]) == len(SIZES) * len(SEEDS) * len(VARIANTS)
    combos = {(r["seed"], r["heads"], r["attn_dropout"], r["n_train"]) for r in tiny["runs"]}
    assert len(combos) == len(tiny["runs"])
    assert {r["train_steps"] for r in tiny["runs"]} == {6}          # the same steps for every run


def test_every_measure_is_in_range(tiny):
    for r in tiny["runs"]:
        for key in ("train_accuracy", "test_accuracy", "heldout_pair_accuracy"):
            assert 0.0 <= r[key] <= 1.0, (key, r)
        assert r["gap"] == pytest.approx(r["train_accuracy"] - r["test_accuracy"])
        for split in ("train", "test"):
            assert r[f"entropy_{split}"] > 0
            assert 0 < r[f"relative_entropy_{split}"] <= 1 + 1e-5
            assert len(r[f"entropy_{split}_per_layer"]) == 2
        assert 0.0 <= r["test_seen_in_training"] <= 1.0
        assert np.isfinite(r["final_loss"])


def test_summary_has_every_variant_size_and_paired_effect(tiny):
    table, effects = tiny["summary"]["table"], tiny["summary"]["effects"]
    assert len(table) == len(VARIANTS)
    for rows in table.values():
        assert list(rows) == [str(n) for n in SIZES]
        for row in rows.values():
            assert row["test_accuracy_min"] <= row["test_accuracy"] <= row["test_accuracy_max"]
    assert tiny["summary"]["effects_vs"] == "4 heads, attention dropout 0"
    assert set(effects) == {"1 head, attention dropout 0", "4 heads, attention dropout 0.3"}
    for per_size in effects.values():
        assert all(len(e["per_seed"]) == len(SEEDS) for e in per_size.values())
    for lang in ("en", "zh"):
        assert len(ovf.remedy_lines(tiny, lang)) == 2
    head = ovf.headline(tiny)
    assert head["largest_gap"] == max(r["gap"] for rows in table.values() for r in rows.values())
    assert set(head["largest_change"]) == set(effects)
    assert head["entropy_train_test_difference"] >= 0 and head["entropy_spread_between_models"] >= 0


def test_the_same_seeds_give_the_same_numbers_in_one_or_two_workers(tiny):
    again = ovf.measure_overfitting(SIZES[:1], steps=6, seeds=SEEDS[:1], variants=VARIANTS,
                                    n_test=30, workers=2, log=None)
    first = [r for r in _without_times(tiny) if r["seed"] == 0 and r["n_train"] == SIZES[0]]
    assert _without_times(again) == first


def test_attention_entropy_uniform_one_hot_and_padding():
    lengths = np.array([3, 5])
    T = 5
    uniform = np.zeros((2, 2, T, T))
    one_hot = np.zeros((2, 2, T, T))
    for n, length in enumerate(lengths):
        uniform[n, :, :length, :length] = 1.0 / length
        one_hot[n, :, :length, 0] = 1.0
    uniform[0, :, 3:, :] = 0.7          # padded query rows: must not count
    H = ovf.attention_entropy([uniform, one_hot], lengths)                 # (L, H)
    assert H.shape == (2, 2)
    np.testing.assert_allclose(H[0], np.mean(np.log(lengths)))
    np.testing.assert_allclose(H[1], 0.0, atol=1e-12)
    np.testing.assert_allclose(ovf.attention_entropy([uniform], lengths, relative=True), 1.0)


def test_verdict_needs_every_seed_to_agree_and_a_change_above_the_noise():
    assert ovf.verdict([0.01, 0.02]) == "helped"
    assert ovf.verdict([-0.01, -0.02]) == "hurt"
    assert ovf.verdict([0.05, -0.01]) == "noise"          # the seeds disagree on the sign
    assert ovf.verdict([0.002, 0.004]) == "noise"         # below one percentage point
    assert ovf.verdict([0.01, 0.06]) == "noise"           # the seeds disagree by more than the mean
    assert ovf.verdict([0.05]) == "one seed"


def test_empty_sizes_are_refused():
    with pytest.raises(ValueError, match="sizes"):
        ovf.measure_overfitting((), steps=5, seeds=(0,), log=None)
