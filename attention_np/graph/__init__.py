"""Graph attention (article §8.1.1: attention combined with knowledge graphs).

    attention   GAT (Veličković et al., 2018) and relation-aware GAT for knowledge graphs:
                soft attention over each node's neighbours, with hand-written backward passes
    edges       the edge list both layers work from, and the O(E) operations on it (a softmax
                over each node's incoming edges — public as edge_softmax_forward / _backward —
                and a weighted sum over each node's neighbours)

    from attention_np.graph import gat_forward, gat_backward
    out, weights, cache = gat_forward(x, adj, params, num_heads=2)     # adj (N, N) or (2, E)
"""
from attention_np.graph.attention import (gat_backward, gat_forward, init_gat_params,
                                          init_relation_gat_params, relation_gat_backward,
                                          relation_gat_forward)
from attention_np.graph.edges import (Edges, check_edges, check_relations,
                                      edge_softmax_backward, edge_softmax_forward)

__all__ = ["init_gat_params", "gat_forward", "gat_backward", "init_relation_gat_params",
           "relation_gat_forward", "relation_gat_backward", "edge_softmax_forward",
           "edge_softmax_backward", "Edges", "check_edges", "check_relations"]
