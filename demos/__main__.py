"""``python -m demos [--out DIR] [--full] [--quiet] [--list] [--lang en|zh] [name ...]``: run the
demos and write ``DIR/index.html`` (in Chinese with ``--lang zh``, or when ``LANG`` names a
Chinese locale, e.g. ``LANG=zh_CN.UTF-8``)."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import time
from pathlib import Path

import os

from demos import DEMOS, QUICK_SECONDS
from demos._common import LANGUAGES, DemoUnavailable
from demos._progress import say, set_quiet
from demos.gallery import write_gallery


def _parse(argv):
    parser = argparse.ArgumentParser(description="Run every attention-np demo and build the gallery.")
    parser.add_argument("names", nargs="*", help=f"demos to run (default: all of {DEMOS})")
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--full", action="store_true", help="the longer runs behind the README numbers")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or report lines")
    parser.add_argument("--list", action="store_true", help="list the demos and their quick-mode times")
    parser.add_argument("--lang", default=None, metavar="LANG",
                        help=f"language of the gallery: one of {', '.join(LANGUAGES)} "
                             "(default: from LANG, else en)")
    args = parser.parse_args(argv)
    args.lang = args.lang or default_language()
    if args.lang not in LANGUAGES:
        parser.error(f"unknown --lang {args.lang!r}; the languages are: "
                     + ", ".join(f"{k} ({v})" for k, v in LANGUAGES.items()))
    unknown = set(args.names) - set(DEMOS)
    if unknown:
        parser.error(f"unknown demo(s) {sorted(unknown)}; choose from {DEMOS}")
    return args


def default_language(environ=os.environ) -> str:
    """"zh" when the locale (LC_ALL, LC_MESSAGES or LANG, in POSIX order) is Chinese, else "en"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return "zh" if environ[name].lower().startswith("zh") else "en"
    return "en"


def list_demos() -> str:
    """One line per demo: its name, quick-mode time and the first line of its docstring."""
    lines = []
    for name in DEMOS:
        spec = importlib.util.find_spec(f"demos.{name}")
        doc = " ".join((importlib.import_module(f"demos.{name}").__doc__ or "").split()) \
            if spec else "(not installed)"
        first = doc.split(". ")[0]
        head = first.split(": ")[0]
        first = head if head.count("(") == head.count(")") else first
        lines.append(f"{name:20s} ~{_minutes(QUICK_SECONDS.get(name))}  "
                     f"{first if len(first) <= 80 else first[:77] + '...'}")
    total = sum(QUICK_SECONDS.get(n, 0) for n in DEMOS)
    lines.append(f"{'all':20s} ~{_minutes(total)}  (quick mode, 2-core AMD EPYC; --full takes longer)")
    return "\n".join(lines)


def _minutes(seconds) -> str:
    if seconds is None:
        return "    ?"
    return f"{seconds:4.0f} s" if seconds < 90 else f"{seconds / 60:4.1f} min"


def descriptions(module) -> dict:
    """{lang: what the demo does}: its docstring, and its SUMMARY_ZH in Chinese."""
    return {"en": " ".join((module.__doc__ or "").split()),
            "zh": getattr(module, "SUMMARY_ZH", "")}


def _run_one(name: str, args, position: str):
    module = importlib.import_module(f"demos.{name}")
    say(f"=== [{position}] demos.{name} (quick mode ~{_minutes(QUICK_SECONDS.get(name)).strip()}) ===")
    start, skipped = time.perf_counter(), ""
    try:
        figures = module.run(args.out, full=args.full)
    except DemoUnavailable as reason:
        say(f"=== demos.{name}: skipped: {reason} ===")
        figures, skipped = [], str(reason)
    seconds = time.perf_counter() - start
    say(f"=== demos.{name}: {len(figures)} figures in {seconds:.1f} s ===")
    return name, descriptions(module), figures, seconds, skipped


def main(argv=None) -> None:
    args = _parse(argv)
    if args.list:
        print(list_demos())
        return
    set_quiet(args.quiet)
    names = [n for n in args.names or DEMOS if importlib.util.find_spec(f"demos.{n}") is not None]
    start, sections = time.perf_counter(), []
    for i, name in enumerate(names, 1):
        sections.append(_run_one(name, args, f"{i}/{len(names)}"))
        left = sum(QUICK_SECONDS.get(n, 0) for n in names[i:])
        if i < len(names) and not args.full:
            say(f"    {i}/{len(names)} demos done in {time.perf_counter() - start:.0f} s; "
                f"about {_minutes(left).strip()} to go")
    index = write_gallery(args.out, sections, args.lang)
    say(f"gallery: {index}")


if __name__ == "__main__":
    main()
