"""Graph attention's public entries (attention_np.graph: its attention and edges modules)
for the bad-input table (tests/test_bad_input.py collects this module through
tests/bad_input_table.py).

Letters as in tests/public_entries.py: K nodes, F input features, H heads, L features per head
(M = H·L = 2H), R relation types. H, M and L are also fixed by the literal ``num_heads``.
"""
from __future__ import annotations

import numpy as np

from attention_np.graph import attention as ga, edges as ge

gr = ga                                     # relation-aware GAT lives beside GAT
from tests.public_entries import Entry, _cache_bwd

GAT = {"W": "f:FM", "a_src": "f:HL", "a_dst": "f:HL", "b": "f:M"}
BAD_LITERALS = {"num_heads": [0, 4], "concat": ["yes"], "negative_slope": [float("nan")]}


def _rng():
    return np.random.default_rng(0)


# E = 7 edges (i, j) over K = 5 nodes, shuffled, node 4 attended by nobody.
EDGE_LIST = np.array([[3, 0, 1, 2, 0, 3, 1], [4, 1, 0, 2, 2, 0, 4]])
BAD_EDGES = {"edges": [EDGE_LIST.astype(float), EDGE_LIST[:, :, None], EDGE_LIST + 5,
                       np.array([[0, 0, 1, 2, 0, 3, 1], [1, 1, 0, 2, 2, 0, 4]])],   # (0, 1) twice
             "num_nodes": [-1, 2.5]}

ENTRIES = [
    Entry("edge_softmax", ge.edge_softmax_forward,
          {"scores": "f:HE", "edges": EDGE_LIST, "num_nodes": 5},
          _cache_bwd(ge.edge_softmax_backward), tied="E", bad_literals=BAD_EDGES),
    Entry("gat", ga.gat_forward,
          {"x": "f:KF", "adj": "b:KK", "params": GAT, "num_heads": 3},
          _cache_bwd(ga.gat_backward), tied="HML", bad_literals=BAD_LITERALS),
    Entry("relation_gat", gr.relation_gat_forward,
          {"x": "f:KF", "adj": "b:KK", "relations": "iR:KK",
           "params": GAT | {"a_rel": "f:HL", "rel": "f:RM"}, "num_heads": 3},
          _cache_bwd(gr.relation_gat_backward), tied="HML", bad_literals=BAD_LITERALS),
]

# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("init_gat_params-num_heads", ga.init_gat_params,
     lambda: ga.init_gat_params(3, 2, 0, _rng()), ["num_heads"]),
    ("init_gat_params-rng", ga.init_gat_params, lambda: ga.init_gat_params(3, 2, 2, None),
     ["rng"]),
    ("init_relation_gat_params-num_relations", gr.init_relation_gat_params,
     lambda: gr.init_relation_gat_params(3, 2, 2, 0, _rng()), ["num_relations"]),
    ("gat-adj-edge-list-range", ga.gat_forward,
     lambda: ga.gat_forward(np.ones((3, 2)), np.array([[0, 1], [2, 3]]),
                            ga.init_gat_params(2, 2, 1, _rng()), 1), ["adj"]),
    ("gat-adj-edge-list-duplicate", ga.gat_forward,
     lambda: ga.gat_forward(np.ones((3, 2)), np.array([[0, 0], [2, 2]]),
                            ga.init_gat_params(2, 2, 1, _rng()), 1), ["adj"]),
    ("check_edges-adj", ge.check_edges, lambda: ge.check_edges(np.ones((2, 3), bool), 2),
     ["adj"]),
    ("check_relations-relations", ge.check_relations,
     lambda: ge.check_relations(np.zeros((2, 2)), ge.check_edges(np.eye(2, dtype=bool), 2), 3),
     ["relations"]),
]

# Edges is what check_edges returns, reached by every entry above.
REACHED_THROUGH_WRAPPERS = [ge.Edges]

MODULES = [(ga, None), (ge, None)]
