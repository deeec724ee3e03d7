"""The command line: ``python -m attention_np.exercises list | start NAME | check NAME |
check --all``, each with ``--dir`` (default ./exercises).

``start`` writes the skeleton and never overwrites a file that exists. ``check`` grades, prints
what is wrong, records the result in ``<dir>/.progress.json`` (read by ``list``) and exits with
status 1 unless every exercise it graded passed (2 for a usage error).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attention_np.exercises import EXERCISES, UnknownExercise, by_name
from attention_np.exercises.grade import grade
from attention_np.exercises.spec import check_command, skeleton

PROGRAM = "python -m attention_np.exercises"
PROGRESS = ".progress.json"


def _progress(folder: Path) -> dict:
    try:
        return json.loads((folder / PROGRESS).read_text())
    except (OSError, ValueError):
        return {}


def _status(folder: Path, name: str, progress: dict) -> str:
    """'not started', the last check's status, or 'started' (never checked, or edited since)."""
    path = folder / f"{name}.py"
    if not path.exists():
        return "not started"
    seen = progress.get(name, {})
    return seen.get("status", "started") if seen.get("mtime") == path.stat().st_mtime \
        else "started"


def _dir_option(folder: str) -> str:
    return "" if folder == "exercises" else f" --dir {folder}"


def cmd_list(args) -> int:
    folder = Path(args.dir)
    progress = _progress(folder)
    print(f"{'#':>2}  {'exercise':<40} {'status':<12} {'article':<11} what")
    statuses = []
    for number, ex in enumerate(EXERCISES, 1):
        statuses.append(_status(folder, ex.name, progress))
        print(f"{number:>2}  {ex.name:<40} {statuses[-1]:<12} {ex.section:<11} {ex.title}")
    print(f"\n{statuses.count('passed')} of {len(EXERCISES)} passed (files in {folder}/). "
          f"Begin with: {PROGRAM} start NAME{_dir_option(args.dir)}")
    return 0


def cmd_start(args) -> int:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    for ex in [by_name(name) for name in args.names]:
        name = ex.name
        path = folder / f"{name}.py"
        if path.exists():
            print(f"{path} exists — left as it is (delete it to start over)")
            continue
        number = EXERCISES.index(ex) + 1
        path.write_text(skeleton(ex, number, len(EXERCISES), args.dir), encoding="utf-8")
        print(f"wrote {path}: write {ex.signature}, then run\n    {check_command(name, args.dir)}")
    return 0


def cmd_check(args) -> int:
    if args.all == bool(args.names):
        print(f"{PROGRAM} check: give exercise names or --all, not both", file=sys.stderr)
        return 2
    exercises = list(EXERCISES) if args.all else [by_name(n) for n in args.names]
    folder = Path(args.dir)
    progress = _progress(folder)
    reports = []
    for ex in exercises:
        path = folder / f"{ex.name}.py"
        reports.append(grade(ex, path, args.timeout))
        if path.exists():
            progress[ex.name] = {"status": reports[-1].status, "mtime": path.stat().st_mtime}
        if path.exists() or not args.all:           # --all lists the missing ones in one line
            print(reports[-1].text + "\n", flush=True)
    if folder.is_dir():
        (folder / PROGRESS).write_text(json.dumps(progress, indent=1))
    missing = [r.name for r in reports if r.status == "not started"]
    if args.all and missing:
        print(f"not started ({len(missing)}): {', '.join(missing)}\n"
              f"  start one with: {PROGRAM} start NAME{_dir_option(args.dir)}\n")
    passed = sum(r.passed for r in reports)
    if len(reports) > 1:
        print(f"{passed} of {len(reports)} passed")
    return 0 if passed == len(reports) else 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS,
                        help="the folder of your exercise files (default: ./exercises)")
    parser = argparse.ArgumentParser(prog=PROGRAM, parents=[common], description=(
        "Write attention's forward and backward passes yourself; the grader compares them with "
        "the library's and says what is wrong."))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help="the exercises, in order, with your status"
                   ).set_defaults(func=cmd_list)
    start = sub.add_parser("start", parents=[common], help="write the skeleton of an exercise")
    start.add_argument("names", nargs="+", metavar="NAME")
    start.set_defaults(func=cmd_start)
    check = sub.add_parser("check", parents=[common], help="grade exercises")
    check.add_argument("names", nargs="*", metavar="NAME")
    check.add_argument("--all", action="store_true", help="grade every exercise")
    check.add_argument("--timeout", type=float, default=5.0,
                       help="seconds one call of your function may take (default 5)")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")       # √, α, … on a terminal that lacks them
    args = _parser().parse_args(argv)
    args.dir = getattr(args, "dir", "exercises")       # --dir may stand before or after the command
    try:
        return args.func(args)
    except UnknownExercise as exc:
        print(f"unknown exercise {exc.args[0]!r} — {PROGRAM} list shows them", file=sys.stderr)
        return 2
