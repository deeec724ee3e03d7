"""The command line: ``python -m attention_np.exercises [--lang en|zh] list | start NAME |
check NAME | check --all``, each with ``--dir`` (default ./exercises).

``list`` shows the exercises grouped by the site's pages, in the site's order, with the
progress of each. ``start`` writes the skeleton and never overwrites a file that exists.
``check`` grades, prints what is wrong (and, after a pass, where the library's own solution
lives), records the result in ``<dir>/.progress.json`` (read by ``list``) and exits with status
1 unless every exercise it graded passed (2 for a usage error: an unknown exercise, whose
closest names it suggests, or an unknown language).

The language is ``--lang``'s, else the locale's (LC_ALL, LC_MESSAGES, LANG: Chinese when the
first one set starts with "zh"), else English.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attention_np.exercises import EXERCISES, UnknownExercise, by_name, suggestions
from attention_np.exercises.grade import grade, status_word
from attention_np.exercises.lang import (LANGUAGES, UnknownLanguage, check_language,
                                         from_locale, language, say)
from attention_np.exercises.pages import PAGES
from attention_np.exercises.spec import check_command, pad, skeleton

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


def _passed(passed: int, total: int) -> str:
    return say(f"{passed} of {total} passed", f"已通过 {passed}/{total}")


def cmd_list(args) -> int:
    folder = Path(args.dir)
    progress = _progress(folder)
    print(f"{'#':>2}  " + pad(say("exercise", "练习"), 40) + " " + pad(say("status", "状态"), 12)
          + " " + pad(say("article", "原文"), 11) + " " + say("what", "内容"))
    statuses = {ex.name: _status(folder, ex.name, progress) for ex in EXERCISES}
    number = {ex.name: i for i, ex in enumerate(EXERCISES, 1)}
    for page in PAGES:
        here = [ex for ex in EXERCISES if ex.page == page.docname]
        if not here:
            continue
        done = sum(statuses[ex.name] == "passed" for ex in here)
        print(f"\n{page.heading()}" + say(" — ", "——") + _passed(done, len(here)))
        for ex in here:
            print(f"{number[ex.name]:>2}  {ex.name:<40} {pad(status_word(statuses[ex.name]), 12)} "
                  f"{ex.section:<11} {ex.title_in()}")
    passed = list(statuses.values()).count("passed")
    begin = f"{PROGRAM} start NAME{_dir_option(args.dir)}"
    print("\n" + say(f"{passed} of {len(EXERCISES)} passed (files in {folder}/). "
                     f"Begin with: {begin}",
                     f"共 {len(EXERCISES)} 道练习，已通过 {passed} 道（文件在 {folder}/ 中）。"
                     f"开始做题：{begin}"))
    return 0


def cmd_start(args) -> int:
    folder = Path(args.dir)
    exercises = [by_name(name) for name in args.names]
    folder.mkdir(parents=True, exist_ok=True)
    for ex in exercises:
        path = folder / f"{ex.name}.py"
        if path.exists():
            print(say(f"{path} exists — left as it is (delete it to start over)",
                      f"{path} 已存在——保持原样（想从头开始，就先删掉它）"))
            continue
        number = EXERCISES.index(ex) + 1
        path.write_text(skeleton(ex, number, len(EXERCISES), args.dir), encoding="utf-8")
        command = check_command(ex.name, args.dir)
        print(say(f"wrote {path}: write {ex.signature}, then run\n    {command}",
                  f"已写入 {path}：请实现 {ex.signature}，然后运行\n    {command}"))
    return 0


def cmd_check(args) -> int:
    if args.all == bool(args.names):
        print(say(f"{PROGRAM} check: give exercise names or --all, not both",
                  f"{PROGRAM} check：请给出练习名或 --all，二者只能选一个"), file=sys.stderr)
        return 2
    exercises = list(EXERCISES) if args.all else [by_name(n) for n in args.names]
    folder = Path(args.dir)
    progress = _progress(folder)
    reports = []
    for ex in exercises:
        path = folder / f"{ex.name}.py"
        reports.append(grade(ex, path, args.timeout, args.accept_library))
        if path.exists():
            progress[ex.name] = {"status": reports[-1].status, "mtime": path.stat().st_mtime}
        if path.exists() or not args.all:           # --all lists the missing ones in one line
            print(reports[-1].text + "\n", flush=True)
    if folder.is_dir():
        (folder / PROGRESS).write_text(json.dumps(progress, indent=1))
    missing = [r.name for r in reports if r.status == "not started"]
    if args.all and missing:
        begin = f"{PROGRAM} start NAME{_dir_option(args.dir)}"
        print(say(f"not started ({len(missing)}): {', '.join(missing)}\n"
                  f"  start one with: {begin}\n",
                  f"未开始（{len(missing)} 道）：{', '.join(missing)}\n  用这条命令开始：{begin}\n"))
    passed = sum(r.passed for r in reports)
    if len(reports) > 1:
        print(_passed(passed, len(reports)))
    return 0 if passed == len(reports) else 1


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", default=argparse.SUPPRESS,
                        help=say("the folder of your exercise files (default: ./exercises)",
                                 "存放练习文件的文件夹（默认：./exercises）"))
    common.add_argument("--lang", default=argparse.SUPPRESS, metavar="LANG",
                        help=say("the language: " + ", ".join(LANGUAGES) + " (default: from the "
                                 "locale, else en)", "语言：" + "、".join(LANGUAGES)
                                 + "（默认：按系统区域设置，否则为 en）"))
    parser = argparse.ArgumentParser(prog=PROGRAM, parents=[common], description=say(
        "Write attention's forward and backward passes yourself; the grader compares them with "
        "the library's and says what is wrong.",
        "自己动手写出注意力的前向计算和反向计算；评分程序把它们与代码库的实现比较，并指出错在哪里。"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", parents=[common], help=say(
        "the exercises by chapter, with your progress", "按章节列出练习及你的进度")
    ).set_defaults(func=cmd_list)
    start = sub.add_parser("start", parents=[common],
                           help=say("write the skeleton of an exercise", "写出一道练习的骨架文件"))
    start.add_argument("names", nargs="+", metavar="NAME")
    start.set_defaults(func=cmd_start)
    check = sub.add_parser("check", parents=[common], help=say("grade exercises", "评分"))
    check.add_argument("names", nargs="*", metavar="NAME")
    check.add_argument("--all", action="store_true", help=say("grade every exercise",
                                                              "为每一道练习评分"))
    check.add_argument("--timeout", type=float, default=5.0, help=say(
        "seconds one call of your function may take (default 5)",
        "你的函数每次调用最多可用的秒数（默认 5）"))
    check.add_argument("--accept-library", action="store_true", help=say(
        "grade files that use the library's own solution, as a check of the grader itself",
        "也为使用了代码库自带解答的文件评分（用来检验评分程序本身）"))
    check.set_defaults(func=cmd_check)
    return parser


def _language(argv) -> str:
    """--lang's value (as ``--lang zh`` or ``--lang=zh``), else the locale's."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return from_locale()


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")       # √, α, 中文 on a terminal that lacks them
    try:
        code = check_language(_language(argv))
    except UnknownLanguage as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return 2
    with language(code):
        args = _parser().parse_args(argv)
        args.dir = getattr(args, "dir", "exercises")   # --dir may stand before or after the command
        try:
            return args.func(args)
        except UnknownExercise as exc:
            name = exc.args[0]
            close = suggestions(name)
            maybe = say(f" — did you mean {', '.join(close)}?", f"——你是想找 {'、'.join(close)} 吗？") \
                if close else ""
            print(say(f"unknown exercise {name!r}{maybe} ({PROGRAM} list shows them all)",
                      f"没有名为 {name!r} 的练习{maybe}（{PROGRAM} list 会列出全部练习）"),
                  file=sys.stderr)
            return 2
