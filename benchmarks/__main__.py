"""`python -m benchmarks`: run the benchmarks, write and print the reports.

    python -m benchmarks [--only startup|overhead|passes] [--quick] [--no-numpyro]
                         [--output benchmarks/results_skeleton.md]
                         [--passes-output benchmarks/results_passes.md]

startup and overhead go to `--output`; passes (automatic reparameterization on models
written centered, and scaling in N) to `--passes-output`. The full run takes about 10-15
minutes on a 2-core machine (passes alone about 5). `--quick` shrinks every size
(1 chain, 20+20 iterations, N=50) to check the harness in a minute or two; its numbers
mean nothing. Raw results go next to each report as JSON (same name, `.json`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks import overhead, passes, report, startup
from benchmarks._common import machine

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results_skeleton.md"
DEFAULT_PASSES_OUTPUT = Path(__file__).resolve().parent / "results_passes.md"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=["startup", "overhead", "passes"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness only")
    p.add_argument("--no-numpyro", action="store_true", help="skip the NumPyro configurations")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--passes-output", type=Path, default=DEFAULT_PASSES_OUTPUT)
    args = p.parse_args(argv)
    settings = run_all(args.output, only=args.only, quick=args.quick, numpyro=not args.no_numpyro,
                       passes_output=args.passes_output)
    for out in settings["written"]:
        print(Path(out).read_text())
    print(f"(reports: {', '.join(settings['written'])}; raw: same names, .json; "
          f"{settings['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


def run_all(output: Path, *, only: str | None = None, quick: bool = False,
            numpyro: bool = True, passes_output: Path = DEFAULT_PASSES_OUTPUT,
            log=lambda s: print(s, file=sys.stderr, flush=True)) -> dict:
    """Run the selected benchmarks, write the Markdown reports and their `.json`;
    return settings (with "written": the report paths)."""
    started = time.perf_counter()
    if quick:
        s_kw = dict(chains=1, warmup=20, draws=5)
        o_kw = dict(n=50, k=3, chains=1, warmup=20, draws=20)
        p_kw = dict(chains=1, warmup=20, draws=20, hier_n=200, hier_groups=10,
                    ns=(100, 1000))
    else:
        s_kw = dict(chains=4, warmup=1000, draws=10)
        o_kw = dict(n=1000, k=10, chains=4, warmup=1000, draws=1000)
        p_kw = dict(chains=4, warmup=1000, draws=1000)
    settings = {"seed": 0, "startup": s_kw, "overhead": o_kw, "passes": p_kw, "written": []}
    mach = machine()
    if only in (None, "startup", "overhead"):
        st = ov = None
        if only in (None, "startup"):
            st = startup.run(numpyro=numpyro, log=log, **s_kw)
        if only in (None, "overhead"):
            ov = overhead.run(numpyro=numpyro, log=log, **o_kw)
        settings["elapsed_s"] = time.perf_counter() - started
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.render(mach, {k: settings[k] for k in
                                               ("seed", "startup", "overhead")}, st, ov))
        output.with_suffix(".json").write_text(json.dumps(
            {"machine": mach, "settings": settings, "startup": st, "overhead": ov}, indent=1))
        settings["written"].append(str(output))
    if only in (None, "passes"):
        t = time.perf_counter()
        res = passes.run(numpyro=numpyro, log=log, **p_kw)
        p_settings = {"seed": 0, **p_kw, "elapsed_s": round(time.perf_counter() - t)}
        passes.write(passes_output, mach, p_settings, res)
        settings["written"].append(str(passes_output))
    settings["elapsed_s"] = time.perf_counter() - started
    return settings


if __name__ == "__main__":
    sys.exit(main())
