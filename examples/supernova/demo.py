"""`make demo`: the supernova cosmology fit end to end.

Compiles the model, samples it with NUTS (4 chains x 1000 draws), prints the summary
table, draws the model as a PGM picture and the (H0, Om) posterior as a pair plot, and
says where each file went.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(out: Path) -> int:
    started = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import pplc
    from pplc.inference.progress import ProgressBar
    from pplc.inference.report import print_summary
    from pplc.inference.summary import summary_json, write_json, write_netcdf
    from pplc.ir.graphviz import render

    out.mkdir(parents=True, exist_ok=True)
    model = pplc.compile(HERE / "model.ppl")
    conditioned = model.condition(HERE / "data.json")
    with ProgressBar() as progress:
        posterior = conditioned.sample(chains=4, warmup=1000, draws=1000, seed=0,
                                       progress=progress)
    summary = posterior.summary()
    print_summary({k: summary[k] for k in ("H0", "Om")}, posterior,
                  title="Union2.1, flat LambdaCDM: 4 chains x 1000 draws")

    files = {}
    files["summary JSON"] = out / "supernova_summary.json"
    write_json(files["summary JSON"], summary_json(
        summary, posterior.divergences, posterior.n_grad_evals, posterior.compile_seconds,
        posterior.sampling_seconds))
    files["draws (netCDF, ArviZ)"] = out / "supernova.nc"
    write_netcdf(files["draws (netCDF, ArviZ)"], posterior.to_arviz())
    try:
        files["model picture (PGM)"] = render(conditioned.graph, out / "supernova_model.png",
                                              sizes=dict(conditioned.lowered.data.sizes))
    except pplc.PplcError as exc:  # no `dot`: say so, keep the rest of the demo
        print(exc.render(), file=sys.stderr)

    h0, om = posterior["H0"].ravel(), posterior["Om"].ravel()
    fig, axes = plt.subplots(2, 2, figsize=(6.5, 6), constrained_layout=True)
    axes[0, 0].hist(h0, bins=50, color="C0")
    axes[0, 0].set_xlabel("H0 [km/s/Mpc]")
    axes[1, 1].hist(om, bins=50, color="C0")
    axes[1, 1].set_xlabel("Om")
    axes[1, 0].scatter(h0, om, s=2, alpha=0.3, color="C0")
    axes[1, 0].set_xlabel("H0 [km/s/Mpc]")
    axes[1, 0].set_ylabel("Om")
    axes[0, 1].axis("off")
    axes[0, 1].text(0.05, 0.5, f"H0 = {np.mean(h0):.2f} ± {np.std(h0):.2f}\n"
                               f"Om = {np.mean(om):.3f} ± {np.std(om):.3f}\n"
                               f"corr = {np.corrcoef(h0, om)[0, 1]:.2f}", fontsize=12)
    fig.suptitle("Union2.1 supernovae: posterior of (H0, Om)")
    files["pair plot"] = out / "supernova_pair.png"
    fig.savefig(files["pair plot"], dpi=110)

    for what, path in files.items():
        print(f"{what:>22}: {path}")
    print(f"{'total':>22}: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out")))
