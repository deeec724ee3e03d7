"""``python -m demos [--out DIR] [--full] [--quiet] [--list] [--lang en|zh] [name ...]``: run the
demos and write ``DIR/index.html`` (in Chinese with ``--lang zh``, or when ``LANG`` names a
Chinese locale, e.g. ``LANG=zh_CN.UTF-8``).

With two or more demos and two cores, the demos run two at a time, one core each, the longest
first (:func:`run_side_by_side`).

Records (demos/_records.py): ``--record [name ...] [--full]`` runs the demos and writes
``docs/records/<demo>.<quick|full>.json`` (a quick record also runs seeds 1 and 2 to measure
each metric's tolerance; ``--record kernels`` runs the kernel benchmark and writes
``docs/records/kernels.json``; ``--record main_job`` times the whole quick run, two at a time,
and writes ``docs/records/main_job.<cold|warm>.json`` by the state of Numba's cache); ``--verify [name ...]`` re-runs quick mode and compares every metric
with its record, exiting non-zero on a miss; ``--readme-only`` rewrites README's tables from the
records without running anything."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from demos import DEMOS, QUICK_SECONDS, _records
from demos._common import LANGUAGES, WORKERS_VARIABLE, DemoUnavailable, default_kernel_blocks
from demos._progress import say, set_prefix, set_quiet
from demos.gallery import write_gallery

_LANE_LIMITS = None     # a side-by-side worker's thread limits, kept for the process's life
MAIN_JOB = "main_job"   # --record main_job: the time of `python -m demos` itself


def _parse(argv):
    parser = argparse.ArgumentParser(description="Run every attention-np demo and build the gallery.")
    parser.add_argument("names", nargs="*", help=f"demos to run (default: all of {DEMOS})")
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--full", action="store_true", help="the longer runs behind the README numbers")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or report lines")
    parser.add_argument("--list", action="store_true", help="list the demos and their quick-mode times")
    parser.add_argument("--record", action="store_true",
                        help="write docs/records/<demo>.<mode>.json for the demos run")
    parser.add_argument("--verify", action="store_true",
                        help="re-run quick mode and compare with the quick records")
    parser.add_argument("--readme-only", action="store_true",
                        help="rewrite README's tables from the records, run nothing")
    parser.add_argument("--lang", default=None, metavar="LANG",
                        help=f"language of the gallery: one of {', '.join(LANGUAGES)} "
                             "(default: from LANG, else en)")
    args = parser.parse_args(argv)
    args.lang = args.lang or default_language()
    if args.lang not in LANGUAGES:
        parser.error(f"unknown --lang {args.lang!r}; the languages are: "
                     + ", ".join(f"{k} ({v})" for k, v in LANGUAGES.items()))
    unknown = set(args.names) - set(DEMOS) - ({"kernels", MAIN_JOB} if args.record else set())
    if unknown:
        parser.error(f"unknown demo(s) {sorted(unknown)}; choose from {DEMOS}")
    return args


def default_language(environ=os.environ) -> str:
    """"zh" when the locale (LC_ALL, LC_MESSAGES or LANG, in POSIX order) is Chinese, else "en"."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return "zh" if environ[name].lower().startswith("zh") else "en"
    return "en"


def main_job_record() -> dict | None:
    """The record of a whole ``python -m demos`` run: the cold one (a fresh clone) if there is
    one, else the warm one, else None."""
    for mode in ("cold", "warm"):
        if _records.record_path(MAIN_JOB, mode).exists():
            return _records.load(MAIN_JOB, mode)
    return None


def quick_seconds(name: str) -> float | None:
    """A demo's quick-mode wall time: as it ran inside the recorded ``python -m demos`` when
    that is recorded, else from its own record (seed 0), else the estimate in
    :data:`demos.QUICK_SECONDS`."""
    job = main_job_record()
    if job and name in job["metrics"]["demos"]:
        return job["metrics"]["demos"][name]["wall_seconds"]
    path = _records.record_path(name, "quick")
    if path.exists():
        return _records.load(name, "quick")["wall_seconds"]
    return QUICK_SECONDS.get(name)


def list_demos() -> str:
    """One line per demo: its name, quick-mode time and the first line of its docstring; then
    the whole run's time."""
    lines = []
    for name in DEMOS:
        spec = importlib.util.find_spec(f"demos.{name}")
        doc = " ".join((importlib.import_module(f"demos.{name}").__doc__ or "").split()) \
            if spec else "(not installed)"
        first = doc.split(". ")[0]
        head = first.split(": ")[0]
        first = head if head.count("(") == head.count(")") else first
        lines.append(f"{name:20s} ~{_minutes(quick_seconds(name))}  "
                     f"{first if len(first) <= 80 else first[:77] + '...'}")
    for mode in ("cold", "warm"):
        if _records.record_path(MAIN_JOB, mode).exists():
            job = _records.load(MAIN_JOB, mode)
            lines.append(f"{'all, two at a time':20s} ~{_minutes(job['wall_seconds'])}  "
                         f"(python -m demos, Numba cache {mode}, recorded on "
                         f"{_records.cpu_name(job['provenance'])}; --full takes longer)")
    if main_job_record() is None:
        total = sum(quick_seconds(n) or 0 for n in DEMOS)
        lines.append(f"{'one by one':20s} ~{_minutes(total)}  (quick mode, each demo alone, "
                     "the sum of the demos' records)")
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
    say(f"=== [{position}] demos.{name} (quick mode ~{_minutes(quick_seconds(name)).strip()}) ===")
    start, skipped = time.perf_counter(), ""
    try:
        figures = module.run(args.out, full=args.full)
    except DemoUnavailable as reason:
        say(f"=== demos.{name}: skipped: {reason} ===")
        figures, skipped = [], str(reason)
    seconds = time.perf_counter() - start
    say(f"=== demos.{name}: {len(figures)} figures in {seconds:.1f} s ===")
    return name, descriptions(module), figures, seconds, skipped


def cpu_cost(name: str) -> float:
    """A demo's CPU seconds (user + system, its workers included) in quick mode: from its
    record, else the estimate in :data:`demos.QUICK_SECONDS` — what the side-by-side runner
    orders the demos by."""
    path = _records.record_path(name, "quick")
    if path.exists():
        return _records.load(name, "quick")["cpu_seconds"]
    return QUICK_SECONDS.get(name, 0)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _lane_start(quiet: bool) -> None:
    """Set up a side-by-side worker process: one core's worth of everything — one BLAS thread,
    one Numba thread, and no worker processes of the demo's own (demos._common.worker_pool)."""
    global _LANE_LIMITS
    from threadpoolctl import threadpool_limits

    from attention_np.nn.backend import one_numba_thread
    os.environ[WORKERS_VARIABLE] = "1"
    set_quiet(quiet)
    _LANE_LIMITS = (threadpool_limits(1, user_api="blas"), one_numba_thread())
    _LANE_LIMITS[1].__enter__()          # for the life of the process


def _lane_run(name: str, args, position: str):
    set_prefix(f"[{name}] ")
    return _run_one(name, args, position)


def run_side_by_side(names: list, args) -> list:
    """Run the demos two at a time, each on one core of its own, the costliest first (longest
    processing time first keeps the two cores busy to the end) → the sections in ``names``'
    order. Every demo's numbers are those of running it alone: each run has its own seeds and
    data, and a demo that would start two workers runs its trainings one after the other."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context
    order = sorted(names, key=cpu_cost, reverse=True)
    start, done = time.perf_counter(), {}
    say(f"running {len(names)} demos two at a time (one core each), the longest first; "
        f"each line starts with its demo's name")
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("fork"),
                             initializer=_lane_start, initargs=(args.quiet,)) as pool:
        jobs = {pool.submit(_lane_run, name, args, f"{i}/{len(names)}"): name
                for i, name in enumerate(order, 1)}
        for job in as_completed(jobs):
            section = job.result()
            done[section[0]] = section
            say(f"    {len(done)}/{len(names)} demos done in {time.perf_counter() - start:.0f} s "
                f"(demos.{section[0]}: {section[3]:.0f} s)")
    return [done[name] for name in names]


def _cpu_seconds() -> float:
    """CPU seconds of this process and the workers it waited for (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_for_metrics(name: str, full: bool, seed: int, out: Path) -> tuple[dict, dict]:
    """Run one demo (seed ``seed``) into ``out`` → (its metrics.json, {"wall", "cpu"} seconds)."""
    module = importlib.import_module(f"demos.{name}")
    kwargs = {}
    if seed:
        if "seed" not in inspect.signature(module.run).parameters:
            raise SystemExit(f"demos.{name}.run takes no seed: its tolerance cannot be measured")
        kwargs["seed"] = seed
    wall, cpu = time.perf_counter(), _cpu_seconds()
    module.run(out, full=full, **kwargs)
    seconds = {"wall": time.perf_counter() - wall, "cpu": _cpu_seconds() - cpu}
    return json.loads((Path(out) / name / "metrics.json").read_text()), seconds


def record(names, args) -> None:
    """Run each demo and write its record (a quick record measures the seeds' spread too)."""
    mode = "full" if args.full else "quick"
    for name in names:
        if name == "kernels":
            record_kernels(args)
            continue
        if name == MAIN_JOB:
            record_main_job(args)
            continue
        say(f"=== recording demos.{name} ({mode} mode) ===")
        metrics, seconds = run_for_metrics(name, args.full, 0, args.out)
        spread = None
        if not args.full:
            with tempfile.TemporaryDirectory() as scratch:
                spread = [run_for_metrics(name, False, s, Path(scratch))[0]
                          for s in _records.SPREAD_SEEDS]
        path = _records.write(name, mode, metrics, seconds, [0], spread)
        say(f"wrote {path.relative_to(_records.ROOT)} ({seconds['wall']:.0f} s)")


def record_kernels(args) -> None:
    """``--record kernels``: run the kernel benchmark (every row, 7 rounds; the time/memory
    plot left out) and write docs/records/kernels.json from its bench.json."""
    from attention_np.kernels import bench
    argv = ["--no-scaling"]
    say("=== recording the kernel benchmark ===")
    with tempfile.TemporaryDirectory() as scratch:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = bench.main([*argv, "--out", scratch])
        seconds = {"wall": time.perf_counter() - wall, "cpu": _cpu_seconds() - cpu}
    path = _records.write_kernels(result, seconds, argv)
    say(f"wrote {path.relative_to(_records.ROOT)} ({seconds['wall']:.0f} s)")


def numba_cache_state() -> str:
    """"warm" when Numba's cache holds compiled kernels of attention_np.kernels (``cache=True``
    writes them beside the sources, or under NUMBA_CACHE_DIR), else "cold"."""
    import attention_np.kernels
    import numba
    where = Path(numba.config.CACHE_DIR) if numba.config.CACHE_DIR else \
        Path(attention_np.kernels.__file__).parent
    return "warm" if any(where.rglob("*.nbi")) else "cold"


def record_main_job(args) -> None:
    """``--record main_job``: time the README's first command — every demo in quick mode, two
    at a time, into a scratch folder — check every demo's metrics against its quick record (as
    ``--verify`` does), and write docs/records/main_job.<cold|warm>.json (cold: Numba's cache
    was empty at the start, as in a fresh clone)."""
    cache = numba_cache_state()
    say(f"=== recording python -m demos (quick mode, Numba cache {cache}) ===")
    names = [n for n in DEMOS if importlib.util.find_spec(f"demos.{n}")]
    with tempfile.TemporaryDirectory() as scratch:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        sections = run_quick(names, Path(scratch), args.quiet)
        seconds = {"wall": time.perf_counter() - wall, "cpu": _cpu_seconds() - cpu}
        # the same runs are a --verify: every metric against the demo's quick record
        checks = {name: check_against_record(name, Path(scratch), secs)
                  for name, _, _, secs, _ in sections}
    metrics = {"numba_cache": cache, "side_by_side": usable_cores() >= 2,
               "total_wall_seconds": seconds["wall"],
               "demos": {name: {"wall_seconds": secs, "skipped": skipped, **checks[name]}
                         for name, _, _, secs, skipped in sections}}
    path = _records.write_main_job(cache, metrics, seconds)
    say(f"wrote {path.relative_to(_records.ROOT)} ({seconds['wall']:.0f} s)")


def run_demos(names: list, args) -> list:
    """Run ``names`` into ``args.out`` (``args.full``, ``args.quiet``): two at a time when there
    are two cores and two demos, else one after the other → the sections (name, descriptions,
    figures, seconds, skipped) in ``names``' order."""
    if len(names) > 1 and usable_cores() >= 2:
        return run_side_by_side(names, args)
    start, sections = time.perf_counter(), []
    for i, name in enumerate(names, 1):
        sections.append(_run_one(name, args, f"{i}/{len(names)}"))
        left = sum(quick_seconds(n) or 0 for n in names[i:])
        if i < len(names) and not args.full:
            say(f"    {i}/{len(names)} demos done in {time.perf_counter() - start:.0f} s; "
                f"about {_minutes(left).strip()} to go")
    return sections


def run_quick(names: list, out: Path, quiet: bool = False) -> list:
    """Quick mode, seed 0, of ``names`` into ``out`` (:func:`run_demos`)."""
    return run_demos(names, argparse.Namespace(out=Path(out), full=False, quiet=quiet))


def check_against_record(name: str, out: Path, seconds: float) -> dict:
    """Compare the metrics.json a quick run wrote under ``out`` with the demo's quick record,
    print recorded / now / tolerance, and return {"metrics", "within_tolerance", "missed"}."""
    rec = _records.load(name, "quick")
    path = Path(out) / name / "metrics.json"
    if not path.exists():
        print(f"\n{name}: no metrics.json (the demo was skipped): not verified")
        return {"metrics": 0, "within_tolerance": 0, "exact": 0, "missed": ["(skipped)"]}
    rows = _records.compare(rec, json.loads(path.read_text()))
    bad = [r for r in rows if not r["ok"]]
    exact = sum(r["exact"] for r in rows)
    print(f"\n{name}: {len(rows) - len(bad)} of {len(rows)} metrics within tolerance, {exact} "
          f"exactly as recorded ({seconds:.0f} s; recorded {rec['wall_seconds']:.0f} s on "
          f"{_records.cpu_name(rec['provenance'])})")
    print(f"  {'metric':<48} {'recorded':>12} {'now':>12} {'tolerance':>10}")
    for r in (bad or rows[:8]):
        now = "missing" if r["now"] is None else f"{r['now']:.6g}"
        print(f"  {r['metric'][:48]:<48} {r['recorded']:>12.6g} {now:>12} "
              f"{r['tolerance']:>10.3g}{'' if r['ok'] else '  MISS'}")
    if not bad and len(rows) > 8:
        print(f"  … and {len(rows) - 8} more, all within tolerance")
    return {"metrics": len(rows), "within_tolerance": len(rows) - len(bad), "exact": exact,
            "missed": [r["metric"] for r in bad]}


def verify(names) -> int:
    """Re-run each demo's quick mode (two at a time) and compare every verified metric with
    its record; 1 when any metric missed."""
    with tempfile.TemporaryDirectory() as scratch:
        sections = run_quick(names, Path(scratch))
        checks = [check_against_record(name, Path(scratch), secs)
                  for name, _, _, secs, _ in sections]
    return 1 if any(c["missed"] for c in checks) else 0


def main(argv=None) -> None:
    default_kernel_blocks()
    args = _parse(argv)
    if args.list:
        print(list_demos())
        return
    if args.readme_only:
        from demos import _readme
        say(f"rewrote {_readme.update_readme()}")
        return
    set_quiet(args.quiet)
    if args.record or args.verify:
        names = args.names or [n for n in DEMOS if importlib.util.find_spec(f"demos.{n}")]
        if args.verify:
            sys.exit(verify(names))
        record(names, args)
        return
    names = [n for n in args.names or DEMOS if importlib.util.find_spec(f"demos.{n}") is not None]
    start = time.perf_counter()
    sections = run_demos(names, args)
    index = write_gallery(args.out, sections, args.lang)
    say(f"gallery: {index} ({len(sections)} demos in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
