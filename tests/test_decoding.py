"""attention_np.decoding: greedy and beam search driven by small hand-made step functions."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.decoding import beam_search, greedy_decode

PAD, START, END = 0, 1, 2


def _markov_step(table):
    """Next-word log-probabilities depend on the previous word only; attention (N, 1) = 1."""
    def step(tokens, state, context):
        return table[tokens], state, np.ones((len(tokens), 1))
    return step


def _table_step(tables, calls):
    """Row r's next-word log-probabilities at step t are tables[r, t, previous word]: they
    depend on the step number, carried in the state (a beam that did not follow its parent's
    state would get the wrong ones), and on the row, whose index is the context. Attention is
    one-hot on the step number; ``calls`` records the steps run."""
    def step(tokens, state, context):
        t, rows = state[0], context[0]                              # (N,) each
        calls.append(len(tokens))
        alpha = np.eye(tables.shape[1])[t]                          # (N, T)
        return tables[rows, t, tokens], (t + 1,), alpha
    return step


def _random_tables(rng, R, T, V):
    """(R, T, V, V) log-probabilities that never pick <pad> or <start> as the next word."""
    logp = np.log(rng.dirichlet(np.ones(V - 2) * 0.5, size=(R, T, V)))
    return np.concatenate([np.full((R, T, V, 2), -np.inf), logp], axis=3)


def _impossible(T, V=6):
    """A (1, T, V, V) table with every transition impossible, for filling in by hand."""
    return np.full((1, T, V, V), -np.inf)


def _score(table, seq):
    """Σ log p of one row's sequence up to and including its first <end>; table (T, V, V)."""
    s, prev = 0.0, START
    for t, w in enumerate(seq):
        s, prev = s + table[t, prev, w], w
        if w == END:
            break
    return s


def _search(tables, K=None, calls=None):
    """Greedy (K None) or beam search over all rows of ``tables``, max_len = T."""
    R, T = tables.shape[:2]
    args = (_table_step(tables, [] if calls is None else calls), (np.zeros(R, np.int64),),
            (np.arange(R),), START, END)
    if K is None:
        return greedy_decode(*args, max_len=T, pad=PAD)
    return beam_search(*args, beam_size=K, max_len=T, pad=PAD)


def test_beam_search_finds_the_best_caption_of_a_markov_model():
    rng = np.random.default_rng(0)
    V, T = 5, 3                                      # word 1 = <start>, 2 = <end>
    table = np.log(rng.dirichlet(np.ones(V) * 0.5, size=V))
    table[:, 0] = table[:, 1] = -np.inf               # never <pad> or <start>

    def score(seq):
        s, prev = 0.0, 1
        for w in seq:
            s, prev = s + table[prev, w], w
            if w == 2:
                break
        return s
    best = max(itertools.product(range(2, V), repeat=T), key=score)
    n_best = best.index(2) + 1 if 2 in best else T
    tokens, _, top = beam_search(_markov_step(table), (np.zeros((1, 1)),), (np.zeros((1, 1)),),
                                 start=1, end=2, beam_size=V * V, max_len=T)
    assert np.isclose(top[0], score(best))
    assert list(tokens[0, :n_best]) == list(best[:n_best])
    greedy, _, _ = beam_search(_markov_step(table), (np.zeros((1, 1)),), (np.zeros((1, 1)),),
                               start=1, end=2, beam_size=1, max_len=T)
    prev = 1
    for w in greedy[0]:
        if w == 0:
            break
        assert w == table[prev].argmax()
        prev = w


@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 4), V=st.integers(3, 6))
def test_beam_search_with_one_beam_is_greedy(seed, T, V):
    tables = _random_tables(np.random.default_rng(seed), 3, T, V)
    tokens, attention = _search(tables)
    beam_tokens, beam_attention, score = _search(tables, K=1)
    np.testing.assert_array_equal(beam_tokens, tokens)
    np.testing.assert_array_equal(beam_attention, attention)
    for r in range(3):
        assert score[r] == pytest.approx(_score(tables[r], tokens[r]))


@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 4), V=st.integers(3, 5))
def test_a_wide_beam_finds_the_best_sequence_and_its_score(seed, T, V):
    """With K ≥ V^T beams nothing is pruned: every row gets its exhaustive optimum, and the
    score is the sum of the step log-probabilities up to <end> (the state followed each beam,
    the context stayed with its row)."""
    tables = _random_tables(np.random.default_rng(seed), 2, T, V)
    tokens, _, score = _search(tables, K=V ** T)
    for r in range(2):
        best = max(_score(tables[r], seq) for seq in itertools.product(range(V), repeat=T))
        assert score[r] == pytest.approx(best)
        assert _score(tables[r], tokens[r]) == pytest.approx(best)


def test_beam_search_finds_a_sequence_greedy_misses():
    """Greedy takes word 3 (p 0.6), then 5 (p 0.4), then <end> (p 0.5): 0.12 in all. Word 4
    (p 0.4) followed by <end> (p 1) is better, and two beams find it."""
    tables = _impossible(3)
    tables[0, 0, START, [3, 4]] = np.log([0.6, 0.4])
    tables[0, 1:, 3][:, [END, 3, 4, 5]] = np.log([0.2, 0.2, 0.2, 0.4])
    tables[0, 1:, 4, END] = 0.0
    tables[0, 1:, 5][:, [END, 5]] = np.log([0.5, 0.5])
    greedy, _ = _search(tables)
    beam, attention, score = _search(tables, K=2)
    assert list(greedy[0]) == [3, 5, END]
    assert list(beam[0]) == [4, END, PAD]
    assert score[0] == pytest.approx(np.log(0.4))
    assert _score(tables[0], greedy[0]) == pytest.approx(np.log(0.12))
    np.testing.assert_array_equal(attention[0], [[1, 0, 0], [0, 1, 0], [0, 0, 0]])


def test_a_finished_beam_keeps_its_score():
    """<end> right away has p 0.3; word 3 (p 0.7) is followed by four words of p 0.25 each,
    so every longer sequence has p ≤ 0.175: the beam that ended at step 1 wins at step 3 with
    exactly its step-1 score."""
    tables = _impossible(3)
    tables[0, 0, START, [END, 3]] = np.log([0.3, 0.7])
    tables[0, 1:, 3:, :] = np.log(0.01)
    tables[0, 1:, 3:, 2:] = np.log(0.25)
    tokens, _, score = _search(tables, K=2)
    assert list(tokens[0]) == [END, PAD, PAD]
    assert score[0] == np.log(0.3)


@pytest.mark.parametrize("K", [None, 1, 3])
def test_padding_after_end_and_early_stop(K):
    """Row 0 ends at step 1, row 1 at step 2: <pad> and zero attention after <end>, outputs of
    length max_len = 5, and the search stops once both rows have ended (2 steps, not 5)."""
    tables = np.full((2, 5, 6, 6), -np.inf)
    tables[0, 0, START, END] = 0.0
    tables[1, 0, START, 3] = 0.0
    tables[1, 1, 3, END] = 0.0
    calls = []
    tokens, attention = _search(tables, K, calls)[:2]
    np.testing.assert_array_equal(tokens, [[END, PAD, PAD, PAD, PAD], [3, END, PAD, PAD, PAD]])
    assert attention.shape == (2, 5, 5)
    np.testing.assert_array_equal(attention[0, 1:], 0)
    np.testing.assert_array_equal(attention[1, 2:], 0)
    assert attention[0, 0, 0] == attention[1, 1, 1] == 1
    assert len(calls) == 2


def test_ties_go_to_the_lower_token_id():
    tables = _impossible(2)
    tables[0, 0, START, [3, 4]] = np.log(0.5)
    tables[0, 1, [3, 4], END] = 0.0
    for K in (None, 1, 2):
        assert list(_search(tables, K)[0][0]) == [3, END]


@pytest.mark.parametrize("beam_size,max_len", [(0, 3), (2, 0)])
def test_bad_sizes_are_rejected(beam_size, max_len):
    with pytest.raises(ValueError, match="beam_size and max_len"):
        beam_search(_markov_step(np.zeros((3, 3))), (np.zeros(1),), (np.zeros(1),), START, END,
                    beam_size, max_len)
