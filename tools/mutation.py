"""Mutation testing of the article's core (issue 34): ``python -m tools.mutation [FILE ...]``.

mutmut (``pip install -e ".[mutation]"``, configured in pyproject.toml's ``[tool.mutmut]``)
changes one operator, constant or condition of a listed file at a time and runs the tests that
call the changed function; a mutant no test notices *survives*. This script runs mutmut file by
file on one worker (the machine has two cores), reads the accepted equivalent mutants from
``tests/mutation_equivalents.toml`` and writes ``docs/records/mutation.json``:

    per file: generated, killed, survived, timed out, accepted as equivalent, wall seconds,
              score = killed / (generated − accepted)

Files not named keep their numbers from the existing record. ``--report`` rewrites the record
from mutmut's results in ``mutants/`` without running anything; ``--survivors`` lists the
surviving mutants that are not accepted (``mutmut show NAME`` prints one's diff). mutmut caches
which tests call which function by test id; after inserting a case into a ``parametrize`` list
(the ids after it shift) run with ``--fresh``, or a mutant is tried against the wrong cases.

Environment of the run: ``HYPOTHESIS_PROFILE=ci`` (derandomized: a verdict does not depend on a
draw), ``MPLBACKEND=Agg``, and Numba's ``workqueue`` threading layer with one thread per
library. mutmut forks one child per mutant from a process that has already run the tests: the
OpenMP layer's worker pool does not survive a fork (a forked mutant once waited forever at 0 %
CPU), the workqueue layer is fork-safe, and torch and the BLAS stay on one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "records" / "mutation.json"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
COMMAND = "python -m tools.mutation"
ENV = {"HYPOTHESIS_PROFILE": "ci", "MPLBACKEND": "Agg", "NUMBA_THREADING_LAYER": "workqueue",
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code). A test run
# that crashes noticed the mutant too: a segfault (−11: a Numba kernel handed a buffer too
# small wrote past its end) or an abort (−6: one handed a buffer of the wrong rank)
KILLED, SURVIVED = {1, 3, -6, -11}, {0}
TIMED_OUT = {24, -24, 152, 255, 36}
TARGETS = {"attention_np/core.py": 0.98, "attention_np/soft.py": 0.98,
           "attention_np/scores.py": 0.98, "attention_np/self_attention.py": 0.98}
DEFAULT_TARGET = 0.95


def listed_files() -> list[str]:
    """The files pyproject.toml's ``[tool.mutmut] only_mutate`` names, in its order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["mutmut"]["only_mutate"]


def module_of(path: str) -> str:
    """attention_np/graph/edges.py → attention_np.graph.edges (the prefix of its mutant names)."""
    return path.removesuffix(".py").replace("/", ".")


def accepted_equivalents() -> dict[str, str]:
    """Mutant name → the one-line reason it cannot change any result."""
    if not EQUIVALENTS.exists():
        return {}
    return tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8")).get("equivalent", {})


def exit_codes(path: str) -> dict[str, int | None]:
    """mutmut's verdicts for one file: mutant name → the exit code of its test run."""
    meta = ROOT / "mutants" / (path + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]


def refresh_unmutated_copies() -> None:
    """mutmut copies the package into mutants/ once and regenerates only the files it mutates
    (when they change): bring every other module up to date, or the tests would run against
    an old copy of the modules around the mutated ones."""
    listed = set(listed_files())
    for source in (ROOT / "attention_np").rglob("*.py"):
        relative = source.relative_to(ROOT).as_posix()
        copy = ROOT / "mutants" / relative
        if relative not in listed and copy.parent.exists() and (
                not copy.exists() or copy.read_bytes() != source.read_bytes()):
            shutil.copy2(source, copy)


def run_mutmut(path: str, max_children: int) -> dict:
    """Run every mutant of one file: the wall and CPU seconds it took."""
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    wall, cpu0 = time.perf_counter(), cpu()
    subprocess.run(["mutmut", "run", "--max-children", str(max_children), module_of(path) + ".*"],
                   cwd=ROOT, env={**os.environ, **ENV}, check=True)
    return {"wall_seconds": round(time.perf_counter() - wall, 1), "cpu_seconds": round(cpu() - cpu0, 1)}


def summarise(path: str, accepted: dict[str, str]) -> dict:
    """One file's row of the record. A timeout counts as a kill (the mutant made a test hang or
    loop); a mutant no selected test calls ("no tests") counts as a survivor."""
    codes = exit_codes(path)
    count = lambda wanted: sum(code in wanted for code in codes.values())   # noqa: E731
    equivalent = [name for name, code in codes.items() if name in accepted and code in SURVIVED]
    undecided = [name for name, code in codes.items()
                 if code not in KILLED | TIMED_OUT and name not in equivalent]
    tested = len(codes) - len(equivalent)
    return {"generated": len(codes), "killed": count(KILLED),
            "survived": len(undecided), "timed_out": count(TIMED_OUT),
            "accepted_equivalent": len(equivalent),
            "score": round((count(KILLED) + count(TIMED_OUT)) / tested, 4) if tested else None,
            "target": TARGETS.get(path, DEFAULT_TARGET),
            "survivors": sorted(undecided)}


def short(path: str) -> str:
    """attention_np/graph/edges.py → graph/edges (a record key: no dots, see demos._records)."""
    return path.removeprefix("attention_np/").removesuffix(".py")


def this_cpu() -> str:
    """The machine a row's verdicts were made on (rows kept from an older record keep theirs)."""
    sys.path.insert(0, str(ROOT))
    from demos import _records
    return _records.cpu_name(_records.provenance())


def write_record(files: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    from importlib.metadata import version
    from demos import _records
    provenance = {**_records.provenance(), "mutmut": version("mutmut"),
                  "hypothesis_profile": ENV["HYPOTHESIS_PROFILE"]}
    total = {key: round(sum(row[key] or 0 for row in files.values()), 1)
             for key in ("generated", "killed", "survived", "timed_out", "accepted_equivalent",
                         "wall_seconds", "cpu_seconds")}
    record = {"command": COMMAND, "provenance": provenance,
              "wall_seconds": round(total["wall_seconds"], 1),
              "cpu_seconds": round(total["cpu_seconds"], 1),
              "score": "(killed + timed out) / (generated − accepted equivalents), per file",
              "metrics": {"files": {short(path): row for path, row in files.items()},
                          "total": total}}
    RECORD.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return record


# The table README's Tests section shows, written from the record (never typed by hand).
COLUMNS = {"README.md": ("file", "mutants", "killed", "survived", "timed out", "equivalent",
                         "score", "target", "wall (min)"),
           "README.zh-CN.md": ("文件", "变异体", "杀死", "存活", "超时", "等价", "得分", "目标",
                               "用时（分钟）")}


def readme_table(record: dict, columns: tuple) -> str:
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, row in record["metrics"]["files"].items():
        score = "—" if row["score"] is None else f"{100 * row['score']:.1f} %"
        wall = "—" if row["wall_seconds"] is None else f"{row['wall_seconds'] / 60:.1f}"
        rows.append(f"| `{name}.py` | {row['generated']} | {row['killed']} | {row['survived']} | "
                    f"{row['timed_out']} | {row['accepted_equivalent']} | {score} | "
                    f"{100 * row['target']:.0f} % | {wall} |")
    return "\n".join(rows)


def update_readmes(record: dict) -> None:
    """Rewrite the block between ``<!-- records:mutation start -->`` and ``end``."""
    for name, columns in COLUMNS.items():
        path = ROOT / name
        text = path.read_text(encoding="utf-8")
        start, end = "<!-- records:mutation start -->", "<!-- records:mutation end -->"
        if start in text and end in text:
            head, _, rest = text.partition(start)
            _, _, tail = rest.partition(end)
            text = f"{head}{start}\n{readme_table(record, columns)}\n{end}{tail}"
            path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="files to run (default: every listed file)")
    parser.add_argument("--max-children", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only rewrite the record")
    parser.add_argument("--survivors", action="store_true", help="only list the survivors")
    parser.add_argument("--fresh", action="store_true",
                        help="forget which tests call which function (mutants/mutmut-stats.json) "
                             "and collect it again: needed after renaming tests or reordering a "
                             "parametrize list, whose ids mutmut's cache would map to the old cases")
    args = parser.parse_args(argv)
    listed = listed_files()
    unknown = [f for f in args.files if f not in listed]
    if unknown:
        parser.error(f"not in [tool.mutmut] only_mutate: {unknown}")
    accepted = accepted_equivalents()
    if args.survivors:
        for path in args.files or listed:
            print("\n".join(summarise(path, accepted)["survivors"]))
        return 0

    to_run = [] if args.report else args.files or listed
    if to_run:
        refresh_unmutated_copies()
        if args.fresh:
            (ROOT / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    old = (json.loads(RECORD.read_text(encoding="utf-8"))["metrics"]["files"]
           if RECORD.exists() else {})
    times = {path: {key: old[short(path)][key] for key in ("wall_seconds", "cpu_seconds")}
             for path in listed if short(path) in old}
    cpu = this_cpu()
    for path in to_run + [None]:
        if path is not None:
            times[path] = run_mutmut(path, args.max_children)
        # the record after every file. A file whose mutants/ lacks verdicts — a fresh checkout,
        # a file not run here, or one whose verdicts mutmut reset because new tests call its
        # functions — keeps its old row; with no old row, its partial verdicts are shown.
        files = {}
        for p in listed:
            codes = exit_codes(p).values()
            complete = bool(codes) and all(code is not None for code in codes)
            if complete or (short(p) not in old and any(code is not None for code in codes)):
                files[p] = {**summarise(p, accepted),
                            **times.get(p, dict.fromkeys(("wall_seconds", "cpu_seconds"))),
                            "cpu": cpu}
            elif short(p) in old:
                files[p] = old[short(p)]
        update_readmes(write_record(files))
    for path, row in files.items():
        print(f"{path:40s} {row['generated']:5d} generated {row['killed']:5d} killed "
              f"{row['survived']:4d} survived {row['timed_out']:3d} timed out "
              f"{row['accepted_equivalent']:3d} accepted  score {row['score']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
