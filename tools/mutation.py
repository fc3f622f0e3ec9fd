"""Mutation score of the course's core modules, with mutmut (``pip install -e ".[mutation]"``).

    nice python tools/mutation.py                  # every module below, one after the other
    nice python tools/mutation.py engine loaders   # just these
    python tools/mutation.py --again engine        # after adding tests: re-run only the
                                                   # mutants that survived (or were not
                                                   # reached or had no tests) last time
    python tools/mutation.py --list                # the modules and the tests each one uses

Each module is mutated in its own work folder ``.cache/mutation/<module>/`` (a copy of the
package, the bundled data and the tests, with a ``[tool.mutmut]`` section written for that
module), and each mutant is checked only by the fast unit tests of that module (no notebooks,
no browser, no ``slow`` tests); mutmut runs, for each mutant, only those of them that call the
mutated function. One worker, one thread, workers forked from mutmut's fork server (a
child forked straight from a process that ran torch can deadlock).

Prints one line per module (killed / total, the score) and writes
``.cache/mutation/summary.json`` with the surviving mutants' names; ``mutmut show NAME`` in
the module's work folder prints a survivor's diff. TESTING.md records the last full run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "mutation"

#: module -> (files to mutate, the unit tests that check it); a module split in two is mutated
#: with its other half (its tests call both)
MODULES = {
    # the autocast (amp_dtype) paths are checked by probes in test_mixed_precision.py
    "engine": (["course_utils/engine.py"], ["tests/test_engine.py",
                                            "tests/test_mixed_precision.py"]),
    # ShardedTensorLoader's fast tests live with the other DDP checks
    "loaders": (["course_utils/loaders.py"], ["tests/test_loaders.py", "tests/test_ddp.py"]),
    "checkpoints": (["course_utils/checkpoints.py"], ["tests/test_checkpoints.py"]),
    "data": (["course_utils/data.py", "course_utils/sources.py", "course_utils/ants_bees.py"],
             ["tests/test_data.py", "tests/test_caches.py"]),
    "layers": (["course_utils/layers.py", "course_utils/conv_sizes.py"], ["tests/test_layers.py"]),
    "recipes": (["course_utils/recipes.py", "course_utils/training.py"],
                ["tests/test_recipes.py", "tests/test_mixed_precision.py"]),  # + precision
    "cli": (["course_utils/cli.py"], ["tests/test_cli.py", "tests/test_mixed_precision.py"]),
    "caches": (["course_utils/caches.py"], ["tests/test_caches.py"]),
    "files": (["course_utils/files.py"], ["tests/test_reliability.py", "tests/test_download.py"]),
    "interrupts": (["course_utils/interrupts.py"], ["tests/test_interrupts.py"]),
    "__main__": (["course_utils/__main__.py"], ["tests/test_interrupts.py"]),
    "runs": (["course_utils/runs.py"], ["tests/test_checkpoints.py", "tests/test_runs.py"]),
    # the archive checks (hostile members, the learner's damaged archive) live in test_bad_inputs
    "download": (["course_utils/download.py", "course_utils/archives.py"],
                 ["tests/test_download.py", "tests/test_caches.py", "tests/test_bad_inputs.py"]),
}
#: what the tests read besides the package (REPO_ROOT is the work folder's mutants/)
COPIED = ["data", "README.md"]
TEST_SUPPORT = ["tests/conftest.py", "tests/__init__.py", "tests/_helpers.py",
                "tests/_course_env.py"]


def _toml_list(items) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def prepare(name: str) -> Path:
    """A fresh work folder for ``name``: package, data, its tests, a pyproject for mutmut."""
    tests = MODULES[name][1]
    folder = WORK / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "course_utils", folder / "course_utils", ignore=ignore)
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, folder / item, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, folder / item)
    (folder / "tests").mkdir()
    for item in (*TEST_SUPPORT, *tests):
        if (ROOT / item).exists():
            shutil.copy2(ROOT / item, folder / item)
    _write_config(name, folder)
    return folder


def _write_config(name: str, folder: Path) -> None:
    """``folder/pyproject.toml``: mutmut's settings for ``name`` (its files, its current test
    list), the console script and the project's pytest settings."""
    files, tests = MODULES[name]
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pytest_section = project[project.index("[tool.pytest.ini_options]"):]
    # test_cli reads the console script's target from pyproject.toml
    scripts = "[project.scripts]" + project.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    (folder / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["course_utils"]\n'
        f"only_mutate = {_toml_list(files)}\n"
        f"also_copy = {_toml_list(COPIED)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
        'pytest_add_cli_args = ["-m", "not slow and not browser", "-p", "no:cacheprovider", '
        # a failing test's traceback through a mutated file takes seconds to render and can
        # turn a caught mutant into a "timeout"; one line per failure is enough here
        '"-q", "--tb=line"]\n'
        "timeout_multiplier = 5.0\n"
        # the wall limit is (test time + timeout_constant) × multiplier: a worker starved by
        # other jobs on a busy machine is slow, not hung, so give it a fixed minute on top
        "timeout_constant = 60.0\n"
        # a child forked from a process that ran torch can deadlock: fork from a clean server
        'process_isolation = "forkserver"\n\n' + scripts.rstrip() + "\n\n" + pytest_section,
        encoding="utf-8")


def refresh_tests(name: str) -> Path:
    """For ``--again``: the same work folder and mutants, the current tests; mutmut collects
    again which tests call which function (new tests count)."""
    folder = WORK / name
    for item in (*TEST_SUPPORT, *MODULES[name][1]):
        for base in (folder, folder / "mutants"):
            if (ROOT / item).exists():
                shutil.copy2(ROOT / item, base / item)
    for stale in ("mutmut-stats.json",):
        (folder / "mutants" / stale).unlink(missing_ok=True)
    _write_config(name, folder)  # the module's test list may have grown since
    return folder


def _listing(folder: Path, env) -> list[tuple[str, str]]:
    out = subprocess.run(["mutmut", "results", "--all", "true"], cwd=folder, env=env,
                         capture_output=True, text=True, check=False).stdout
    return [(a.strip(), b.strip()) for a, _, b in
            (line.rpartition(":") for line in out.splitlines() if ":" in line)]


def run(name: str, again: bool = False) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "COURSE_OFFLINE": "1", "MPLBACKEND": "Agg"}
    env.pop("CI", None)  # unit tests, not fast-mode notebooks
    if again and (WORK / name / "mutants").is_dir():
        folder = refresh_tests(name)
        names = [m for m, status in _listing(folder, env)
                 if status in ("survived", "not checked", "timeout", "no tests",
                               # a KeyboardInterrupt that escaped into pytest (a mutated
                               # signal handler): run again once the test catches it
                               "check was interrupted by user")]
    else:
        folder, names = prepare(name), []
    t0 = time.monotonic()
    log = folder / ("mutmut-again.log" if again else "mutmut.log")
    with open(log, "w", encoding="utf-8") as out:
        subprocess.run(["mutmut", "run", "--max-children", "1", *names], cwd=folder, env=env,
                       stdout=out, stderr=subprocess.STDOUT, check=False)
    subprocess.run(["mutmut", "export-cicd-stats"], cwd=folder, env=env,
                   capture_output=True, check=False)
    stats_file = folder / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    listing = _listing(folder, env)
    survivors = sorted(m for m, status in listing if status == "survived")
    others = sorted(f"{m}: {status}" for m, status in listing
                    if status not in ("killed", "survived"))
    # a mutant that makes the tests crash (segfault) is caught too; timeouts are listed apart
    killed = sum(stats.get(k, 0) for k in ("killed", "segfault"))
    total = stats.get("total", 0)
    if not total or not killed + stats.get("survived", 0):
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"mutmut did not test the mutants of {name}; its log {log} ends:\n"
                           + tail)
    return {"module": name, "files": MODULES[name][0], "tests": MODULES[name][1],
            "killed": killed, "total": total, "stats": stats,
            "score": round(killed / total, 4) if total else None,
            "survivors": survivors, "not_killed_other": others,
            "minutes": round((time.monotonic() - t0) / 60, 1), "log": str(log)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"modules to mutate (default: all of {', '.join(MODULES)})")
    parser.add_argument("--again", action="store_true",
                        help="re-run only the mutants that survived (or were not reached) "
                             "last time, with the current tests (same work folder)")
    parser.add_argument("--list", action="store_true", help="show the modules and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (files, tests) in MODULES.items():
            print(f"{name:12} {' '.join(files)}  <-  {' '.join(tests)}")
        return 0
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if shutil.which("mutmut") is None:
        print('mutmut is not installed: pip install -e ".[mutation]"', file=sys.stderr)
        return 2
    summary_file = WORK / "summary.json"
    for name in args.modules or list(MODULES):
        result = run(name, again=args.again)
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
        summary[name] = result
        summary_file.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        score = f"{result['score']:.1%}" if result["score"] is not None else "n/a"
        print(f"{name:12} caught {result['killed']}/{result['total']} = {score}, "
              f"{len(result['survivors'])} survived ({result['minutes']} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
