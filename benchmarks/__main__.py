"""`python -m benchmarks`: pplc against NumPyro, BlackJAX and nutpie, side by side, in one run.

    python -m benchmarks                      # the full run: results.md, results.png,
                                              # scaling.png and results.json in benchmarks/
    python -m benchmarks --only suite|scaling|coldwarm
                                              # one part; merged into results.json, and
                                              # results.md / the plots re-rendered
    python -m benchmarks --only startup|passes
                                              # older, separate reports (results_skeleton.md,
                                              # results_passes.md)
    python -m benchmarks --quick [--output-dir DIR]
                                              # tiny sizes, smallest model: checks the
                                              # harness only; its numbers mean nothing
                                              # (peers that are not installed are skipped)

The full run takes hours on a 2-core machine (the suite: 9 models x 3 seeds x (pplc, NumPyro
twice, BlackJAX, nutpie), each in a fresh process). `--seeds`, `--models`, `--single-seed`
and `--no-peers` trim it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks import coldwarm, passes, plots, report, results, scaling, startup, suite
from benchmarks._common import machine

HERE = Path(__file__).resolve().parent
PARTS = ("suite", "scaling", "coldwarm")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=PARTS + ("startup", "passes"))
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes on the smallest model: checks the harness only")
    p.add_argument("--no-numpyro", action="store_true", help="skip the NumPyro side")
    p.add_argument("--no-density-check", action="store_true",
                   help="skip the check that the twins' log densities are pplc's")
    p.add_argument("--no-peers", action="store_true",
                   help="skip BlackJAX and nutpie (the full run needs them otherwise)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="where results.md/png/json go (default benchmarks/; with --quick a "
                        "temporary folder)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    p.add_argument("--models", default=None,
                   help="comma-separated suite models (default: all; see benchmarks/suite.py)")
    p.add_argument("--single-seed", default="",
                   help="comma-separated models run with the first seed only (time budget)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = args.output_dir or (Path(tempfile.gettempdir()) / "pplc-bench-quick"
                                  if args.quick else HERE)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.only in ("startup", "passes"):
        return run_legacy(args.only, out_dir, args.quick, not args.no_numpyro)
    written = run_parts(args, out_dir)
    print(Path(written[0]).read_text())
    print(f"(written: {', '.join(map(str, written))})", file=sys.stderr)
    return 0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def suite_settings(args) -> suite.Settings:
    names = tuple(args.models.split(",")) if args.models else tuple(s.name for s in suite.SPECS)
    unknown = [n for n in names if n not in suite.SPEC_BY_NAME]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; known: {list(suite.SPEC_BY_NAME)}")
    peers = () if args.no_peers else installed_peers(required=not args.quick)
    if args.quick:
        # NumPyro with one chain method and at one N of the scaling (run_parts): each
        # NumPyro process costs ~10-20 CPU-s of compiling, and the harness's code is the
        # same for the others (tests/test_benchmarks_smoke.py, issue 16 item 7)
        return suite.Settings(chains=2, warmup=30, draws=30, seeds=(0,),
                              numpyro=not args.no_numpyro, peers=peers,
                              numpyro_methods=suite.NUMPYRO_METHODS[:1],
                              models=names if args.models else ("eight_schools_noncentered",))
    return suite.Settings(seeds=tuple(range(args.seeds)), numpyro=not args.no_numpyro,
                          peers=peers, models=names, density_check=not args.no_density_check,
                          single_seed=tuple(filter(None, args.single_seed.split(","))))


PEER_PACKAGES = {"BlackJAX": ("blackjax", "numpyro"), "nutpie": ("nutpie", "pymc")}


def installed_peers(required: bool) -> tuple[str, ...]:
    """The peers whose packages are installed. The full run refuses to go on without
    one (its ratios would silently be against fewer peers); `--quick` skips it."""
    import importlib.util

    found = tuple(p for p, pkgs in PEER_PACKAGES.items()
                  if all(importlib.util.find_spec(m) for m in pkgs))
    missing = [p for p in PEER_PACKAGES if p not in found]
    if missing and required:
        raise SystemExit(f"peer(s) {', '.join(missing)} not installed: run `make bench` "
                         "(or pip install -e '.[test,bench]'), or pass --no-peers")
    return found


def run_parts(args, out_dir: Path) -> list[Path]:
    """Run the selected parts, merge them into results.json, render results.md and plots."""
    started = time.perf_counter()
    load_start = os.getloadavg()
    settings = suite_settings(args)
    raw_path = out_dir / "results.json"
    raw = json.loads(raw_path.read_text()) if args.only and raw_path.exists() else {}
    parts = (args.only,) if args.only else PARTS
    elapsed = raw.setdefault("elapsed_s", {})
    with tempfile.TemporaryDirectory(prefix="pplc-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        if "suite" in parts:
            log(f"suite: {len(settings.models)} models, seeds {settings.seeds}")
            res = suite.run(settings, folder, quick=args.quick, log=log)
            merged = bool(raw.get("suite"))
            raw["suite"] = merge_suite(raw.get("suite"), {
                "settings": asdict(settings), "rows": res["rows"], "density": res["density"],
                "density_pymc": res["density_pymc"]})
            # a run split model by model (`--only suite --models X`) adds up its parts
            elapsed["suite"] = (time.perf_counter() - t
                                + (elapsed.get("suite", 0.0) if merged else 0.0))
            t = time.perf_counter()
        if "coldwarm" in parts:
            log("cold/warm start of `pplc sample`")
            models = (settings.models[:1] if args.quick else
                      [m for m in coldwarm.MODELS if m in settings.models])
            paths = suite.write_data(folder, args.quick, tuple(models))
            raw["coldwarm"] = coldwarm.run(paths, folder, models=models, log=log,
                                           chains=settings.chains, warmup=settings.warmup,
                                           draws=settings.draws,
                                           modes=coldwarm.MODES[1:] if args.quick
                                           else coldwarm.MODES)
            elapsed["coldwarm"], t = time.perf_counter() - t, time.perf_counter()
        if "scaling" in parts:
            log("scaling in N")
            raw["scaling"] = scaling.run((100, 1000) if args.quick else scaling.NS,
                                         numpyro=settings.numpyro, log=log,
                                         numpyro_ns=(100,) if args.quick else None)
            elapsed["scaling"] = time.perf_counter() - t
    earlier = (raw.get("machine") or {}).get("load") if args.only else None
    raw["machine"] = machine()
    load = f"{_load(load_start)} at the start, {_load(os.getloadavg())} at the end"
    # a run in parts (`--only`) keeps each part's load
    raw["machine"]["load"] = f"{earlier}; then {load}" if earlier else load
    elapsed["last_run"] = time.perf_counter() - started
    raw_path.write_text(json.dumps(raw, indent=1, default=str))
    return render_all(raw, out_dir)


def _load(avg) -> str:
    return " / ".join(f"{x:.2f}" for x in avg)


def merge_suite(old: dict | None, new: dict) -> dict:
    """The new run's models replace theirs in an earlier suite; the other models' rows stay
    (so `--only suite --models X` re-measures X after a change without rerunning all)."""
    if not old:
        return new
    rerun = set(new["settings"]["models"])
    rows = [r for r in old["rows"] if r["model"] not in rerun] + new["rows"]
    order = [m for m in old["settings"]["models"] if m not in rerun] + list(new["settings"]["models"])
    single = set(old["settings"].get("single_seed", ())) - rerun
    settings = dict(new["settings"], models=order,
                    single_seed=sorted(single | set(new["settings"].get("single_seed", ()))))
    density = {key: {**{k: v for k, v in (old.get(key) or {}).items() if k not in rerun},
                     **(new.get(key) or {})} for key in ("density", "density_pymc")}
    return {"settings": settings, "rows": rows, **density}


def render_all(raw: dict, out_dir: Path) -> list[Path]:
    """results.md, results.png and scaling.png from the raw results (results.json)."""
    suite_raw = raw.get("suite") or {"settings": asdict(suite.Settings()), "rows": [],
                                     "density": {}}
    summary = suite.summarize(suite_raw["rows"])
    settings = dict(suite_raw["settings"], elapsed_s=raw["elapsed_s"])
    md = out_dir / "results.md"
    md.write_text(results.render(raw["machine"], settings, summary, suite_raw["density"],
                                 raw.get("coldwarm") or [], raw.get("scaling") or [],
                                 suite_raw.get("density_pymc") or {}))
    written = [md, out_dir / "results.json"]
    if summary:
        written.append(plots.plot_ratios(summary, out_dir / "results.png"))
    if raw.get("scaling"):
        written.append(plots.plot_scaling(raw["scaling"], out_dir / "scaling.png"))
    return written


def run_legacy(part: str, out_dir: Path, quick: bool, numpyro: bool) -> int:
    """The older, separate reports: start-up breakdown and the reparameterization pass."""
    mach = machine()
    if part == "startup":
        kw = dict(chains=1, warmup=20, draws=5) if quick else dict(chains=4, warmup=1000,
                                                                     draws=10)
        rows = startup.run(numpyro=numpyro, log=log, **kw)
        out = out_dir / "results_skeleton.md"
        out.write_text(report.render(mach, {"seed": 0, **kw}, rows))
        out.with_suffix(".json").write_text(json.dumps(
            {"machine": mach, "settings": kw, "startup": rows}, indent=1))
    else:
        kw = (dict(chains=1, warmup=20, draws=20, hier_n=200, hier_groups=10) if quick
              else dict(chains=4, warmup=1000, draws=1000))
        out = out_dir / "results_passes.md"
        passes.write(out, mach, {"seed": 0, **kw}, passes.run(numpyro=numpyro, log=log, **kw))
    print(out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
