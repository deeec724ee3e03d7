"""A generated knowledge graph for the graph-attention demo (demos/knowledge_graph.py).

Entities of three types — people, companies, cities — and five relations, each from a person
(the query) to a neighbour. The task: predict a person's field of work (one of FIELDS).

    relation       neighbour   carries the answer?
    works_at       company     yes: the company is in the person's field
    colleague_of   person      yes: a colleague works in the same field
    lives_in       city        no:  each city has a field it is known for, unrelated to the person
    visited        city        no:  (the same, more edges)
    follows        person      no:  a random person, in any field

Every entity has a noisy "field signal" among its features: a weak one for people (their own
field), a strong one for companies (their field) and cities (the field the city is known for,
which says nothing about its residents). So a person's own features say a little; the
informative neighbours say much more; the noisy neighbours say loud, wrong things. Averaging
all neighbours (mean aggregation) lets cities drown the company; attention that looks at the
neighbour's type (GAT) can skip cities but cannot tell a colleague from a followed stranger
(both are people); attention that sees the relation can keep exactly the informative edges.

Features (N, 3 + 5 + NOISE_DIMS): entity type one-hot, field signal s·onehot(field) + N(0, 1),
pure-noise dimensions. Edges: an integer (2, E) list of (person i, neighbour j) columns, i
attends to j; companies and cities attend to nobody. Everything is seeded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIELDS = ("biology", "physics", "finance", "music", "law")
TYPES = ("person", "company", "city")
RELATIONS = ("works_at", "colleague_of", "lives_in", "visited", "follows")
INFORMATIVE = np.array([True, True, False, False, False])    # per relation, in RELATIONS order
NOISE_DIMS = 4


@dataclass(frozen=True)
class KGConfig:
    """Sizes and signal strengths of the generated graph."""
    people: int = 2000
    companies: int = 400              # about five people per company
    cities: int = 40
    person_signal: float = 1.0        # s of a person's own field signal
    company_signal: float = 1.5       # s of a company's field signal
    city_signal: float = 2.5          # s of the signal of the field a city is known for
    colleagues: float = 2.0           # mean extra colleagues (one at least, if the field has one)
    visited: float = 2.0              # mean number of visited cities (besides lives_in)
    follows: float = 3.0              # mean number of followed people


@dataclass(frozen=True)
class KnowledgeGraph:
    features: np.ndarray      # (N, d) float
    node_type: np.ndarray     # (N,) index into TYPES
    field: np.ndarray         # (N,) person: field; company: field; city: the field known for
    edges: np.ndarray         # (2, E) int: (i, j) columns, i a person attending to j
    relation: np.ndarray      # (E,) index into RELATIONS
    people: np.ndarray        # (P,) node ids of the people (nodes 0 … P − 1)
    train: np.ndarray         # node ids of people whose field is known in training
    test: np.ndarray          # held-out people

    @property
    def informative(self) -> np.ndarray:
        """(E,) bool: the edge's relation carries the answer."""
        return INFORMATIVE[self.relation]


def _others(rng, pool: np.ndarray, exclude: int, k: int) -> np.ndarray:
    """k distinct members of ``pool`` other than ``exclude`` (fewer if the pool is small)."""
    pool = pool[pool != exclude]
    return rng.choice(pool, size=min(k, len(pool)), replace=False)


def _person_edges(rng, cfg: KGConfig, p: int, field: np.ndarray, ids: dict):
    """(neighbour ids, relation ids) of person p: one company of its field, colleagues, one
    home city, visited cities, followed people; no neighbour twice."""
    same_field = ids["person"][field[ids["person"]] == field[p]]
    companies = ids["company"][field[ids["company"]] == field[p]]
    home = rng.choice(ids["city"])
    visited = _others(rng, ids["city"], home, rng.poisson(cfg.visited))
    colleagues = _others(rng, same_field, p, 1 + rng.poisson(cfg.colleagues))
    follows = _others(rng, np.setdiff1d(ids["person"], colleagues), p, rng.poisson(cfg.follows))
    groups = [[rng.choice(companies)], colleagues, [home], visited, follows]   # RELATIONS order
    nbrs = np.concatenate([np.asarray(g, int) for g in groups])
    rels = np.concatenate([np.full(len(g), r) for r, g in enumerate(groups)])
    return nbrs, rels


def make_graph(cfg: KGConfig = KGConfig(), seed: int = 0,
               test_share: float = 0.4) -> KnowledgeGraph:
    """The seeded graph: people 0 … P − 1, then companies, then cities."""
    rng = np.random.default_rng(seed)
    counts = (cfg.people, cfg.companies, cfg.cities)
    node_type = np.repeat(np.arange(3), counts)                         # (N,)
    N, C = len(node_type), len(FIELDS)
    ids = {t: np.flatnonzero(node_type == k) for k, t in enumerate(TYPES)}
    field = rng.integers(0, C, N)
    field[ids["company"]] = np.arange(cfg.companies) % C                # every field has companies
    nbrs, rels = zip(*(_person_edges(rng, cfg, p, field, ids) for p in ids["person"]))
    dst = np.repeat(ids["person"], [len(n) for n in nbrs])
    edges = np.stack([dst, np.concatenate(nbrs)])                       # (2, E)
    strength = np.array([cfg.person_signal, cfg.company_signal, cfg.city_signal])[node_type]
    signal = strength[:, None] * np.eye(C)[field] + rng.standard_normal((N, C))
    features = np.concatenate([np.eye(3)[node_type], signal,
                               rng.standard_normal((N, NOISE_DIMS))], axis=1)
    order = rng.permutation(ids["person"])
    n_test = int(round(test_share * len(order)))
    return KnowledgeGraph(features, node_type, field, edges, np.concatenate(rels),
                          ids["person"], np.sort(order[n_test:]), np.sort(order[:n_test]))


def ideal_vote(kg: KnowledgeGraph, cfg: KGConfig, nodes: np.ndarray) -> np.ndarray:
    """The prediction of someone who knows how the graph was made: argmax over fields of the
    signal-weighted sum s·signal of the person's own and its informative neighbours' field
    signals (the noisy neighbours are independent of the answer). Predicted fields (n,)."""
    C = len(FIELDS)
    signal = kg.features[:, 3:3 + C]                                    # (N, C)
    weight = np.array([cfg.person_signal, cfg.company_signal, cfg.city_signal])[kg.node_type]
    vote = weight[:, None] * signal                                     # (N, C)
    keep = kg.informative                                               # (E,)
    total = vote.copy()
    np.add.at(total, kg.edges[0, keep], vote[kg.edges[1, keep]])
    return total[nodes].argmax(axis=1)
