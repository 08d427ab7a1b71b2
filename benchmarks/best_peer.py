"""pplc against the best of its peers (NumPyro, BlackJAX, nutpie): the comparison and its
section of results.md.

Users choose between all three, so a ratio against NumPyro alone flatters pplc where
nutpie or BlackJAX is faster (issue 16, PERFORMANCE.md "Performance goals"). For every
figure the best peer is chosen per model and per figure (the highest warm ESS/s, the
shortest cold run, the highest ESS per gradient), and the cell names which peer it was.
A peer that did not run a model (nutpie has no ODE solver) is left out of that model's
choice, and the table says so.
"""

from __future__ import annotations

import math

from benchmarks.report import fmt

PEERS = ("NumPyro", "BlackJAX", "nutpie")
# figure -> (higher is better, label)
BEST_FIGURES = {"ess_per_s": (True, "warm ESS/s"), "first_run_s": (False, "cold wall s"),
                "compiled_run_s": (False, "compiled run s"),
                "ess_per_grad": (True, "ESS/grad")}
TARGET_EVERY, TARGET_GEOMEAN = 1.0, 1.5  # warm ESS/s ratio (PERFORMANCE.md, goal 1)


def _ok(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def compare(entry: dict) -> dict:
    """{figure: {"peer", "value", "ratio"}}: each figure's best peer and pplc / that peer
    (for times the ratio is pplc's time / the peer's, so below 1 is better)."""
    out = {}
    for key, (higher, _) in BEST_FIGURES.items():
        candidates = [(f[key], name) for name, f in entry.get("peers", {}).items()
                      if f and _ok(f.get(key))]
        if not candidates:
            out[key] = {"peer": None, "value": math.nan, "ratio": math.nan}
            continue
        value, peer = max(candidates) if higher else min(candidates)
        mine = entry["pplc"].get(key) if entry.get("pplc") else None
        ratio = mine / value if _ok(mine) and value else math.nan
        out[key] = {"peer": peer, "value": value, "ratio": ratio}
    return out


def geomean(values) -> float:
    values = [v for v in values if _ok(v) and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def _cell(c: dict, digits: int = 2) -> str:
    return "–" if c["peer"] is None else f"**{fmt(c['ratio'], digits)}** ({c['peer']})"


def table(summary: list[dict]) -> str:
    """The ratio table: one row per model, geometric means and the targets below it."""
    out = ["| model | warm ESS/s ÷ best peer's | cold wall time ÷ best peer's | "
           "ESS/grad ÷ best peer's | peers that ran |", "|---" * 5 + "|"]
    for e in summary:
        best = e["best_peer"]
        ran = [p for p in PEERS if e["peers"].get(p)]
        missing = {p: why for p, why in e.get("skipped", {}).items()}
        note = ", ".join(ran) + "".join(f"; {p} not: {why}" for p, why in missing.items())
        out.append(f"| {e['model']} | {_cell(best['ess_per_s'])} | "
                   f"{_cell(best['first_run_s'])} | {_cell(best['ess_per_grad'])} | {note} |")
    warm = [e["best_peer"]["ess_per_s"]["ratio"] for e in summary]
    cold = [e["best_peer"]["first_run_s"]["ratio"] for e in summary]
    grad = [e["best_peer"]["ess_per_grad"]["ratio"] for e in summary]
    below = [(e["model"], r) for e, r in zip(summary, warm) if _ok(r) and r < TARGET_EVERY]
    g = geomean(warm)
    out += ["", f"Geometric means over the suite: warm ESS/s ratio **{fmt(g)}**, cold wall "
            f"time ratio {fmt(geomean(cold))}, ESS/grad ratio {fmt(geomean(grad))}.", "",
            f"- warm ESS/s ≥ {TARGET_EVERY:g}× the best peer on every model: "
            + ("**met**" if not below and any(map(_ok, warm)) else
               "**not met** (" + ", ".join(f"{m} {fmt(r)}" for m, r in below) + ")"),
            f"- geometric mean ≥ {TARGET_GEOMEAN:g}×: "
            + ("**met**" if _ok(g) and g >= TARGET_GEOMEAN else f"**not met** ({fmt(g)})")]
    return "\n".join(out)


def figures_table(summary: list[dict]) -> str:
    """Each system's own figures, side by side (medians over seeds)."""
    out = ["| model | system | chain method | warm ESS/s | cold wall s | compiled run s | "
           "exec s | min ESS | ESS/grad ×1e3 | grads | µs per grad (in sampler) | "
           "divergences | peak RSS MB |", "|---" * 13 + "|"]
    for e in summary:
        for name, f in (("pplc", e["pplc"]), *e["peers"].items()):
            if not f:
                why = e.get("skipped", {}).get(name, "no result")
                out.append(f"| {e['model']} | {name} | ({why}) |" + " |" * 10)
                continue
            g = {k: f.get(k, math.nan) for k in (
                "ess_per_s", "first_run_s", "compiled_run_s", "exec_s", "min_ess_bulk",
                "ess_per_grad", "n_grad_evals", "ms_per_grad", "divergences", "peak_rss_mb")}
            out.append(
                f"| {e['model']} | {name} | {f.get('method') or f.get('chain_method')} | "
                f"{fmt(g['ess_per_s'], 1)} | {fmt(g['first_run_s'])} | "
                f"{fmt(g['compiled_run_s'])} | {fmt(g['exec_s'], 3)} | "
                f"{fmt(g['min_ess_bulk'], 0)} | {fmt(g['ess_per_grad'] * 1e3)} | "
                f"{fmt(g['n_grad_evals'], 0)} | {fmt(g['ms_per_grad'] * 1e3, 2)} | "
                f"{fmt(g['divergences'], 0)} | {fmt(g['peak_rss_mb'], 0)} |")
    return "\n".join(out)


def section(summary: list[dict]) -> list[str]:
    """The results.md lines of the best-peer comparison ([] when no peer besides NumPyro
    ran)."""
    if not any(e["peers"].get(p) for e in summary for p in PEERS[1:]):
        return []
    return [
        "## pplc against the best peer (NumPyro, BlackJAX, nutpie)", "",
        "Each cell: pplc's figure ÷ the best peer's for that model and figure, the peer in "
        "parentheses. Warm ESS/s and ESS/grad: above 1 pplc is better; cold wall time "
        "(launch → draws in hand, compilation included): below 1 pplc is faster. NumPyro is "
        "credited with its better chain method. BlackJAX: NUTS with window adaptation on "
        "NumPyro's flat log density of the same model, the chains vectorized, the whole run "
        "compiled ahead of time (its exec excludes compilation exactly). nutpie: the same "
        "model in PyMC, numba backend, its default diagonal adaptation, one thread per "
        "chain; its exec is a second `nutpie.sample` with the same seed (identical draws, "
        "nothing compiled).", "",
        table(summary), "",
        "### Figures per system", "",
        figures_table(summary),
    ]
