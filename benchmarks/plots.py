"""results.png (the ratios pplc / NumPyro per model, against their targets) and scaling.png
(compile time and gradient time against N, both systems), with matplotlib's Agg backend."""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.suite import SPEC_BY_NAME

# (figure key, title, target lines, higher is better)
PANELS = (
    ("ess_per_s", "min-ESS/s ratio", (1.0, 3.0), True),
    ("first_run_s", "first run (compile incl.) ratio", (0.7,), False),
    ("compiled_run_s", "compiled run ratio", (), False),
    ("ess_per_grad", "ESS per gradient ratio", (1.0,), True),
    ("overhead", "pplc sampler overhead (not a ratio)", (1.2,), False),
    ("peak_rss_mb", "peak RSS ratio", (1.0,), False),
)


def _value(entry: dict, key: str) -> float:
    return entry["pplc"].get("overhead", math.nan) if key == "overhead" else entry["ratios"][key]


def plot_ratios(summary: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [e["model"] for e in summary]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), constrained_layout=True)
    for ax, (key, title, targets, higher) in zip(axes.flat, PANELS):
        values = [_value(e, key) for e in summary]
        colors = [_color(v, key, e, targets, higher) for v, e in zip(values, summary)]
        heights = [v if v and not math.isnan(v) and v > 0 else math.nan for v in values]
        ax.bar(range(len(models)), heights, color=colors)
        ax.set_yscale("log")
        ax.axhline(1.0, color="black", linewidth=1)
        for t in targets:
            if t != 1.0:
                ax.axhline(t, color="tab:red", linestyle="--", linewidth=1,
                           label=f"target {t:g}")
        for i, v in enumerate(heights):
            if not math.isnan(v):
                ax.annotate(f"{v:.2g}", (i, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(models)), [m.replace("_", " ") for m in models],
                      rotation=60, ha="right", fontsize=7)
        ax.set_title(title + (" (higher is better)" if higher else " (lower is better)"),
                     fontsize=10)
        if any(t != 1.0 for t in targets):
            ax.legend(fontsize=7)
    fig.suptitle("pplc / NumPyro per model (log scale; black line = parity, dashed = target; "
                 "green = target met)", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _color(value, key, entry, targets, higher) -> str:
    if value is None or math.isnan(value) or not targets:
        return "tab:gray"
    bound = targets[0]
    if key == "ess_per_s" and SPEC_BY_NAME.get(entry["model"]) and \
            SPEC_BY_NAME[entry["model"]].centered:
        bound = max(targets)
    ok = value >= bound if higher else value <= bound
    return "tab:green" if ok else "tab:orange"


def plot_scaling(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), constrained_layout=True)
    for system, marker in (("pplc", "o"), ("NumPyro", "s")):
        ok = sorted((r for r in rows if r["system"] == system and "error" not in r),
                    key=lambda r: r["n"])
        if not ok:
            continue
        ns = [r["n"] for r in ok]
        left.plot(ns, [r["lower_s"] + r["compile_s"] for r in ok], marker=marker,
                  label=f"{system}: trace+lower+XLA compile")
        setup_key = "condition_s" if system == "pplc" else "initialize_model_s"
        left.plot(ns, [r[setup_key] for r in ok], marker=marker, linestyle=":",
                  label=f"{system}: setup ({setup_key[:-2]})")
        right.plot(ns, [r["grad_in_loop_s"] * 1e6 for r in ok], marker=marker, label=system)
    for ax, title, ylabel in ((left, "compile and setup time", "seconds"),
                              (right, "one value-and-gradient (in a compiled loop)", "µs")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N rows (linear regression, K = 5)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
