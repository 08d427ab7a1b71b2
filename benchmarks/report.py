"""Render the benchmark rows as a Markdown report (tables, machine, date, versions)."""

from __future__ import annotations

import math
from typing import Any


def _f(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


def _xla(d: dict | None) -> str:
    return "–" if not d else f"{d['compiles']} / {d['compile_s']:.2f} s"


def startup_table(rows: list[dict]) -> str:
    out = ["| model | system | process wall s (launch→exit; API/NumPyro rows incl. 2nd run) | first draws in hand s | "
           "XLA compiles / s | pplc compile_seconds | 2nd run: compiles / wall s |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["system"] == "pplc breakdown":
            continue
        if "error" in r:
            out.append(f"| {r['model']} | {r['system']} | error: {r['error'][:80]} | | | | |")
            continue
        first = (r["first_draw_at_s"] + (r.get("interpreter_s") or 0.0)
                 if "first_draw_at_s" in r else None)
        second = (f"{r['second_xla']['compiles']} / "
                  f"{r.get('second_sample_s', r.get('second_run_s')):.2f}"
                  if "second_xla" in r else "–")
        comp = r.get("pplc_compile_seconds", r.get("compile_seconds"))
        out.append(f"| {r['model']} | {r['system']} | {_f(r['process_wall_s'])} | {_f(first)} | "
                   f"{_xla(r.get('total_xla'))} | {_f(comp)} | {second} |")
    return "\n".join(out)


BREAKDOWN = (("interpreter", "interpreter_s", None), ("import jax", "import_jax_s", None),
             ("import pplc", "import_pplc_s", None), ("parse+check", "parse_check_s", "parse_check_xla"),
             ("condition+lower", "condition_lower_s", "condition_lower_xla"),
             ("init points", "init_points_s", "init_points_xla"),
             ("sampler compile", "sampler_compile_s", None), ("warmup+draws", None, None),
             ("constrain draws", "constrain_s", "constrain_xla"))


def breakdown_table(rows: list[dict]) -> str:
    heads = [h for h, _, _ in BREAKDOWN] + ["exit", "total (wall)"]
    out = ["| model | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for r in rows:
        if r["system"] != "pplc breakdown" or "error" in r:
            continue
        cells = []
        for _, key, xla in BREAKDOWN:
            if key is None:
                v = r["warmup_s"] + r["sampling_s"]
            else:
                v = r.get(key)
            cell = _f(v)
            if xla and r.get(xla, {}).get("compiles"):
                cell += f" ({r[xla]['compiles']} XLA)"
            if key == "sampler_compile_s":
                cell += f" ({r['sampler_xla']['compiles']} XLA)"
            cells.append(cell)
        exit_s = r["process_wall_s"] - r["worker_s"] - (r.get("interpreter_s") or 0.0)
        cells += [_f(exit_s), _f(r["process_wall_s"])]
        out.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def overhead_table(rows: list[dict]) -> str:
    out = ["| model | system | dim | grads (warmup incl.) | exec s | in-loop grad µs | "
           "py-call grad µs | overhead (in-loop) | overhead (py-call) | machinery µs/step | "
           "min bulk ESS | ESS/s | ESS/grad ×1e3 | cold s | XLA compiles / s |",
           "|---" * 15 + "|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['system']} | error: {r['error'][:80]} |" + " |" * 12)
            continue
        us = lambda k: _f(r[k] * 1e6, 3) if k in r else "–"  # noqa: E731
        out.append(
            f"| {r['model']} | {r['system']} | {r.get('dim', '–')} | {_f(r['n_grad_evals'])} | "
            f"{_f(r['exec_s'], 3)} | {us('grad_in_loop_s')} | {us('grad_call_median_s')} | "
            f"{_f(r.get('overhead_in_loop'))} | {_f(r.get('overhead_py_call'))} | "
            f"{_f(r.get('machinery_us_per_step'))} | {_f(r['min_ess_bulk'], 0)} | "
            f"{_f(r['ess_per_s'], 0)} | {_f(r['ess_per_grad'] * 1e3)} | {_f(r['cold_s'])} | "
            f"{_xla(r.get('cold_xla'))} |")
    np_row = next((r for r in rows if r["system"].startswith("NumPyro") and "error" not in r), None)
    if np_row:
        for r in rows:
            if r["system"].startswith("pplc") and "error" not in r:
                out.append(f"\n{r['system']} / NumPyro sequential, ESS/s: "
                           f"**{r['ess_per_s'] / np_row['ess_per_s']:.2f}×**; ESS/grad: "
                           f"{r['ess_per_grad'] / np_row['ess_per_grad']:.2f}×; exec: "
                           f"{r['exec_s'] / np_row['exec_s']:.2f}×")
    return "\n".join(out)


def render(machine: dict, settings: dict, startup: list[dict] | None,
           overhead: list[dict] | None) -> str:
    v = {k[2:]: x for k, x in machine.items() if k.startswith("v_")}
    parts = [
        "# pplc benchmarks: startup and NUTS overhead, side by side with NumPyro",
        "",
        f"Generated by `python -m benchmarks` on {machine['date']}.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, no GPU; "
        f"{machine['os']}; Python {machine['python']}.",
        "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        f"Settings: {settings}. Every configuration ran in a fresh process; one seed each "
        "(PERFORMANCE.md: single seeds are noisy at about ±15%).",
    ]
    if startup:
        parts += [
            "", "## Startup (fresh process → first draws in hand)", "",
            "pplc is float64 always. NumPyro f32 is JAX's default (as PERFORMANCE.md's "
            "reference: about 6.5 s and 74 compiles cold on eight schools, vectorized); "
            "f64 sets `jax_enable_x64`. \"first draws in hand\" is the process's own clock "
            "plus interpreter start-up; the process wall adds interpreter exit. "
            "\"XLA compiles / s\" counts `/jax/core/compile/backend_compile_duration` "
            "events over the whole first run (imports included); the 2nd run is a new "
            "seed in the same process.", "",
            startup_table(startup), "",
            "### Where pplc's startup goes (s; XLA compiles in parentheses)", "",
            breakdown_table(startup),
        ]
    if overhead:
        parts += [
            "", "## NUTS overhead and ESS/s (linear regression, float64 in both)", "",
            "exec = warmup + sampling without compilation; overhead = exec ÷ (grads × one "
            "gradient); machinery = per-leapfrog-step cost beyond the in-loop gradient. "
            "pplc `auto` chooses its chain method itself (threads on 2 cores).", "",
            overhead_table(overhead),
        ]
    return "\n".join(parts) + "\n"
