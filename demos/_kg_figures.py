"""Figures of the knowledge-graph demo: neighbourhoods drawn with their attention, attention
mass per relation and head, and the accuracy table."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from demos._common import Figure, save_figure
from demos._kg_data import FIELDS, INFORMATIVE, RELATIONS, TYPES, KnowledgeGraph

TYPE_COLOURS = {"person": "#4c72b0", "company": "#dd8452", "city": "#55a868"}
MODEL_NAMES = {"mlp": "MLP (no graph)", "mean_aggregation": "mean aggregation",
               "gat": "GAT", "relation_gat": "relation-aware GAT"}


def _predictions(trained, kg: KnowledgeGraph, kind: str):
    from demos.knowledge_graph import model_forward
    cfg, params = trained[kind]
    logits, weights, _ = model_forward(cfg, params, kg, kg.test)
    return logits.argmax(-1), weights.mean(axis=0)                      # (n,), α (E,) over heads


def _examples(kg: KnowledgeGraph, predicted: np.ndarray, n_right: int = 3) -> list[int]:
    """Positions in kg.test of ``n_right`` correct predictions and one wrong one, among people
    with 6 to 9 neighbours (readable drawings)."""
    degree = np.bincount(kg.edges[0], minlength=len(kg.field))[kg.test]
    right = predicted == kg.field[kg.test]
    readable = (degree >= 6) & (degree <= 9)
    return [*np.flatnonzero(readable & right)[:n_right], np.flatnonzero(readable & ~right)[0]]


def _draw_one(ax, kg: KnowledgeGraph, node: int, alpha: np.ndarray, predicted: int, cmap,
              vmax: float):
    import networkx as nx
    on = np.flatnonzero(kg.edges[0] == node)
    nbrs, a, rel = kg.edges[1, on], alpha[on], kg.relation[on]
    graph = nx.DiGraph()
    graph.add_node(node)
    graph.add_edges_from((node, int(j)) for j in nbrs)
    angles = 2 * np.pi * np.arange(len(nbrs)) / len(nbrs) + np.pi / 2
    pos = {node: (0.0, 0.0)} | {int(j): (np.cos(t), np.sin(t)) for j, t in zip(nbrs, angles)}
    edgelist = [(node, int(j)) for j in nbrs]
    nx.draw_networkx_edges(graph, pos, edgelist=edgelist, ax=ax, width=1 + 9 * a,
                           edge_color=a, edge_cmap=cmap, edge_vmin=0, edge_vmax=vmax,
                           arrows=False)
    colours = [TYPE_COLOURS[TYPES[kg.node_type[n]]] for n in graph.nodes]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_color=colours, node_size=520,
                           edgecolors="black", linewidths=[2.5] + [0.5] * len(nbrs))
    labels = {int(j): FIELDS[kg.field[j]][:3] for j in nbrs} | {node: "?"}
    nx.draw_networkx_labels(graph, pos, labels, ax=ax, font_size=8, font_color="white",
                            font_weight="bold")
    for j, t, r, w in zip(nbrs, angles, rel, a):
        x, y = 1.42 * np.cos(t), 1.42 * np.sin(t)
        ax.text(x, y, f"{RELATIONS[r]}\nα={w:.2f}", ha="center", va="center", fontsize=7.5,
                color="black" if INFORMATIVE[r] else "#888888",
                fontweight="bold" if INFORMATIVE[r] else "normal")
    ok = predicted == kg.field[node]
    ax.set_title(f"person {node}: {FIELDS[kg.field[node]]}, predicted {FIELDS[predicted]} "
                 f"({'right' if ok else 'WRONG'})", fontsize=10, color="black" if ok else "#c0392b")
    ax.set_xlim(-1.85, 1.85)
    ax.set_ylim(-1.75, 1.75)
    ax.set_aspect("equal")
    ax.axis("off")


def neighbourhoods(trained, kg: KnowledgeGraph, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D
    predicted, alpha = _predictions(trained, kg, "relation_gat")
    cmap = plt.get_cmap("viridis_r")
    examples = _examples(kg, predicted)
    shown = np.isin(kg.edges[0], kg.test[examples])
    vmax = float(np.ceil(alpha[shown].max() * 10) / 10)                # colour range in use
    fig, axes = plt.subplots(2, 2, figsize=(11, 10.5), layout="constrained")
    for ax, k in zip(axes.flat, examples):
        _draw_one(ax, kg, int(kg.test[k]), alpha, int(predicted[k]), cmap, vmax)
    handles = [Line2D([], [], marker="o", ls="", ms=10, mfc=c, mec="black", label=t)
               for t, c in TYPE_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, title="entity type "
               "(label: its true field — the model sees only a noisy signal of it; bold "
               "relations carry the answer)")
    fig.colorbar(ScalarMappable(plt.Normalize(0, vmax), cmap), ax=axes, shrink=0.5,
                 label="attention α (mean over heads); also the edge width")
    fig.suptitle("Relation-aware GAT: where held-out people look (3 right, 1 wrong)")
    return save_figure(fig, out, "knowledge_graph/neighbourhoods.png",
                       "Each panel: a held-out person (centre, field hidden) and its neighbours. "
                       "Edge width and colour are the attention the relation-aware GAT gives "
                       "each neighbour (mean over 4 heads); node labels are the neighbour's true "
                       "field (for a city, the field it is known for), of which the model sees "
                       "only a noisy signal. The weight goes to "
                       "works_at and colleague_of; cities and followed people get little.",
                       "Attention over a neighbourhood",
                       caption_zh="每幅子图：一个留出的人（居中，领域隐藏，标为“?”）及其邻居。边的"
                                  "粗细和颜色表示关系感知 GAT 给每个邻居的注意力（4 个头的平均）；"
                                  "节点标签是邻居的真实领域（城市则是它以之闻名的领域），模型只能"
                                  "看到它带噪声的信号。权重集中在 works_at 和 colleague_of 上；"
                                  "城市和被关注的人（follows）分到的很少。",
                       title_zh="邻域上的注意力")


def relation_bars(trained, kg: KnowledgeGraph, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    from demos.knowledge_graph import mass_per_relation, model_forward
    on = np.isin(kg.edges[0], kg.test)
    degree = np.bincount(kg.edges[0], minlength=len(kg.field))
    uniform = np.bincount(kg.relation[on], weights=1.0 / degree[kg.edges[0, on]],
                          minlength=len(RELATIONS)) / len(kg.test)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True, layout="constrained")
    for ax, kind in zip(axes, ("gat", "relation_gat")):
        cfg, params = trained[kind]
        mass = mass_per_relation(model_forward(cfg, params, kg, kg.test)[1], kg, kg.test)
        H, R = mass.shape
        width = 0.8 / H
        for h in range(H):
            ax.bar(np.arange(R) + (h - (H - 1) / 2) * width, mass[h], width,
                   label=f"head {h + 1}", color=plt.get_cmap("tab10")(h))
        ax.hlines(uniform, np.arange(R) - 0.45, np.arange(R) + 0.45, colors="black",
                  linestyles="--", label="uniform (mean aggregation)")
        ax.set_xticks(np.arange(R), RELATIONS)
        for tick, informative in zip(ax.get_xticklabels(), INFORMATIVE):
            tick.set_fontweight("bold" if informative else "normal")
            tick.set_color("black" if informative else "#777777")
        ax.set_title(f"{MODEL_NAMES[kind]}: informative share "
                     f"{mass[:, INFORMATIVE].sum(1).mean():.2f}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("attention mass per held-out person")
    axes[1].legend(fontsize=8)
    return save_figure(fig, out, "knowledge_graph/attention_per_relation.png",
                       "Mean attention mass a held-out person puts on each relation type, per "
                       "head (bold: relations that carry the answer). The dashed lines are "
                       "what uniform weights (mean aggregation) would give. GAT can only see "
                       "the neighbour's features: it drops cities but cannot separate colleagues "
                       "from followed people; the relation-aware layer can.",
                       "Attention mass per relation and head",
                       caption_zh="留出的人在每种关系类型上的平均注意力总量，每个头分别画出（粗体："
                                  "携带答案的关系）。虚线是均匀权重（均值聚合）会给出的值。GAT 只能"
                                  "看到邻居的特征：它会撇开城市，却分不开同事和被关注的人；关系感知"
                                  "层则分得开。",
                       title_zh="各关系、各头的注意力总量")


def accuracy_table(metrics: dict, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    chance = metrics["chance"]
    share = {"mlp": "—", "mean_aggregation": f"{chance['attention_on_informative']:.2f} (uniform)"}
    rows = [[MODEL_NAMES[k], f"{metrics[k]['test_accuracy']:.3f}",
             f"{metrics[k]['train_accuracy']:.3f}",
             share.get(k) or f"{metrics[k].get('attention_on_informative', 0):.2f}"]
            for k in MODEL_NAMES]
    rows.append(["chance / uniform weights", f"{chance['accuracy']:.3f}", "",
                 f"{chance['attention_on_informative']:.2f}"])
    rows.append(["ideal vote (knows the generator)", f"{metrics['ideal_vote_accuracy']:.3f}",
                 "", ""])
    fig, ax = plt.subplots(figsize=(9.5, 3.2))
    ax.axis("off")
    table = ax.table(rows, colLabels=["model", "test\naccuracy", "train\naccuracy",
                                      "attention on\ninformative relations"], loc="center",
                     cellLoc="center", colWidths=[0.38, 0.16, 0.16, 0.3])
    table.auto_set_font_size(False)
    table.set_fontsize(11)
    table.scale(1, 1.8)
    for (r, _), cell in table.get_celld().items():
        if r == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_height(cell.get_height() * 1.7)
        if r > len(MODEL_NAMES):
            cell.set_text_props(color="#666666")
    ax.set_title(f"Field of {metrics['held_out_people']} held-out people ({len(FIELDS)} "
                 f"fields), {metrics['train_steps']} full-batch AdamW steps each", fontsize=12)
    return save_figure(fig, out, "knowledge_graph/accuracy.png",
                       "Test accuracy on held-out people for the four models with the same "
                       "budget, and the attention mass on informative relations.",
                       "Accuracy table",
                       caption_zh="训练预算相同的四个模型在留出人员上的测试准确率，以及它们放在"
                                  "有信息量的关系上的注意力总量。",
                       title_zh="准确率表")
