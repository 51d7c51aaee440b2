#!/usr/bin/env python3
"""A mutation probe: apply small, plausible bugs to the controller one at a time and check that
the suite kills each (a test fails). A surviving mutant is a behaviour no test pins down.

    python scripts/mutants.py            # every mutant, fast test dirs (~10 min on 2 cores)
    python scripts/mutants.py SKEW TTL   # only mutants whose name contains one of the words

Each mutant is one exact text replacement (it must match once, so the probe fails loudly when
the code moves); the file is restored whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/unit", "tests/component", "tests/fuzz", "tests/test_app.py"]

# (name, file, original text, mutated text)
MUTANTS = [
    ("first-seen not kept across pushes", "chalicelib/usecases/reconcile.py",
     "before.get(job_id, now)", "now"),
    ("alert on first sight", "chalicelib/usecases/alerts.py",
     'if previous == "ok" and item.status in BAD:', "if item.status in BAD:"),
    ("SKEW zero", "chalicelib/core/freshness.py",
     "SKEW = timedelta(seconds=5)", "SKEW = timedelta(seconds=0)"),
    ("run-history TTL not a week", "chalicelib/edges/state.py",
     "expires = now + timedelta(days=RUN_HISTORY_DAYS)", "expires = now + timedelta(days=70)"),
    ("a result may replace another run's record", "chalicelib/edges/records.py",
     '"attribute_not_exists(pk) OR (#s = :running AND ident = :ident)"',
     '"attribute_not_exists(pk) OR (#s = :running OR ident = :ident)"'),
    ("future starts accepted", "chalicelib/core/formats/recordschema.py",
     "if start > now + skew:", "if start > now + skew * 1000:"),
    ("job id not checked against its args", "chalicelib/core/formats/recordschema.py",
     "job_id(node, record.get(\"spec\", \"\"), action, args) != job",
     "job_id(node, record.get(\"spec\", \"\"), action, args) == 'x'"),
    ("guard share inverted", "chalicelib/core/removals.py",
     "len(removals) * 100 > guard_percent * total", "len(removals) * 100 > 2 * guard_percent * total"),
    ("moves count as removals", "chalicelib/core/removals.py",
     "if j[\"id\"] not in new_ids and _path(j) not in new_paths:", "if j[\"id\"] not in new_ids:"),
    ("backup names of any proc", "chalicelib/core/naming.py",
     'r"[0-9]+-.+", name)', 'r".+", name)'),
    ("entity source not checked", "chalicelib/core/naming.py",
     ".startswith(proc_root(app, proc))", ".startswith(\"/\")"),
    ("unicode digits in schedules", "chalicelib/core/cron.py",
     "if not (expr.isascii() and expr.isdigit()) or len(expr) > 9:", "if not expr.isdigit():"),
    ("expire may overflow Go's duration", "chalicelib/core/cron.py",
     "if len(digits) > 19 or int(digits) * unit * 10**9 > MAX_GO_DURATION_NS:", "if len(digits) > 4000:"),
    ("idle window of 4 s", "chalicelib/core/idlewindow.py", "HOLD = 5", "HOLD = 4"),
    ("Go %v of booleans", "chalicelib/core/jobs.py",
     'return "true" if value else "false"', "return str(value)"),
    ("paths not cleaned", "chalicelib/core/paths.py",
     "cleaned = posixpath.normpath(joined)", "cleaned = joined"),
    ("garbled annotation removes jobs", "chalicelib/core/cluster.py",
     "                cluster.unreadable[key] = garbled\n", "                pass\n"),
    ("ints without a digit bound", "chalicelib/core/formats/inputs.py",
     "or len(digits) > len(str(hi))", "or False"),
    ("changed lists not pushed", "chalicelib/core/plan.py",
     "elif state.version != version:", "elif False:"),
    ("daemon garbage passed on", "chalicelib/edges/backupd.py",
     "        if not ok:\n            raise BackupdGarbage",
     "        if False:\n            raise BackupdGarbage"),
    ("stale running replaces a result", "chalicelib/edges/records.py",
     'condition = "attribute_not_exists(pk) OR skey < :k"',
     'condition = "attribute_not_exists(pk) OR skey <= :k"'),
    ("a suspect success counts as good", "chalicelib/core/retention.py",
     'return success if success and not success.get("suspect") else None',
     'return success'),
    ("a deleted good backup still counts as good", "chalicelib/core/retention.py",
     'return None if good.get("gone") else good', 'return good'),
    ("no expiry margin", "chalicelib/core/retention.py",
     "if now - taken >= expire * (1 - margin_percent / 100):", "if now - taken >= expire:"),
    ("suspect only under 1% of the median", "chalicelib/core/freshness.py",
     "if size * 100 < percent * median:", "if size * 100 < percent * median / 10:"),
    ("a pause without an end lasts ten years", "chalicelib/usecases/jobs.py",
     "    if not until:\n        return longest",
     "    if not until:\n        return now + timedelta(days=3650)"),
    ("the schedule never catches up with an operation", "chalicelib/usecases/operations.py",
     'if op["phase"] == "Snapshotted" else _catch_up(deps, op)',
     'if op["phase"] == "Snapshotted" else False'),
]


def run(mutant: tuple[str, str, str, str]) -> tuple[bool, float]:
    name, rel, old, new = mutant
    path = ROOT / rel
    original = path.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"mutant {name!r}: the text to mutate occurs {original.count(old)} times in {rel}")
    path.write_text(original.replace(old, new))
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                               "--hypothesis-seed=0", *TESTS], cwd=ROOT, capture_output=True,
                              timeout=900)
    finally:
        path.write_text(original)
    return done.returncode != 0, time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(w.lower() in m[0].lower() for w in argv)]
    survived = []
    print("| mutant | file | killed |\n|---|---|---|", flush=True)
    for mutant in chosen:
        killed, seconds = run(mutant)
        print(f"| {mutant[0]} | {mutant[1]} | {'yes' if killed else 'NO'} ({seconds:.0f} s) |",
              flush=True)
        if not killed:
            survived.append(mutant[0])
    print(f"\nkilled {len(chosen) - len(survived)} of {len(chosen)}"
          + (f"; survived: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
