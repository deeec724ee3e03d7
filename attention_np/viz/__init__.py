"""See what attention does: static figures, numbers about heads, offline interactive views and
converters to CircuitsVis / BertViz. All inputs are plain NumPy arrays (float32 or float64).

* static figures (matplotlib, return the Figure): :func:`plot_heatmap`, :func:`plot_heads`,
  :func:`plot_alignment`, :func:`plot_image_attention`, :func:`plot_head_stats`,
  :func:`attention_atlas`; :func:`animate_decoding` writes a GIF.
* analysis (NumPy): :func:`attention_rollout`, :func:`attention_flow`, :func:`head_entropy`,
  :func:`head_summary`, :func:`project_2d`.
* interactive HTML (self-contained, offline): :func:`head_view_html`, :func:`model_view_html`.
* interop: :func:`to_circuitsvis`, :func:`to_bertviz`.
"""
from attention_np.viz.analysis import (attention_flow, attention_rollout, head_entropy,
                                       head_summary, residual_attention)
from attention_np.viz.animate import animate_decoding
from attention_np.viz.atlas import align_queries_keys, attention_atlas, project_2d
from attention_np.viz.html import head_view_html, model_view_html
from attention_np.viz.image import plot_image_attention, upsample_attention
from attention_np.viz.interop import to_bertviz, to_circuitsvis
from attention_np.viz.static import plot_alignment, plot_head_stats, plot_heads, plot_heatmap

__all__ = [
    "plot_heatmap", "plot_heads", "plot_alignment", "plot_image_attention", "plot_head_stats",
    "animate_decoding", "attention_rollout", "attention_flow", "residual_attention",
    "head_entropy", "head_summary", "attention_atlas", "project_2d", "align_queries_keys",
    "upsample_attention", "head_view_html", "model_view_html", "to_circuitsvis", "to_bertviz",
]
