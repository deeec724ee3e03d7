"""attention_np.viz figures: they render, have the right number of panels, survive odd inputs."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from attention_np.viz import (animate_decoding, attention_atlas, plot_alignment,  # noqa: E402
                              plot_head_stats, plot_heads, plot_heatmap, plot_image_attention,
                              upsample_attention)
from attention_np.viz.examples import example_attention  # noqa: E402


def image_panels(fig):
    return [ax for ax in fig.axes if ax.images]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [1, 7])
def test_heatmap_saves_png_and_svg(tmp_path, dtype, T):
    w = example_attention(1, 1, T, dtype=dtype)[0, 0]
    fig = plot_heatmap(w, [f"q{i}" for i in range(T)], [f"k{i}" for i in range(T)], title="t")
    assert len(image_panels(fig)) == 1
    for ext in ("png", "svg"):
        fig.savefig(tmp_path / f"h.{ext}")
        assert (tmp_path / f"h.{ext}").stat().st_size > 1000
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [f"k{i}" for i in range(T)]


def test_heatmap_thins_labels_past_60_tokens_and_draws_into_given_axes():
    T = 200
    fig, ax = plt.subplots()
    out = plot_heatmap(example_attention(1, 1, T)[0, 0], [f"t{i}" for i in range(T)],
                       [f"t{i}" for i in range(T)], ax=ax)
    assert out is fig
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 30 <= len(labels) <= 60 and labels[:2] == ["t0", "t4"]
    with pytest.raises(ValueError, match="row_labels"):
        plot_heatmap(np.ones((3, 3)), ["a"], None)


@pytest.mark.parametrize("shape,panels", [((5, 6, 6), 5), ((12, 4, 4), 12), ((3, 4, 6, 6), 12),
                                          ((1, 1, 1, 1), 1), ((2, 2, 70, 70), 4)])
def test_plot_heads_panel_count(shape, panels):
    a = example_attention(*(shape if len(shape) == 4 else (1, *shape[:1], shape[-1])))
    a = a.reshape(shape).astype(np.float32)
    fig = plot_heads(a, [f"w{i}" for i in range(shape[-1])])
    assert len(image_panels(fig)) == panels
    fig.canvas.draw()


def test_plot_heads_cross_attention_needs_key_labels():
    a = np.full((2, 3, 5), 0.2)
    fig = plot_heads(a, list("abc"), key_tokens=list("vwxyz"))
    assert len(image_panels(fig)) == 2
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("vwxyz")


def test_alignment_marks_argmax():
    w = np.eye(4)[[1, 0, 3, 2]] * 0.7 + 0.075
    fig = plot_alignment(w, list("abcd"), ["w", "x", "y", "z"])
    dots = fig.axes[0].lines[0]
    np.testing.assert_array_equal(dots.get_xdata(), [1, 0, 3, 2])
    assert fig.axes[0].get_xlabel() == "source"


def test_head_stats_has_six_panels():
    a = example_attention(2, 6, 9)
    tokens = ["[CLS]"] + list("abcdefg") + ["[SEP]"]
    fig = plot_head_stats(a, tokens)
    assert len(image_panels(fig)) == 6
    assert image_panels(fig)[0].images[0].get_array().shape == (2, 6)
    assert len(image_panels(plot_head_stats(a[0, :, :1, :1], ["x"]))) == 6


def test_upsample_attention_keeps_the_peak():
    grid = np.zeros((7, 7))
    grid[2, 5] = 1
    up = upsample_attention(grid, (70, 140))
    assert up.shape == (70, 140) and up.min() == 0 and up.max() == 1
    y, x = np.unravel_index(up.argmax(), up.shape)
    assert abs(y - 25) <= 5 and abs(x - 110) <= 10
    assert not upsample_attention(np.full((3, 3), 0.1), (9, 9)).any()


def test_image_attention_one_panel_per_word():
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(16), size=7).astype(np.float32)
    fig = plot_image_attention(rng.random((32, 32, 3)), w, list("abcdefg"), (4, 4))
    assert len(image_panels(fig)) == 7
    assert fig.axes[3].get_title().startswith("d")
    with pytest.raises(ValueError, match="grid_shape"):
        plot_image_attention(np.ones((8, 8)), w, list("abcdefg"), (3, 4))


def test_animate_decoding_writes_one_frame_per_step(tmp_path):
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(5), size=4)
    path = animate_decoding(w, tmp_path / "a.gif", list("abcde"), ["w", "x", "y", "z"], fps=5)
    assert Image.open(path).n_frames == 4
    g = rng.dirichlet(np.ones(9), size=3)
    path = animate_decoding(g, tmp_path / "b.gif", image=np.ones((12, 12)), grid_shape=(3, 3))
    assert Image.open(path).n_frames == 3


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_attention_atlas_one_series_per_class_and_kind(method):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 8))
    labels = np.repeat(["h0", "h1", "h2"], 20)
    kinds = np.tile(["query", "key"], 30)
    fig = attention_atlas(x, labels, kinds=kinds, method=method, tsne_options={"max_iter": 250})
    assert len(fig.axes[0].collections) == 6
    assert len(attention_atlas(x, labels).axes[0].collections) == 3
