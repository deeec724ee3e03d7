"""Chapter 1's timeline of where attention came from (article §1.1): the papers this site
implements, in the order they appeared (first public version), drawn at build time."""
from __future__ import annotations

# (year, short name drawn in the figure, lane: what kind of idea)
EVENTS = [
    (2014, "alignment in translation (Bahdanau et al.)", "sequence models"),
    (2015, "global and local attention (Luong et al.)", "sequence models"),
    (2015, "Show, Attend and Tell (Xu et al.)", "beyond text"),
    (2015, "Pointer Networks (Vinyals et al.)", "sequence models"),
    (2015, "attention for speech (Chorowski et al.)", "beyond text"),
    (2015, "Listen, Attend and Spell (Chan et al.)", "beyond text"),
    (2017, "the Transformer (Vaswani et al.)", "Transformers"),
    (2017, "Graph Attention Networks", "beyond text"),
    (2017, "Deep Interest Network", "beyond text"),
    (2018, "GPT; BERT", "Transformers"),
    (2020, "ViT (Dosovitskiy et al.)", "beyond text"),
    (2021, "RoFormer / RoPE", "Transformers"),
    (2021, "transformer circuits (Elhage et al.)", "understanding"),
    (2022, "FlashAttention (Dao et al.)", "Transformers"),
    (2022, "induction heads (Olsson et al.)", "understanding"),
]
LANES = ["sequence models", "beyond text", "Transformers", "understanding"]


def draw(ax=None):
    """A timeline, one lane per kind of idea, one dot and label per event."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.2), layout="constrained")
    seen = {}
    for year, name, lane in EVENTS:
        y = LANES.index(lane)
        k = seen.get((year, lane), 0)
        seen[(year, lane)] = k + 1
        ax.plot(year, y, "o", color=f"C{y}", ms=7)
        ax.annotate(name, (year, y), xytext=(4, 7 + 11 * k), textcoords="offset points",
                    fontsize=7.5, rotation=12, color=f"C{y}")
    ax.set_yticks(range(len(LANES)), LANES)
    ax.set_xticks(range(2014, 2023))
    ax.set_xlim(2013.6, 2023.4)
    ax.set_ylim(-0.6, len(LANES) - 0.1)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("where attention came from: the papers this site implements")
    return ax
