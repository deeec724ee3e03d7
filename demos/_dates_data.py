"""Generated data for the date-translation demo: human-written dates → ``YYYY-MM-DD``.

A date is rendered by a *template* (the order of day, month and year and how each is spelled),
optionally preceded by a weekday and wrapped in a short sentence. Every source string is at most
``MAX_LEN`` characters. Numeric dates are always day-first (``09/03/21`` is 9 March 2021) or
year-first (``2021.3.9``); two-digit years mean 1950–2049.

The held-out test set differs from training in two ways at once: its dates (one in ten, chosen
by a hash of the day number) never occur in training, and its *format signature* — the
(template, weekday, wrapper) triple — is one of the ~15 % of combinations that training never
shows. Each part of a held-out format (a month spelling, a wrapper sentence) does occur in
training, only not in that combination.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

MAX_LEN = 60
FIRST, LAST = dt.date(1950, 1, 1).toordinal(), dt.date(2049, 12, 31).toordinal()

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINAL_ONES = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}

WRAPPERS = ["{}", "{}", "{}", "we meet on {} at noon", "due by {}", "the deadline is {}.",
            "born {}", "on {} we flew home", "see you {}!", "invoice dated {}, paid",
            "call me {} please", "signed {} in paris"]
TEMPLATES = ["d_month_y", "d_of_month_y", "the_d_of_month_y", "month_d_y", "dd/mm/yy",
             "d/m/yyyy", "dd-mm-yyyy", "dd.mm.yyyy", "yyyy.m.d", "yyyy/mm/dd", "mon_d_y"]
WEEKDAY_STYLES = ["none", "none", "abbr", "full"]

SRC_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,./-!'"
SRC_VOCAB = ["<pad>"] + list(SRC_CHARS)
TGT_VOCAB = ["<pad>", "<start>", "<end>"] + list("0123456789-")
PAD, START, END = 0, 1, 2
TGT_LEN = 11                                  # 10 characters + <end>


def number_words(n: int) -> str:
    """0 < n < 100 in words: 21 → 'twenty-one'."""
    if n < 20:
        return ONES[n]
    return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")


def ordinal_words(n: int) -> str:
    """1 ≤ n ≤ 31: 3 → 'third', 21 → 'twenty-first', 30 → 'thirtieth'."""
    words = number_words(n)
    head, _, last = words.rpartition("-")
    if last in ORDINAL_ONES:
        last = ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return f"{head}-{last}" if head else last


def ordinal_suffix(n: int) -> str:
    """3 → '3rd', 11 → '11th', 22 → '22nd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def year_words(y: int, rng) -> str:
    """1987 → 'nineteen eighty-seven'; 2005 → 'two thousand (and) five' or 'twenty oh five'."""
    hi, lo = divmod(y, 100)
    if y < 2000:
        return f"nineteen {number_words(lo)}" if lo >= 10 else f"nineteen oh {ONES[lo]}"
    if lo == 0:
        return "two thousand"
    if lo >= 10 and rng.random() < 0.3:
        return f"twenty {number_words(lo)}"
    return "two thousand " + ("and " if rng.random() < 0.4 else "") + number_words(lo)


def _case(word: str, rng) -> str:
    r = rng.random()
    return word.capitalize() if r < 0.45 else word.upper() if r < 0.55 else word


def _day(d: int, rng, words: float) -> str:
    """'3', '3rd' or (with probability ``words``) 'third'."""
    r = rng.random()
    if r < words:
        return ordinal_words(d)
    return ordinal_suffix(d) if r < (1 + words) / 2 else str(d)


def _year(y: int, rng) -> str:
    return year_words(y, rng) if rng.random() < 0.35 else str(y)


def render(date: dt.date, template: str, weekday: str, wrapper: str, rng) -> str:
    """One human-written form of ``date`` (see module docstring)."""
    d, m, y = date.day, date.month, date.year
    month = _case(MONTHS[m - 1], rng)
    numeric = {"dd/mm/yy": f"{d:02d}/{m:02d}/{y % 100:02d}", "d/m/yyyy": f"{d}/{m}/{y}",
               "dd-mm-yyyy": f"{d:02d}-{m:02d}-{y}", "dd.mm.yyyy": f"{d:02d}.{m:02d}.{y}",
               "yyyy.m.d": f"{y}.{m}.{d}", "yyyy/mm/dd": f"{y}/{m:02d}/{d:02d}"}
    if template in numeric:
        text = numeric[template]
    elif template == "d_month_y":
        text = f"{_day(d, rng, 0.0)} {month} {_year(y, rng)}"
    elif template == "d_of_month_y":
        text = f"{_day(d, rng, 0.4)} of {month}{rng.choice(['', ','])} {_year(y, rng)}"
    elif template == "the_d_of_month_y":
        text = f"the {_day(d, rng, 0.6)} of {month}, {_year(y, rng)}"
    elif template == "month_d_y":
        text = f"{month} {_day(d, rng, 0.0)}{rng.choice(['', ','])} {_year(y, rng)}"
    else:                                                   # "mon_d_y": "Mar 3 '21"
        text = f"{month[:3]} {d} '{y % 100:02d}" if rng.random() < 0.5 else f"{month[:3]} {d} {y}"
    wd = WEEKDAYS[date.weekday()]
    if weekday == "abbr":
        text = f"{_case(wd[:3], rng)}, {text}"
    elif weekday == "full":
        text = f"{_case(wd, rng)} {text}"
    return wrapper.format(text)


def _is_test_date(ordinal: int) -> bool:
    return (ordinal * 2654435761) % 1000 < 100        # a fixed 10 % of all days


def _is_test_format(template: str, weekday: str, wrapper: str) -> bool:
    return hash_str(f"{template}|{weekday}|{wrapper}") % 100 < 15


def hash_str(s: str) -> int:
    """A stable string hash (Python's ``hash`` changes between runs)."""
    h = 2166136261
    for ch in s.encode():
        h = ((h ^ ch) * 16777619) % 2**32
    return h


@dataclass
class DateSet:
    """Pairs as strings and as padded id arrays."""
    sources: list[str]
    targets: list[str]
    src: np.ndarray          # (N, MAX_LEN) int, PAD-padded
    src_len: np.ndarray      # (N,)
    tgt: np.ndarray          # (N, TGT_LEN) int: 10 characters then <end>


def sample(n: int, split: str, seed: int) -> DateSet:
    """``n`` pairs from the 'train' or 'test' side of both the date and the format split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    want_test = split == "test"
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    while len(sources) < n:
        ordinal = int(rng.integers(FIRST, LAST + 1))
        fmt = (str(rng.choice(TEMPLATES)), str(rng.choice(WEEKDAY_STYLES)),
               str(rng.choice(WRAPPERS)))
        if _is_test_date(ordinal) != want_test or _is_test_format(*fmt) != want_test:
            continue
        date = dt.date.fromordinal(ordinal)
        text = render(date, *fmt, rng)
        if len(text) <= MAX_LEN:
            sources.append(text)
            targets.append(date.isoformat())
    return DateSet(sources, targets, *encode_sources(sources), encode_targets(targets))


def encode_sources(sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {c: i for i, c in enumerate(SRC_VOCAB)}
    ids = np.full((len(sources), MAX_LEN), PAD, dtype=np.int64)
    for row, s in enumerate(sources):
        ids[row, :len(s)] = [index[c] for c in s]
    return ids, np.array([len(s) for s in sources])


def encode_targets(targets: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(TGT_VOCAB)}
    return np.array([[index[c] for c in t] + [END] for t in targets], dtype=np.int64)


def decode_target(ids) -> str:
    """Target ids → string, stopping at <end>."""
    out = []
    for i in ids:
        if i == END:
            break
        out.append(TGT_VOCAB[i] if i > END else "")
    return "".join(out)
