"""attention_np.decoding: greedy and beam search driven by small hand-made step functions, GNMT's
length penalty, and one step of beam search (beam_step)."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.decoding import beam_search, beam_step, greedy_decode

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


# --- GNMT's length penalty and beam_step -------------------------------------------------------

def _beam_search_before_the_length_penalty(step, state, context, start, end, beam_size,
                                           max_len, pad):
    """beam_search as it was before ``length_penalty`` and beam_step (kept here verbatim as
    the reference: α = 0 must give exactly its results)."""
    B, K = len(context[0]), beam_size
    state = tuple(np.repeat(s, K, axis=0) for s in state)
    context = tuple(np.repeat(c, K, axis=0) for c in context)
    score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], (B, 1))
    finished = np.zeros((B, K), dtype=bool)
    tokens = np.zeros((B * K, 0), dtype=np.int64)
    attention = None
    y = np.full(B * K, start, dtype=np.int64)
    for _ in range(max_len):
        logp, new_state, alpha = step(y, state, context)
        V = logp.shape[-1]
        logp = logp.reshape(B, K, V).copy()
        logp[finished] = -np.inf
        logp[finished, end] = 0.0
        cand = (score[:, :, None] + logp).reshape(B, K * V)
        top = np.argsort(-cand, axis=1, kind="stable")[:, :K]
        score = np.take_along_axis(cand, top, axis=1)
        parent, word = top // V, top % V
        rows = (np.arange(B)[:, None] * K + parent).reshape(-1)
        was_done = np.take_along_axis(finished, parent, axis=1)
        word = np.where(was_done, pad, word)
        alpha = np.where(was_done.reshape(-1, 1), 0, alpha[rows])
        tokens = np.concatenate([tokens[rows], word.reshape(-1, 1)], axis=1)
        attention = alpha[:, None] if attention is None else np.concatenate(
            [attention[rows], alpha[:, None]], axis=1)
        finished = was_done | (word == end)
        state = tuple(s[rows] for s in new_state)
        y = np.where(finished, end, word).reshape(-1)
        if np.all(finished | (score == -np.inf)):
            break
    best = np.arange(B) * K + score.argmax(axis=1)
    out_tokens = np.full((B, max_len), pad, dtype=np.int64)
    out_attention = np.zeros((B, max_len, attention.shape[2]), dtype=attention.dtype)
    t = tokens.shape[1]
    out_tokens[:, :t], out_attention[:, :t] = tokens[best], attention[best]
    return out_tokens, out_attention, score.reshape(-1)[best]


@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 5), V=st.integers(3, 6),
       K=st.integers(1, 5))
def test_no_length_penalty_is_exactly_the_search_before_it(seed, T, V, K):
    tables = _random_tables(np.random.default_rng(seed), 3, T, V)
    args = (_table_step(tables, []), (np.zeros(3, np.int64),), (np.arange(3),), START, END)
    before = _beam_search_before_the_length_penalty(*args, K, T, PAD)
    for now in (beam_search(*args, beam_size=K, max_len=T, pad=PAD),
                beam_search(*args, beam_size=K, max_len=T, pad=PAD, length_penalty=0.0)):
        for a, b in zip(now, before):
            np.testing.assert_array_equal(a, b)


def _short_or_long():
    """<end> at once has p 0.3 (Σ log p −1.20, |Y| = 1). Word 3 (p 0.7), word 4 (p 0.35), <end>
    (p 0.9) has p 0.22 (Σ log p −1.51, |Y| = 3): worse by Σ log p, better by Σ log p / lp with
    α = 1 (−1.51 / (8/6) = −1.13 > −1.20 / 1)."""
    tables = _impossible(4)
    tables[0, 0, START, [END, 3]] = np.log([0.3, 0.7])
    tables[0, 1, 3, [4, END]] = np.log([0.35, 0.2])
    tables[0, 2, 4, [END, 5]] = np.log([0.9, 0.1])
    tables[0, 3, 5, END] = 0.0
    return tables


def test_the_length_penalty_changes_the_winner():
    tables = _short_or_long()
    args = (_table_step(tables, []), (np.zeros(1, np.int64),), (np.arange(1),), START, END)
    tokens, _, score = beam_search(*args, beam_size=3, max_len=4, pad=PAD)
    assert list(tokens[0]) == [END, PAD, PAD, PAD] and score[0] == pytest.approx(np.log(0.3))
    tokens, _, score = beam_search(*args, beam_size=3, max_len=4, pad=PAD, length_penalty=1.0)
    assert list(tokens[0]) == [3, 4, END, PAD]
    assert score[0] == pytest.approx(np.log(0.7 * 0.35 * 0.9))       # Σ log p, not divided


@given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 4), V=st.integers(3, 6),
       alpha=st.floats(0.1, 2.0))
def test_one_beam_with_a_length_penalty_is_still_greedy(seed, T, V, alpha):
    """One beam ranks the V continuations of a single prefix, all of one length: dividing by
    the same lp keeps their order."""
    tables = _random_tables(np.random.default_rng(seed), 3, T, V)
    greedy, attention = _search(tables)
    args = (_table_step(tables, []), (np.zeros(3, np.int64),), (np.arange(3),), START, END)
    tokens, beam_attention, _ = beam_search(*args, beam_size=1, max_len=T, pad=PAD,
                                            length_penalty=alpha)
    np.testing.assert_array_equal(tokens, greedy)
    np.testing.assert_array_equal(beam_attention, attention)


def test_beam_step_keeps_a_finished_beam_s_length_and_ranks_by_the_penalised_score():
    """Row 0: beam 0 finished after 1 token (Σ log p −1.0), beam 1 live after 3 tokens
    (Σ log p −1.3). With α = 1 beam 1's continuations by token 0 (−1.4, |Y| 4: −1.4 / 1.5 =
    −0.93) beat the finished beam (−1.0 / 1 = −1.0); without a penalty the finished beam
    comes first."""
    score = np.array([[-1.0, -1.3]])
    lengths = np.array([[1, 3]])
    finished = np.array([[True, False]])
    log_probs = np.log(np.array([[[0.25, 0.25, 0.25, 0.25], [0.9, 0.05, 0.03, 0.02]]]))
    log_probs[0, 1] = [-0.1, -3.0, -3.5, -4.0]
    parent, token, new_score, new_lengths = beam_step(score, lengths, finished, log_probs, end=2)
    np.testing.assert_array_equal(parent, [[0, 1]])
    np.testing.assert_array_equal(token, [[2, 0]])                   # finished: <end>, free
    np.testing.assert_allclose(new_score, [[-1.0, -1.4]])
    np.testing.assert_array_equal(new_lengths, [[1, 4]])             # the finished one keeps 1
    parent, token, new_score, new_lengths = beam_step(score, lengths, finished, log_probs, 2,
                                                      length_penalty=1.0)
    np.testing.assert_array_equal(parent, [[1, 0]])
    np.testing.assert_array_equal(token, [[0, 2]])
    np.testing.assert_allclose(new_score, [[-1.4, -1.0]])
    np.testing.assert_array_equal(new_lengths, [[4, 1]])


def test_beam_step_is_the_step_beam_search_takes():
    """The first step of a search from one live beam: beam_step on the step's log-probabilities
    gives the K best first tokens, in order, each of length 1."""
    rng = np.random.default_rng(3)
    log_probs = np.log(rng.dirichlet(np.ones(6), size=(2, 3)))
    score = np.tile([0.0, -np.inf, -np.inf], (2, 1))
    parent, token, new_score, lengths = beam_step(score, np.zeros((2, 3), int),
                                                  np.zeros((2, 3), bool), log_probs, end=2,
                                                  length_penalty=0.6)
    np.testing.assert_array_equal(parent, 0)
    np.testing.assert_array_equal(token, np.argsort(-log_probs[:, 0], axis=1)[:, :3])
    np.testing.assert_allclose(new_score, -np.sort(-log_probs[:, 0], axis=1)[:, :3])
    np.testing.assert_array_equal(lengths, 1)
