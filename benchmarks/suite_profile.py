"""Sums the per-test lines of tests/cpu_profile.py into the tables of suite_time.md.

Issue 16 item 7 (`make test` in 10 minutes) is tuned by CPU seconds, not wall time, on a
shared machine; this prints, as markdown, the totals, the per-file totals and the slowest
tests of one or more profile files (JSON lines; a test that appears in several files, e.g.
a rerun, counts once: its last line).

    python -m benchmarks.suite_profile PROFILE.jsonl [...] [--top 60]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def load(paths: list[str]) -> tuple[dict[str, dict], float]:
    """(test id -> its row, CPU seconds of the sessions before their first test)."""
    rows, sessions = {}, 0.0
    for path in paths:
        with open(path) as lines:
            for line in lines:
                row = json.loads(line)
                if row["test"] == "<session>":
                    sessions += row["cpu"] + row["child_cpu"]
                else:
                    rows[row["test"]] = row
    return rows, sessions


def total(row: dict) -> float:
    return row["cpu"] + row["child_cpu"]


def render(rows: dict[str, dict], sessions: float, top: int) -> str:
    out = [f"{len(rows)} tests: {sum(map(total, rows.values())):.0f} CPU-s in the tests "
           f"({sum(r['child_cpu'] for r in rows.values()):.0f} of them in child processes), "
           f"{sessions:.0f} CPU-s of session start-up (imports, collection); "
           f"{sum(r['compiles'] for r in rows.values())} XLA compilations "
           f"({sum(r['hits'] for r in rows.values())} from the persistent cache).", "",
           "| file | tests | CPU s | of which children | XLA programs |", "|---|---|---|---|---|"]
    files = defaultdict(lambda: [0, 0.0, 0.0, 0])
    for name, row in rows.items():
        entry = files[name.split("::")[0]]
        entry[0] += 1
        entry[1] += total(row)
        entry[2] += row["child_cpu"]
        entry[3] += row["compiles"]
    for name, (count, cpu, child, compiles) in sorted(files.items(), key=lambda kv: -kv[1][1]):
        out.append(f"| {name} | {count} | {cpu:.1f} | {child:.1f} | {compiles} |")
    out += ["", f"The {top} slowest tests:", "", "| test | CPU s | of which children | "
            "XLA programs |", "|---|---|---|---|"]
    for name, row in sorted(rows.items(), key=lambda kv: -total(kv[1]))[:top]:
        out.append(f"| `{name}` | {total(row):.1f} | {row['child_cpu']:.1f} | "
                   f"{row['compiles']} |")
    return "\n".join(out + programs(rows, top))


def programs(rows: dict[str, dict], top: int) -> list[str]:
    """The in-process XLA compilations by program name (jit(run_chain), ...): count, CPU
    seconds, and in how many tests; the children's compilations are not seen."""
    names = defaultdict(lambda: [0, 0.0, 0])
    for row in rows.values():
        for name, (count, cpu) in row.get("programs", {}).items():
            entry = names[name]
            entry[0] += count
            entry[1] += cpu
            entry[2] += 1
    if not names:
        return []
    out = ["", f"In-process compilations by program ({sum(e[1] for e in names.values()):.0f} "
           f"CPU-s in all), the {top} costliest:", "",
           "| program | compilations | CPU s | tests |", "|---|---|---|---|"]
    for name, (count, cpu, tests) in sorted(names.items(), key=lambda kv: -kv[1][1])[:top]:
        out.append(f"| `{name}` | {count} | {cpu:.1f} | {tests} |")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args(argv)
    print(render(*load(args.profiles), args.top))


if __name__ == "__main__":
    main()
