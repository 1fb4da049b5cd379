"""The kill -9 and full-disk matrix of every writing command (issue 21): commands × moments →
before / after / HALF (a state between the two: what must never happen).

    python benchmarks/fault_matrix.py [--moments 10] [--rows 60000] [--only NAME ...]

Each command runs as ``python -m sdaudit`` in a subprocess on a copy of one home; kill -9 lands at
``--moments`` delays spread from 0 to the command's measured duration, and, for commands that copy
files into the home, the moment their file journal appears (files written, nothing committed).
The disk-full rows set ``RLIMIT_FSIZE`` to each of the case's sizes. States are compared as
``tests/test_faults.py`` compares them (every table's rows, every file of the home; the machinery
lives there, so the tests and this table cannot drift apart).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's sdaudit and the tests' machinery

from test_faults import CASES, Bench, _prepare_import  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=10)
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the origin sheet import-annotations reads")
    parser.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    args = parser.parse_args()
    cases = dict(CASES)
    cases["import-annotations"] = replace(CASES["import-annotations"], prepare=_prepare_import(args.rows))
    half = 0
    with tempfile.TemporaryDirectory(prefix="sdaudit-faults-") as scratch:
        for name, case in cases.items():
            if args.only and name not in args.only:
                continue
            started = time.perf_counter()
            bench = Bench(case, Path(scratch) / name.replace(" ", "-"))
            kills = bench.moments(args.moments)
            disks = []
            for limit in case.limits:
                outcome, result = bench.disk_full(limit)
                error = result.stderr.strip().splitlines()[-1][:90] if result.returncode else ""
                disks.append((limit, outcome, result.returncode, error))
            half += sum(outcome == "HALF" for _, outcome in kills) + sum(row[1] == "HALF" for row in disks)
            print(f"\n## {name}" + (f" ({args.rows:,}-row origin sheet)" if name == "import-annotations" else "")
                  + f": one run takes {bench.seconds:.2f} s; matrix {time.perf_counter() - started:.0f} s")
            print("kill -9 at  | " + " | ".join(moment for moment, _ in kills))
            print("outcome     | " + " | ".join(outcome for _, outcome in kills))
            for limit, outcome, code, error in disks:
                print(f"disk full at {limit:>9,} bytes: exit {code}, {outcome}" + (f"; {error}" if error else ""))
            sys.stdout.flush()
    print(f"\nHALF outcomes: {half}")
    return 1 if half else 0


if __name__ == "__main__":
    sys.exit(main())
