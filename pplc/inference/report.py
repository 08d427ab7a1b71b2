"""The summary table printed after sampling (rich), and plain-words warnings."""

from __future__ import annotations

from typing import Mapping

from rich.console import Console
from rich.table import Table

# Thresholds as in Stan's diagnose and Vehtari et al. (2021).
RHAT_WARN = 1.01
ESS_WARN_PER_CHAIN = 100


def _fmt(x, digits=3) -> str:
    if x is None:
        return "nan"
    if abs(x) >= 1e5 or (0 < abs(x) < 1e-3):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.1f}"


def print_summary(summary: Mapping[str, Mapping[str, float]], posterior, title: str = "",
                  console: Console | None = None, max_rows: int = 60) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: do not squeeze the table into 80 columns
            console = Console(width=140)
    table = Table(title=title or None, show_edge=False, header_style="bold")
    table.add_column("parameter", justify="left", no_wrap=True)
    for column in ("mean", "sd", "5%", "50%", "95%", "r_hat", "ess_bulk", "ess_tail"):
        table.add_column(column, justify="right")
    rows = list(summary.items())
    for name, s in rows[:max_rows]:
        table.add_row(name, _fmt(s["mean"]), _fmt(s["sd"]), _fmt(s["q5"]), _fmt(s["q50"]),
                      _fmt(s["q95"]), _fmt(s["r_hat"], 3) if s["r_hat"] else "nan",
                      f"{s['ess_bulk']:.0f}" if s["ess_bulk"] else "nan",
                      f"{s['ess_tail']:.0f}" if s["ess_tail"] else "nan")
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"... {len(rows) - max_rows} more rows (all are in the summary JSON)")
    console.print(f"{posterior.divergences} divergences, {posterior.n_grad_evals} gradient "
                  f"evaluations, compile {posterior.compile_seconds:.2f} s, sampling "
                  f"{posterior.sampling_seconds:.2f} s")
    for line in warnings(summary, posterior):
        console.print(f"[yellow]warning:[/yellow] {line}")


def warnings(summary: Mapping[str, Mapping[str, float]], posterior) -> list[str]:
    """Stan's diagnose in plain words: divergences, tree depth, E-BFMI, R-hat, ESS."""
    if posterior.sample_stats.get("energy") is not None:
        from pplc.inference.diagnostics import diagnose
        return diagnose(posterior.sample_stats, summary,
                        max_tree_depth=posterior.attrs.get("max_tree_depth", 10))
    out = []
    if posterior.divergences:
        out.append(f"{posterior.divergences} divergent transitions after warmup: the "
                   "posterior may be biased; reparameterize (e.g. noncentered) or raise "
                   "--target-accept")
    chains = posterior.num_chains
    if chains > 1:
        bad = [n for n, s in summary.items() if s["r_hat"] is not None
               and s["r_hat"] > RHAT_WARN]
        if bad:
            out.append(f"R-hat above {RHAT_WARN} for {len(bad)} parameters (e.g. {bad[0]}): "
                       "the chains have not mixed; run longer or reparameterize")
    low = [n for n, s in summary.items() if s["ess_bulk"] is not None
           and s["ess_bulk"] < ESS_WARN_PER_CHAIN * chains]
    if low:
        out.append(f"bulk ESS below {ESS_WARN_PER_CHAIN} per chain for {len(low)} parameters "
                   f"(e.g. {low[0]}): estimates are unreliable; run longer")
    return out
