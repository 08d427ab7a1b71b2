"""`python -m benchmarks`: run startup and overhead benchmarks, write and print the report.

    python -m benchmarks [--only startup|overhead] [--quick] [--no-numpyro]
                         [--output benchmarks/results_skeleton.md]

The full run takes about 5-8 minutes on a 2-core machine. `--quick` shrinks every size
(1 chain, 20+20 iterations, N=50) to check the harness in well under a minute; its numbers
mean nothing. Raw results go next to the report as JSON (same name, `.json`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import overhead, report, startup
from benchmarks._common import machine

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_skeleton.md"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["startup", "overhead"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness only")
    p.add_argument("--no-numpyro", action="store_true", help="skip the NumPyro configurations")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    settings = run_all(args.output, only=args.only, quick=args.quick, numpyro=not args.no_numpyro)
    print(args.output.read_text())
    print(f"(report: {args.output}; raw: {args.output.with_suffix('.json')}; "
          f"{settings['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


def run_all(output: Path, *, only: str | None = None, quick: bool = False,
            numpyro: bool = True, log=lambda s: print(s, file=sys.stderr, flush=True)) -> dict:
    """Run the selected benchmarks, write `output` (Markdown) and its `.json`; return settings."""
    started = time.perf_counter()
    if quick:
        s_kw = dict(chains=1, warmup=20, draws=5)
        o_kw = dict(n=50, k=3, chains=1, warmup=20, draws=20)
    else:
        s_kw = dict(chains=4, warmup=1000, draws=10)
        o_kw = dict(n=1000, k=10, chains=4, warmup=1000, draws=1000)
    settings = {"seed": 0, "startup": s_kw, "overhead": o_kw}
    st = ov = None
    if only in (None, "startup"):
        st = startup.run(numpyro=numpyro, log=log, **s_kw)
    if only in (None, "overhead"):
        ov = overhead.run(numpyro=numpyro, log=log, **o_kw)
    settings["elapsed_s"] = time.perf_counter() - started
    mach = machine()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report.render(mach, {k: settings[k] for k in ("seed", "startup", "overhead")},
                                    st, ov))
    output.with_suffix(".json").write_text(json.dumps(
        {"machine": mach, "settings": settings, "startup": st, "overhead": ov}, indent=1))
    return settings


if __name__ == "__main__":
    sys.exit(main())
