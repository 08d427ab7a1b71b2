"""Render results.md: protocol, the suite's figures and ratios, the targets met or not, where
pplc's time goes on each shortfall, cold/warm start, scaling in N, and the density check.

Every sentence with a number is computed from the run's own measurements; the optional
`benchmarks/profile_notes.md` (hand-written profiling findings, dated) is appended verbatim.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import best_peer, scaling
from benchmarks.report import fmt, machine_line, versions_line
from benchmarks.suite import SPEC_BY_NAME

PROFILE_NOTES = Path(__file__).resolve().parent / "profile_notes.md"

TARGETS = {  # figure -> (comparison, bound, label)
    "ess_per_s": (">=", 1.0, "min-ESS/s ratio ≥ 1.0 on every model"),
    "ess_per_s_centered": (">=", 3.0, "min-ESS/s ratio ≥ 3 on the centered hierarchical models"),
    "first_run_s": ("<=", 0.7, "first-run (compile included) time ratio ≤ 0.7"),
    "overhead": ("<=", 1.2, "pplc sampler overhead ≤ 1.2"),
    "peak_rss_mb": ("<=", 1.0, "peak memory ratio ≤ 1.0"),
}


SHORT_LABELS = {"ess_per_s": "ESS/s ≥ 1", "ess_per_s_centered": "ESS/s ≥ 3 (centered)",
                "first_run_s": "first run ≤ 0.7", "overhead": "overhead ≤ 1.2",
                "peak_rss_mb": "memory ≤ 1"}


def _measured(value) -> bool:
    return value is not None and not math.isnan(value)


def _ok(value: float, comparison: str, bound: float) -> bool:
    if value is None or math.isnan(value):
        return False
    return value >= bound if comparison == ">=" else value <= bound


def target_values(entry: dict) -> dict[str, float | None]:
    """The value each target is judged on for one model (None: target does not apply)."""
    r = entry["ratios"]
    centered = SPEC_BY_NAME[entry["model"]].centered if entry["model"] in SPEC_BY_NAME else False
    return {"ess_per_s": r["ess_per_s"],
            "ess_per_s_centered": r["ess_per_s"] if centered else None,
            "first_run_s": r["first_run_s"], "overhead": entry["pplc"].get("overhead"),
            "peak_rss_mb": r["peak_rss_mb"]}


def shortfalls(summary: list[dict]) -> list[tuple[str, str, float]]:
    """(model, target key, value) for every target a model misses."""
    out = []
    for entry in summary:
        for key, value in target_values(entry).items():
            comparison, bound, _ = TARGETS[key]
            if _measured(value) and not _ok(value, comparison, bound):
                out.append((entry["model"], key, value))
    return out


# ---------------------------------------------------------------------------------------
# tables


def figures_table(summary: list[dict]) -> str:
    head = ("| model | system | chain method | first run s | compiled run s | min ESS | "
            "ESS/s | ESS/grad ×1e3 | ms per grad (in sampler) | bare grad µs | overhead | "
            "divergences (per seed) | peak RSS MB | XLA compiles, first run | seeds |")
    out = [head, "|---" * 15 + "|"]
    for e in summary:
        for label, f in (("pplc", e["pplc"]), ("NumPyro", e["numpyro"])):
            if not f:
                out.append(f"| {e['model']} | {label} | (no result) |" + " |" * 12)
                continue
            grad = f.get("grad_in_loop_s")
            xla = f.get("first_xla") or {}
            out.append(
                f"| {e['model']} | {label} | {f.get('method') or f.get('chain_method')} | "
                f"{fmt(f['first_run_s'])} | {fmt(f['compiled_run_s'])} | "
                f"{fmt(f['min_ess_bulk'], 0)} | {fmt(f['ess_per_s'], 1)} | "
                f"{fmt(f['ess_per_grad'] * 1e3)} | {fmt(f['ms_per_grad'], 4)} | "
                f"{fmt(grad * 1e6 if grad else None)} | {fmt(f['overhead'])} | "
                f"{fmt(f['divergences'], 0)} ({', '.join(map(str, f['divergences_all']))}) | "
                f"{fmt(f['peak_rss_mb'], 0)} | "
                f"{xla.get('compiles', '–')} / {fmt(xla.get('compile_s'))} s | {f['seeds']} |")
    return "\n".join(out)


def ratio_table(summary: list[dict]) -> str:
    head = ("| model | ESS/s | first run | compiled run | ESS/grad | ms per grad | bare grad | "
            "pplc overhead | peak RSS | targets missed |")
    out = [head, "|---" * 10 + "|"]
    for e in summary:
        r = e["ratios"]
        missed = [SHORT_LABELS[k] for _, k, _ in shortfalls([e])]
        out.append(
            f"| {e['model']} | **{fmt(r['ess_per_s'])}** | {fmt(r['first_run_s'])} | "
            f"{fmt(r['compiled_run_s'])} | {fmt(r['ess_per_grad'])} | {fmt(r['ms_per_grad'])} | "
            f"{fmt(r['bare_grad'])} | {fmt(e['pplc'].get('overhead'))} | "
            f"{fmt(r['peak_rss_mb'])} | {'; '.join(missed) or 'none'} |")
    geo = _geomean([e["ratios"]["ess_per_s"] for e in summary])
    out.append(f"\nGeometric mean of the ESS/s ratio over the suite: **{fmt(geo)}**; "
               f"of the first-run ratio: {fmt(_geomean([e['ratios']['first_run_s'] for e in summary]))}.")
    return "\n".join(out)


def _geomean(values) -> float:
    values = [v for v in values if v and not math.isnan(v) and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def targets_block(summary: list[dict]) -> str:
    out = []
    for key, (comparison, bound, label) in TARGETS.items():
        judged = [(e["model"], target_values(e)[key]) for e in summary
                  if _measured(target_values(e)[key])]
        misses = [(m, v) for m, v in judged if not _ok(v, comparison, bound)]
        verdict = ("not measured" if not judged else "**not met**" if misses else "**met**")
        detail = ", ".join(f"{m} {fmt(v)}" for m, v in misses) if misses else "every model"
        out.append(f"- {label}: {verdict}" + (f" (misses: {detail})" if misses else ""))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# where the time goes: each shortfall decomposed into measured factors


def diagnosis(summary: list[dict]) -> str:
    by_model = {e["model"]: e for e in summary}
    out, explained = [], set()
    for model, key, value in shortfalls(summary):
        e = by_model[model]
        if key == "ess_per_s_centered" and (model, "ess_per_s") in explained:
            out[-1] = out[-1].replace("**:", " (target 3 for a centered model too)**:", 1)
            continue
        explained.add((model, key))
        explain = {"ess_per_s": _why_ess, "ess_per_s_centered": _why_ess,
                   "first_run_s": _why_first_run, "overhead": _why_overhead,
                   "peak_rss_mb": _why_memory}[key]
        out.append(f"- **{model}, {TARGETS[key][2].split(' ≥')[0].split(' ≤')[0]} "
                   f"{fmt(value)}**: {explain(e)}")
    return "\n".join(out) or "- (no shortfall)"


def _why_ess(e: dict) -> str:
    r, p, n = e["ratios"], e["pplc"], e["numpyro"]
    return (f"ESS/s ratio = ESS/grad ratio {fmt(r['ess_per_grad'])} ÷ ms-per-grad ratio "
            f"{fmt(r['ms_per_grad'])}. pplc pays {fmt(p['ms_per_grad'] * 1e3, 2)} µs per "
            f"gradient in its sampler against NumPyro's {fmt(n['ms_per_grad'] * 1e3, 2)} µs "
            f"({n.get('method')}); the bare gradient alone is {fmt(r['bare_grad'])}× NumPyro's "
            f"({_us(p)} vs {_us(n)} µs), and the sampler adds {fmt(p.get('overhead'))}× (pplc, "
            f"{p.get('chain_method')}) against {fmt(n.get('overhead'))}× (NumPyro). "
            f"Gradients used: {fmt(p['n_grad_evals'], 0)} vs {fmt(n['n_grad_evals'], 0)}; "
            f"min ESS {fmt(p['min_ess_bulk'], 0)} ({p.get('min_ess_where')}) vs "
            f"{fmt(n['min_ess_bulk'], 0)} ({n.get('min_ess_where')}).")


def _us(f: dict) -> str:
    g = f.get("grad_in_loop_s")
    return fmt(g * 1e6 if g else None)


def _why_first_run(e: dict) -> str:
    p, n = e["pplc"], e["numpyro"]
    xla = p.get("first_xla") or {}
    rest = p["first_run_s"] - p["compile_s"] - p["exec_s"]
    return (f"pplc's first run ({fmt(p['first_run_s'])} s) = warmup+sampling "
            f"{fmt(p['exec_s'])} s + sampler setup {fmt(p['compile_s'])} s (initial points, "
            f"compilation of the sampler programs) + {fmt(rest)} s of interpreter start-up, "
            f"imports, parsing, conditioning/lowering and constraining the draws; XLA compiled "
            f"{xla.get('compiles', '–')} programs in {fmt(xla.get('compile_s'))} s. NumPyro "
            f"({n.get('method')}): {fmt(n['first_run_s'])} s, of which warmup+sampling "
            f"{fmt(n['exec_s'])} s and JAX compile pipeline {fmt(n['compile_s'])} s. "
            + ("Sampling itself is the larger part: the ratio follows the exec ratio "
               f"({fmt(e['ratios']['exec_s'])})."
               if p["exec_s"] > p["compile_s"] + rest else
               "Start-up and compilation are the larger part."))


def _why_overhead(e: dict) -> str:
    p = e["pplc"]
    g, grads = p.get("grad_in_loop_s"), p["n_grad_evals"]
    if not g or not grads:
        return "no bare-gradient measurement"
    machinery = (p["exec_s"] - grads * g) / grads * 1e6
    return (f"exec {fmt(p['exec_s'], 3)} s for {fmt(grads, 0)} gradients of {_us(p)} µs each "
            f"(floor {fmt(grads * g, 3)} s): the NUTS machinery costs {fmt(machinery, 2)} µs "
            f"per leapfrog step beyond the gradient (chain method {p.get('chain_method')}). "
            f"NumPyro's overhead on the same model: {fmt(e['numpyro'].get('overhead'))}×.")


def _why_memory(e: dict) -> str:
    p, n = e["pplc"], e["numpyro"]
    return (f"peak RSS {fmt(p['peak_rss_mb'], 0)} MB (pplc) vs {fmt(n['peak_rss_mb'], 0)} MB "
            f"(NumPyro, {n.get('method')}); both include the interpreter, JAX and the "
            f"compiled programs of two runs.")


# ---------------------------------------------------------------------------------------
# cold/warm, density


def coldwarm_table(rows: list[dict], summary: list[dict]) -> str:
    numpyro_first = {e["model"]: e["numpyro"].get("first_run_s") for e in summary}
    out = ["| model | pplc no cache: wall s (pplc compile s) | cache, cold | "
           "cache, warm (new data) | warm ÷ no cache | NumPyro first run s | "
           "pplc warm ÷ NumPyro | cache files |", "|---" * 8 + "|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        by_mode = {r["mode"]: r for r in rows if r["model"] == model}
        cells = []
        for mode in ("no cache", "cache, cold", "cache, warm"):
            r = by_mode.get(mode, {})
            cells.append("error" if "error" in r else
                         f"{fmt(r.get('process_wall_s'))} ({fmt(r.get('compile_seconds'))})")
        wall = {m: by_mode.get(m, {}).get("process_wall_s") for m in by_mode}
        np_first = numpyro_first.get(model)
        warm = wall.get("cache, warm")
        out.append(f"| {model} | {' | '.join(cells)} | "
                   f"{fmt(warm / wall['no cache'] if warm and wall.get('no cache') else None)} | "
                   f"{fmt(np_first)} | {fmt(warm / np_first if warm and np_first else None)} | "
                   f"{by_mode.get('cache, warm', {}).get('cache_files', '–')} |")
    return "\n".join(out)


def density_table(density: dict, twin: str = "NumPyro") -> str:
    if not density:
        return "(not run)"
    if "error" in density:
        return f"density check failed: {density['error']}"
    out = [f"| model | points | spread of log p between points | max abs(pplc − {twin}) of "
           "the differences | same density |", "|---" * 5 + "|"]
    for model, d in density.items():
        if "skipped" in d:
            out.append(f"| {model} | no twin: {d['skipped']} | | | – |")
            continue
        if "error" in d:
            out.append(f"| {model} | error: {d['error'][-160:]} | | | no |")
            continue
        same = d["max_abs_diff"] <= 1e-6 * max(1.0, d["spread"])
        out.append(f"| {model} | {d['points']} | {fmt(d['spread'])} | "
                   f"{d['max_abs_diff']:.2e} | {'yes' if same else '**NO**'} |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# the document


def render(machine: dict, settings: dict, summary: list[dict], density: dict,
           coldwarm_rows: list[dict], scaling_rows: list[dict],
           density_pymc: dict | None = None) -> str:
    parts = [
        "# pplc vs NumPyro, BlackJAX and nutpie: speed, compile latency, memory and scaling",
        "",
        f"Generated by `python -m benchmarks` on {machine['date']}; minutes per part: "
        + ", ".join(f"{k} {v / 60:.0f}" for k, v in settings.get("elapsed_s", {}).items()
                    if k != "last_run") + ".",
        machine_line(machine),
        versions_line(machine),
        "",
        "## Protocol",
        "",
        f"{settings['chains']} chains × ({settings['warmup']} warmup + {settings['draws']} "
        f"draws), seeds {list(settings['seeds'])} (median reported"
        + (f"; one seed only for {', '.join(settings['single_seed'])}, to keep the run "
           "within its time budget" if settings.get("single_seed") else "")
        + "). Every (model, system, chain method, seed) ran in a fresh process; pplc and "
        "its peers alternate (per model and seed: pplc, BlackJAX, nutpie, NumPyro). All "
        "compute in float64 (pplc always does; NumPyro and BlackJAX with "
        "`jax_enable_x64`) with Stan's NUTS settings (target accept 0.8, max tree depth 10, "
        "uniform(−2, 2) initial points, diagonal metric). pplc chooses its chain method "
        "(`auto`). "
        + ("NumPyro ran `vectorized` and `sequential` on the first seed and the "
           "better of the two (by ESS/s) on the others; **each NumPyro figure is credited "
           "with the better of its two methods** (PERFORMANCE.md). "
           if len(settings.get("numpyro_methods", (1, 2))) > 1 else
           f"NumPyro ran `{settings['numpyro_methods'][0]}` only (a `--quick` run). ")
        + "ESS: ArviZ bulk ESS, minimum over "
        "every element of the model's parameters. JAX compile events counted with "
        "`jax.monitoring`. Data are generated with fixed seeds (benchmarks/datasets.py).",
        "",
        "- **first run**: process launch → draws in hand (interpreter, imports, model build, "
        "all compilation, warmup, sampling). **compiled run**: the same run again in the same "
        "process (NumPyro's `mcmc.run` recompiles part of its programs).",
        "- **exec**: warmup + sampling without compilation (pplc's `sampling_seconds`; NumPyro: "
        "first-run wall minus every JAX compile-pipeline event). ESS/s = min ESS / exec.",
        "- **grads**: leapfrog steps over all chains, warmup included. **ms per grad** = exec / "
        "grads. **bare grad**: one value-and-gradient inside a compiled loop, each system's "
        "own density. **overhead** = exec / (grads × bare grad); below 1 means chains ran "
        "in parallel on the two cores.",
        "- **peak RSS**: `ru_maxrss` of the worker process after its two runs.",
        "",
        "**Load caveat:** the machine has 2 cores, shared with other jobs during this run, so "
        "wall times (and ESS/s) are noisy, easily ±30%; ESS/grad, divergences, compile "
        "counts and memory are not. Ratios under about 1.3× are within noise."
        + (f" Load average (1, 5, 15 min) {machine['load']}." if machine.get("load") else ""),
        "",
        "## Targets (the figures decide, not the tests)",
        "",
        targets_block(summary),
        "",
        *best_peer.section(summary),
        "",
        "## Ratios pplc / NumPyro (medians over seeds; NumPyro credited with its better "
        "chain method)",
        "",
        ratio_table(summary),
        "",
        "![ratios](results.png)",
        "",
        "## Figures per model and system",
        "",
        "Models: " + "; ".join(f"{s.name}: `{_rel(s.ppl)}`" + (f" ({s.note})" if s.note else "")
                               for s in (SPEC_BY_NAME[e['model']] for e in summary)) + ".",
        "",
        figures_table(summary),
        "",
        "## Where the time goes, for each shortfall (from this run's measurements)",
        "",
        diagnosis(summary),
    ]
    if PROFILE_NOTES.exists():
        parts += ["", PROFILE_NOTES.read_text().strip()]
    parts += [
        "",
        "## Compile latency: cold and warm start of `pplc sample`",
        "",
        "Fresh `pplc sample` processes, same protocol sizes, seed 0. *no cache*: "
        "`--no-cache`. *cache, cold*: an empty cache folder (`PPLC_CACHE_DIR`). *cache, warm*: "
        "the same folder, new data of the same shapes. Wall = launch → exit; in parentheses "
        "pplc's own compile_seconds (all but warmup + sampling). NumPyro: its first run "
        "(fresh process, launch → draws in hand) from the suite.",
        "",
        coldwarm_table(coldwarm_rows, summary) if coldwarm_rows else "(not run)",
        "",
        "## Scaling in N: linear regression, K = 5, value-and-gradient program",
        "",
        "Each (N, system) in a fresh process, float64. Compile = trace+lower and XLA compile "
        "of `jit(value_and_grad)` (pplc: data a runtime argument; NumPyro: `potential_fn`, "
        "data closed over). Setup = pplc `condition` (data given as nested lists) / NumPyro "
        "`initialize_model`. Plot: `scaling.png`.",
        "",
        scaling.scaling_table(scaling_rows) if scaling_rows else "(not run)",
        "",
        scaling.scaling_checks(scaling_rows) if scaling_rows else "",
        "",
        "![scaling](scaling.png)",
        "",
        "## Same densities: pplc and NumPyro log densities compared",
        "",
        "Both log densities on the constrained scale, without Jacobians (NumPyro's from its "
        "potential minus its own log-Jacobian, so its enumeration is included), at random "
        "points; compared as differences from the first point (normalizing constants cancel).",
        "",
        density_table(density),
    ]
    if density_pymc:
        parts += ["", "The PyMC twins nutpie samples (benchmarks/pymc_models.py) against pplc, "
                  "the same way (PyMC's `compile_logp(jacobian=False)` at the same constrained "
                  "points):", "", density_table(density_pymc, "PyMC")]
    return "\n".join(parts) + "\n"


def _rel(path: Path) -> str:
    try:
        return str(Path(path).relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return str(path)
