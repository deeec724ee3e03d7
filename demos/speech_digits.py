"""Attention for speech recognition (article §6.3): a small Listen, Attend and Spell with
location-aware attention reads log-mel spectrograms of spoken digit strings (espeak-ng voices,
noise added) and writes the digits. Scored on voices it never heard; the figure puts the
attention alignment under the spectrogram — it walks left to right, one digit at a time."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from attention_np.apps.las import LASConfig, init_las, loss_and_grads, transcribe_beam
from attention_np.nn.optim import Adam, clip_grad_norm
from demos._common import Figure, demo_dir, demo_main, one_blas_thread, save_figure, write_json
from demos._speech_data import END, PAD, START, TEST_VARIANTS, VOCAB, WORDS, load_split
from demos._progress import progress, say

SUMMARY_ZH = (  # the module docstring in Chinese, for `python -m demos --lang zh`
    "把注意力用于语音识别（speech recognition，原文 §6.3）："
    "一个带位置感知注意力（location-aware attention）的小型 Listen, Attend and Spell "
    "模型读入口述数字串的对数梅尔频谱图（由 espeak-ng 的多种嗓音合成，并加入噪声），"
    "写出其中的数字。评测用的是训练中从未听过的嗓音；图中把注意力对齐（alignment）"
    "画在频谱图下方——它从左往右走，一次一个数字。"
)


# ------------------------------------------------------------------------------- data
def normalise(feats):
    """Per-utterance mean and variance normalisation of every mel bin (CMVN)."""
    return [(f - f.mean(0)) / (f.std(0) + 1e-5) for f in feats]


def make_batch(feats, digits, idx):
    """Pad to the longest utterance: x (B, T, 40), mask (B, T), y_in / y_out (B, L)."""
    T = max(len(feats[i]) for i in idx)
    L = max(len(digits[i]) for i in idx) + 1
    x = np.zeros((len(idx), T, feats[0].shape[1]), np.float32)
    mask = np.zeros((len(idx), T), bool)
    y_in, y_out = np.full((len(idx), L), PAD), np.full((len(idx), L), PAD)
    for b, i in enumerate(idx):
        x[b, :len(feats[i])], mask[b, :len(feats[i])] = feats[i], True
        tokens = [3 + d for d in digits[i]]
        y_in[b, :len(tokens) + 1] = [START] + tokens
        y_out[b, :len(tokens) + 1] = tokens + [END]
    return x, mask, y_in, y_out


def length_batches(feats, batch, rng):
    """Shuffled batches of utterances of similar length (less padding)."""
    order = np.argsort([len(f) + rng.uniform(0, 30) for f in feats])
    chunks = [order[i:i + batch] for i in range(0, len(order), batch)]
    return [chunks[k] for k in rng.permutation(len(chunks))]


# ------------------------------------------------------------------------------- training
def train(cfg, feats, digits, epochs: int, seed: int = 0, batch: int = 32, lr: float = 2e-3):
    """Adam with gradient clipping, lr × 0.7 per epoch over the second half; stops after
    ``epochs`` epochs of ⌈N / batch⌉ steps each (a step budget: no time limit)."""
    rng = np.random.default_rng(seed)
    params, opt, losses = init_las(cfg, rng), Adam(lr=lr), []
    per_epoch = -(-len(feats) // batch)
    with progress(epochs * per_epoch, "  listen-attend-spell", every=per_epoch) as bar:
        for epoch in range(epochs):
            for idx in length_batches(feats, batch, rng):
                x, mask, y_in, y_out = make_batch(feats, digits, idx)
                loss, grads, _ = loss_and_grads(params, cfg, x, mask, y_in, y_out)
                clip_grad_norm(grads, 5.0)
                opt.step(params, grads)
                losses.append(loss)
                bar.set_postfix(epoch=epoch + 1, loss=float(np.mean(losses[-20:])))
                bar.update()
            if epoch + 1 >= epochs // 2:
                opt.lr *= 0.7                      # anneal over the second half
    return params, losses


# ------------------------------------------------------------------------------- evaluation
def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences (substitutions, insertions, deletions)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def tokens_to_digits(tokens) -> list[int]:
    out = []
    for t in tokens:
        if t == END:
            break
        if t >= 3:
            out.append(int(t) - 3)
    return out


def error_rates(refs, hyps) -> dict:
    """WER over digit words; CER over the characters of the spelled-out words ("three seven")."""
    words = sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / sum(len(r) for r in refs)
    spell = (lambda ds: " ".join(WORDS[d] for d in ds))
    chars = (sum(edit_distance(spell(r), spell(h)) for r, h in zip(refs, hyps))
             / sum(len(spell(r)) for r in refs))
    exact = float(np.mean([list(r) == list(h) for r, h in zip(refs, hyps)]))
    return {"word_error_rate": words, "character_error_rate": chars, "sentence_accuracy": exact}


def transcribe(params, cfg, feats, beam: int = 4, batch: int = 64):
    hyps, alphas = [], []
    for i in range(0, len(feats), batch):
        idx = list(range(i, min(i + batch, len(feats))))
        x, mask, _, _ = make_batch(feats, [()] * len(feats), idx)
        tokens, alpha, _ = transcribe_beam(params, cfg, x, mask, beam)
        hyps += [tokens_to_digits(t) for t in tokens]
        alphas += list(alpha)
    return hyps, alphas


def is_monotone(alpha, n_tokens: int) -> bool:
    """The attention peak of each emitted token lies at or after the previous one's peak
    (non-strict: an alignment stuck on one frame passes)."""
    peaks = alpha[:n_tokens].argmax(axis=1)
    return bool(np.all(np.diff(peaks) >= 0))


def is_strictly_monotone(alpha, n_digits: int) -> bool:
    """Each emitted digit's attention peak lies strictly after the previous digit's, and the
    <end> token's peak (row ``n_digits``) not before the last digit's: two digits read off the
    same listener step — an alignment stuck on one frame — do not count as monotonic."""
    peaks = alpha[:n_digits + 1].argmax(axis=1)
    return bool(np.all(np.diff(peaks[:n_digits]) > 0) and np.all(np.diff(peaks[-2:]) >= 0))


def repeated_peaks(alphas, hyps) -> float:
    """Share of consecutive emitted digit pairs whose attention peaks fall on the same step."""
    same = [np.diff(a[:len(h)].argmax(axis=1)) == 0 for a, h in zip(alphas, hyps) if len(h) > 1]
    return float(np.mean(np.concatenate(same))) if same else 0.0


def alignment_metrics(alphas, hyps) -> dict:
    """Share of test alignments that are monotonic (non-strict and strict) and of consecutive
    digits read off the same listener step."""
    return {"monotone_alignment_fraction": float(np.mean(
                [is_monotone(a, len(h) + 1) for a, h in zip(alphas, hyps)])),
            "strict_monotone_alignment_fraction": float(np.mean(
                [is_strictly_monotone(a, len(h)) for a, h in zip(alphas, hyps)])),
            "repeated_peak_fraction": repeated_peaks(alphas, hyps),
            "monotone_definitions": {"non-strict": "each token's attention peak at or after "
                                     "the previous one's (a stuck alignment passes)",
                                     "strict": "each digit's peak strictly after the previous "
                                     "digit's; <end> not before the last"}}


# ------------------------------------------------------------------------------- figures
FRAME_S = 0.01                                     # 10 ms hop between log-mel frames


def _time_labels(n_steps: int, reduction: int, every: int = 5) -> list[str]:
    """Seconds at every ``every``-th listener step, blank in between."""
    return [f"{j * reduction * FRAME_S:.1f}" if j % every == 0 else "" for j in range(n_steps)]


def alignment_figure(feats, alpha, ref, hyp, reduction: int, out: Path) -> Figure:
    """Log-mel spectrogram on top, the speller's alignment α (digits × listener steps) below."""
    import matplotlib.pyplot as plt
    from attention_np.viz import plot_alignment
    w = alpha[:len(hyp) + 1, :(len(feats) + reduction - 1) // reduction]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), layout="constrained",
                                   gridspec_kw={"height_ratios": [1.2, 1]})
    ax1.imshow(feats.T, origin="lower", aspect="auto", cmap="magma",
               extent=(-0.5, len(feats) / reduction - 0.5, 0, feats.shape[1]))
    ax1.set_ylabel("mel bin")
    ax1.set_title(f"spoken: {' '.join(WORDS[d] for d in ref)}   —   "
                  f"heard: {' '.join(WORDS[d] for d in hyp)}", fontsize=10)
    ax1.set_xticks([])
    plot_alignment(w, _time_labels(w.shape[1], reduction),
                   [VOCAB[3 + d] for d in hyp] + [VOCAB[END]], ax=ax2)
    ticks = np.arange(0, w.shape[1], 5)
    ax2.set_xticks(ticks, [f"{j * reduction * FRAME_S:.1f}" for j in ticks], rotation=0)
    ax2.xaxis.tick_bottom()
    ax2.xaxis.set_label_position("bottom")
    ax2.set_xlabel(f"time (s) — one listener step = {reduction} frames = {reduction * 10} ms")
    for ax in (ax1, ax2):
        ax.set_xlim(-0.5, w.shape[1] - 0.5)
    return save_figure(fig, out, "speech_digits/alignment.png",
                       "Top: the 40-bin log-mel spectrogram of one test utterance (a voice never "
                       "heard in training). Bottom: the speller's location-aware attention, one row "
                       "per emitted digit; the red dots (argmax) walk left to right over the words.",
                       "Spectrogram and attention alignment",
                       caption_zh="上：一条测试语音的 40 频带对数梅尔频谱图（这个嗓音在训练中从未出现"
                                  "过）。下：拼写器（speller）的位置感知注意力，每个输出的数字占一行；"
                                  "红点（argmax）沿着一个个词从左往右走。",
                       title_zh="频谱图与注意力对齐")


def decoding_gif(alpha, hyp, n_frames: int, reduction: int, out: Path) -> Figure:
    from attention_np.viz import animate_decoding
    w = alpha[:len(hyp) + 1, :(n_frames + reduction - 1) // reduction]
    animate_decoding(w, Path(out) / "speech_digits/decoding.gif",
                     source_tokens=_time_labels(w.shape[1], reduction),
                     target_tokens=[VOCAB[3 + d] for d in hyp] + [VOCAB[END]], fps=1.5)
    return Figure("speech_digits/decoding.gif", "Beam-search decoding step by step: at each step "
                  "the attention over the listener's frames (time in s) moves to the next word.",
                  "Decoding, step by step",
                  caption_zh="逐步展示束搜索解码：每一步，注意力在听者（listener）各帧上的分布"
                             "（时间以秒计）都移到下一个词上。",
                  title_zh="逐步解码")


def loss_figure(losses, out: Path) -> Figure:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.semilogy(np.convolve(losses, np.ones(10) / 10, mode="valid"))
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (moving avg)")
    return save_figure(fig, out, "speech_digits/loss.png", "Training loss (teacher forcing).",
                       "Training curve", caption_zh="训练损失（教师强制）。", title_zh="训练曲线")


# ------------------------------------------------------------------------------- demo
EPOCHS = {False: 10, True: 20}                     # the step budget, in epochs (quick, full)


def run(out_dir: Path, full: bool = False, seed: int = 0) -> list[Figure]:
    """``seed`` initialises and shuffles the training; the utterances stay the same."""
    out = demo_dir(out_dir, "speech_digits")
    start = time.perf_counter()
    cache = Path(tempfile.gettempdir()) / "attention-np-speech-cache"
    n_train, n_test = (3000, 400) if full else (1200, 200)
    with one_blas_thread():
        ftr, dtr, source = load_split(n_train, "train", 0, cache)
        fte, dte, _ = load_split(n_test, "test", 1, cache)
        say(f"speech_digits: {n_train} train / {n_test} test utterances from {source} "
            f"({time.perf_counter() - start:.0f} s)")
        raw_test = fte
        ftr, fte = normalise(ftr), normalise(fte)
        # Training runs the listener's LSTM scans on the fused Numba kernels (the same
        # equations as the NumPy reference, attention_np.nn.recurrent).
        cfg = LASConfig(backend="numba")
        # Step budget: EPOCHS epochs of ⌈n_train / 32⌉ steps (quick: 10 × 38 = 380 steps, the
        # whole budget the earlier 150 s wall-clock cap allowed on the 2-core AMD EPYC when
        # nothing else ran; full: 20 × 94 = 1880).
        params, losses = train(cfg, ftr, dtr, epochs=EPOCHS[full], seed=seed)
        hyps, alphas = transcribe(params, cfg, fte, beam=4)
    reduction = 2 ** cfg.listener_layers
    metrics = error_rates(dte, hyps)
    metrics.update(audio_source=source, train_utterances=n_train, test_utterances=n_test,
                   test_voices="held-out espeak-ng variants " + ", ".join(TEST_VARIANTS)
                   if source == "espeak-ng" else "formant synthesiser, unseen seeds",
                   **alignment_metrics(alphas, hyps),
                   train_steps=len(losses), train_epochs=EPOCHS[full],
                   step_budget=EPOCHS[full] * -(-n_train // 32),
                   seconds=time.perf_counter() - start)
    write_json(out / "metrics.json", metrics)
    say(f"  test WER {metrics['word_error_rate']:.4f}, CER {metrics['character_error_rate']:.4f}"
        f", monotone alignments {metrics['monotone_alignment_fraction']:.3f} (strict "
        f"{metrics['strict_monotone_alignment_fraction']:.3f})")
    k = next((i for i, (r, h) in enumerate(zip(dte, hyps)) if list(r) == h and len(r) >= 4), 0)
    return [alignment_figure(raw_test[k], alphas[k], dte[k], hyps[k], reduction, Path(out_dir)),
            decoding_gif(alphas[k], hyps[k], len(raw_test[k]), reduction, Path(out_dir)),
            loss_figure(losses, Path(out_dir))]


main = demo_main(run, __doc__)


if __name__ == "__main__":
    main()
