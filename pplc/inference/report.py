"""The summary table printed after sampling (rich), and plain-words warnings.

The table shows what a user looks at first: the model's latents in the order the model
declares them, then its deterministics. An array of deterministics (the 580 distances of
the supernova model, an ODE's path) takes one line: its shape, the range of its elements'
means, R-hat and ESS (the worst R-hat is the largest, the worst ESS the smallest). So does
a latent array of more than `EXPAND_AT_MOST` elements. Naming a variable (`--vars`,
`var_names=`) or `--expand` shows every element; the summary JSON always has them all.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from pplc.inference.summary import select_variables

# Thresholds as in Stan's diagnose and Vehtari et al. (2021).
RHAT_WARN = 1.01
ESS_WARN_PER_CHAIN = 100
# A latent array with more elements than this takes one line unless asked for.
EXPAND_AT_MOST = 20

COLUMNS = ("mean", "sd", "5%", "50%", "95%", "mcse_mean", "ess_bulk", "ess_tail", "r_hat")


def _fmt(x, digits=3) -> str:
    if x is None:
        return "nan"
    if abs(x) >= 1e5 or (0 < abs(x) < 1e-3):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}" if abs(x) < 100 else f"{x:.1f}"


def _count(x) -> str:
    return "nan" if x is None else f"{x:.0f}"


def _r_hat(x) -> str:
    return "nan" if x is None else f"{x:.3f}"


class Row(NamedTuple):
    """One line of the table: an element, or a whole array shown as ranges."""

    label: str
    cells: tuple[str, ...]   # one per COLUMNS
    collapsed: str | None = None   # the variable, when the line stands for a whole array


def summary_rows(summary: Mapping[str, Mapping[str, float]], posterior,
                 var_names: str | Sequence[str] | None = None,
                 expand: bool = False) -> list[Row]:
    """The table's lines: the variables `var_names` picks (all by default, latents
    first), each as one row per element or, for arrays of deterministics and large
    latent arrays not asked for by name (or by `expand`), one row of ranges. Only
    elements present in `summary` are shown."""
    chosen = select_variables(var_names, posterior.variable_names(), posterior.element_names)
    rows: list[Row] = []
    for name, picked in chosen.items():
        everything = posterior.element_names(name)
        elements = [e for e in (picked or everything) if e in summary]
        if not elements:
            continue
        large = posterior.role(name) == "deterministic" or len(everything) > EXPAND_AT_MOST
        if len(everything) > 1 and large and var_names is None and not expand:
            shape = posterior.draws[name].shape[2:]
            rows.append(_collapsed_row(name, shape, [summary[e] for e in elements]))
        else:
            rows.extend(_element_row(e, summary[e]) for e in elements)
    return rows


def _element_row(name: str, s: Mapping[str, float]) -> Row:
    return Row(name, (_fmt(s["mean"]), _fmt(s["sd"]), _fmt(s["q5"]), _fmt(s["q50"]),
                      _fmt(s["q95"]), _fmt(s.get("mcse_mean")), _count(s["ess_bulk"]),
                      _count(s["ess_tail"]), _r_hat(s["r_hat"])))


def _collapsed_row(name: str, shape: tuple[int, ...], stats: list[Mapping[str, float]]) -> Row:
    """`D_L (580)  1.2e3..1.5e4  ...`: min..max over the elements of each statistic that
    says whether the array is trustworthy (its means, MCSE, ESS and R-hat)."""
    def spread(key, fmt):
        values = [s.get(key) for s in stats]
        values = [v for v in values if v is not None and np.isfinite(v)]
        if not values:
            return "nan"
        low, high = fmt(min(values)), fmt(max(values))
        return low if low == high else f"{low}..{high}"

    label = f"{name} ({'x'.join(str(n) for n in shape)})"
    return Row(label, (spread("mean", _fmt), "", "", "", "", spread("mcse_mean", _fmt),
                       spread("ess_bulk", _count), spread("ess_tail", _count),
                       spread("r_hat", _r_hat)), collapsed=name)


def print_summary(summary: Mapping[str, Mapping[str, float]], posterior, title: str = "",
                  console: Console | None = None, *,
                  var_names: str | Sequence[str] | None = None, expand: bool = False,
                  how_to_expand: str = "--vars NAME or --expand") -> None:
    """Print the table of `summary_rows`, the run's counts and timings, and warnings.

    The warnings look at every element of `summary`, shown or not."""
    rows = summary_rows(summary, posterior, var_names, expand)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: do not squeeze the table into 80 columns
            console = Console(width=140)
    table = Table(title=title or None, show_edge=False, header_style="bold")
    table.add_column("parameter", justify="left", no_wrap=True)
    for column in COLUMNS:
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(row.label, *row.cells)
    console.print(table)
    collapsed = [row.collapsed for row in rows if row.collapsed]
    if collapsed:
        console.print(f"{', '.join(collapsed)}: one line per array (min..max over its "
                      f"elements); {how_to_expand} shows the elements", highlight=False)
    console.print(f"{posterior.divergences} divergences, {posterior.n_grad_evals} gradient "
                  f"evaluations, compile {posterior.compile_seconds:.2f} s, sampling "
                  f"{posterior.sampling_seconds:.2f} s")
    for line in warnings(summary, posterior):
        console.print(f"[yellow]warning:[/yellow] {line}")


def metric_phrase(attrs: Mapping) -> str:
    """What a run's header says of its metric: for a low-rank one, what each chain kept.

    Why per chain: a low-rank metric (what "auto" runs from 2 to 100 parameters) keeps only
    the eigen-directions whose variance departs from the Fisher diagonal's by more than a
    cutoff, chain by chain (inference/metric.py), so a "low-rank" run may be the diagonal on
    every chain or on some; the name alone would say otherwise. "" for a metric the user
    named, other than low-rank.
    """
    requested, kept = attrs.get("metric_requested"), attrs.get("metric_directions")
    if kept is None:
        return f"metric {attrs.get('metric')} (auto)" if requested == "auto" else ""
    kept = [int(k) for k in kept]
    low = sum(k > 0 for k in kept)
    if low == 0:
        return f"metric {requested}: diagonal (no direction kept)"
    if len(set(kept)) == 1:
        return f"metric {requested}: low-rank, {_directions(kept[0])} kept"
    each = ", ".join(map(str, kept)) if len(kept) <= 8 else f"{min(kept)} to {max(kept)}"
    return (f"metric {requested}: low-rank on {low} of {len(kept)} chains "
            f"(directions kept per chain: {each})")


def _directions(k: int) -> str:
    return f"{k} direction" + ("" if k == 1 else "s")


# k-hat costs about 0.25 ms an element: at most this many elements get one (the scalar
# latents first, the hyperparameters whose tails are the usual heavy ones; the tail-ESS
# test still covers every element).
TAIL_KHAT_AT_MOST = 4000


def tail_khats(posterior) -> dict[str, float]:
    """The right tail's Pareto k-hat of the latent elements, by their summary names (for
    the heavy-tail warning; deterministics follow from the latents)."""
    from pplc.inference.diagnostics import tail_khat
    out: dict[str, float] = {}
    latents = [name for name in posterior.variable_names() if posterior.role(name) == "latent"]
    for name in sorted(latents, key=lambda name: np.asarray(posterior[name]).ndim > 2):
        draws = np.asarray(posterior[name])
        if len(out) + int(np.prod(draws.shape[2:])) > TAIL_KHAT_AT_MOST:
            continue
        flat = draws.reshape(draws.shape[0] * draws.shape[1], -1)
        labels = posterior.element_names(name)
        if len(labels) != flat.shape[1]:
            continue   # only some entries named (an observed array's imputed ones)
        out.update((label, tail_khat(flat[:, i])) for i, label in enumerate(labels))
    return out


def warnings(summary: Mapping[str, Mapping[str, float]], posterior) -> list[str]:
    """Stan's diagnose in plain words: divergences, tree depth, E-BFMI, R-hat, ESS, and
    heavy tails."""
    if posterior.sample_stats.get("energy") is not None:
        from pplc.inference.diagnostics import diagnose
        return diagnose(posterior.sample_stats, summary,
                        max_tree_depth=posterior.attrs.get("max_tree_depth", 10),
                        khats=tail_khats(posterior))
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
