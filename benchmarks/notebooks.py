"""Wall time of the notebook suite in CI mode: ``CI=true pytest --nbmake notebooks/``.

Runs the suite once (or ``--rounds`` times), timing the whole command with
``time.perf_counter`` and each notebook from pytest's JUnit XML report.

    python benchmarks/notebooks.py                 # target: <= 180 s in total on 2 cores
    python benchmarks/notebooks.py --rounds 3      # median of three runs
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import _common


def run_suite(notebooks: list[Path]) -> dict:
    """One ``pytest --nbmake`` run: total wall seconds, per-notebook seconds and outcomes."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "--nbmake", "-q", "-p", "no:cacheprovider",
               f"--junitxml={report}", *map(str, notebooks)]
        env = {k: v for k, v in os.environ.items() if k not in _common.DEFAULTED}
        env["CI"] = "true"
        rec = {}
        with _common.measure(rec):
            proc = subprocess.run(cmd, cwd=_common.REPO_ROOT, env=env, capture_output=True,
                                  text=True)
        per_notebook = {}
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                name = Path(case.get("file") or case.get("name")).name
                failed = any(child.tag in ("failure", "error") for child in case)
                per_notebook[name] = {"seconds": float(case.get("time", 0)),
                                      "passed": not failed}
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return {"seconds": rec["seconds"], "load_before": rec["load_before"],
            "load_after": rec["load_after"], "returncode": proc.returncode,
            "per_notebook": per_notebook}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--glob", default="notebooks/*.ipynb", help="which notebooks")
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    notebooks = sorted(_common.REPO_ROOT.glob(args.glob))
    if not notebooks:
        raise SystemExit(f"no notebooks match {args.glob!r} under {_common.REPO_ROOT}")
    runs = []
    for r in range(args.rounds):
        run = run_suite(notebooks)
        runs.append(run)
        print(f"round {r + 1}: {run['seconds']:.1f} s in total (pytest exit code "
              f"{run['returncode']}; load {run['load_before']} → {run['load_after']})")
    names = sorted({n for run in runs for n in run["per_notebook"]})
    print(f"\n{'notebook':44s} median s  passed")
    for name in names:
        times = [run["per_notebook"][name]["seconds"] for run in runs
                 if name in run["per_notebook"]]
        ok = all(run["per_notebook"].get(name, {}).get("passed", False) for run in runs)
        print(f"{name:44s} {_common.median(times):8.1f}  {ok}")
    total = _common.median([run["seconds"] for run in runs])
    print(f"{'TOTAL (wall, whole pytest command)':44s} {total:8.1f}  (target <= 180 s)")
    result = {"notebooks": [str(p.relative_to(_common.REPO_ROOT)) for p in notebooks],
              "runs": runs, "median_total_seconds": total}
    _common.save_result("notebooks", result, args.out)
    return result


if __name__ == "__main__":
    main()
