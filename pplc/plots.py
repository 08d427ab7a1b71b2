"""Pictures of a saved fit: `pplc plot FIT.nc --kind trace|pair|ppc|forest -o FILE.png`.

ArviZ draws them (its `plot_trace`, `plot_pair`, `plot_ppc`, `plot_forest`) with
matplotlib's Agg backend, so no display is needed. Everything a user can get wrong is
checked before anything is drawn, with a plain-words `PplcError`: the picture's format
(from the suffix), the kind, each `--vars` name (did-you-mean), and for `ppc` the
posterior predictive draws the fit must carry (`pplc sample --predict`).

By default the pictures show the model's latents (a summed-out discrete latent's drawn
values included), not its deterministics, which can be hundreds of elements: `--vars`
picks others, deterministics and `theta[0]`-style elements included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pplc.errors import error
from pplc.inference.summary import select_variables

KINDS = ("trace", "pair", "ppc", "forest")
# matplotlib's writers that need nothing beyond matplotlib itself.
FORMATS = (".png", ".svg", ".pdf")
# A pair plot has one panel per pair of scalars: beyond this many it is unreadable and slow.
PAIR_AT_MOST = 8


def check_picture_path(path: str | Path) -> Path:
    """The picture's format is known from its suffix (said before any work)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise error(f"cannot draw to '{path}': unknown picture format "
                    f"'{path.suffix or '(no suffix)'}'",
                    hint="end the file name with one of " + ", ".join(FORMATS))
    return path


def plot(posterior, kind: str, path: str | Path, var_names: Sequence[str] | None = None
         ) -> list[str]:
    """Draw `kind` of `posterior` (a `Posterior`) to `path`; returns notes to print (what
    was left out). Raises `PplcError` for an unknown kind or variable, or a `ppc` without
    posterior predictive draws."""
    if kind not in KINDS:
        raise error(f"unknown kind of plot '{kind}'", hint="kinds: " + ", ".join(KINDS))
    path = check_picture_path(path)
    notes: list[str] = []
    if kind == "ppc":
        names = _predictive_names(posterior, var_names)
    else:
        names = _posterior_names(posterior, var_names)
        if kind == "pair":
            names, note = _few_scalars(posterior, names)
            notes += [note] if note else []

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import arviz as az

    data = posterior.to_arviz()
    if kind == "trace":
        axes = az.plot_trace(data, var_names=names, compact=True)
    elif kind == "pair":
        axes = az.plot_pair(data, var_names=names, kind="scatter",
                            divergences=posterior.divergences > 0,
                            scatter_kwargs={"alpha": 0.4, "s": 10})
    elif kind == "forest":
        axes = az.plot_forest(data, var_names=names, combined=True, r_hat=True, ess=True)
    else:
        axes = az.plot_ppc(data, var_names=names, num_pp_samples=min(100, _draws(posterior)))
    figure = _figure(axes)
    if kind == "trace":
        figure.tight_layout()       # ArviZ's titles otherwise sit on the ticks above
    try:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise error(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        plt.close("all")
    return notes


def _figure(axes):
    import numpy as np
    first = np.ravel(np.asarray(axes, dtype=object))[0]
    return first.figure if hasattr(first, "figure") else first.get_figure()


def _draws(posterior) -> int:
    return posterior.num_chains * posterior.num_draws


def _posterior_names(posterior, var_names: Sequence[str] | None) -> list[str]:
    variables = posterior.variable_names()
    if var_names is None:
        latents = [n for n in variables if posterior.role(n) == "latent"]
        return latents or variables
    chosen = select_variables(list(var_names), variables, posterior.element_names)
    if any(picked is not None for picked in chosen.values()):
        raise error("pplc plot takes whole variables in --vars, not elements like "
                    f"'{next(e for p in chosen.values() if p for e in p)}'",
                    hint="name the variable; a forest plot shows each of its elements")
    return list(chosen)


def _predictive_names(posterior, var_names: Sequence[str] | None) -> list[str]:
    predicted = list(posterior.posterior_predictive)
    if not predicted or posterior.predictions:
        raise error("the fit has no posterior predictive draws to check",
                    hint="sample with 'pplc sample ... --predict --output FIT.nc'")
    observed = [n for n in predicted if n in posterior.observed_data]
    if not observed:
        raise error("the fit has no observed data beside its posterior predictive draws",
                    hint="a posterior predictive check compares the draws to the data")
    if var_names is None:
        return observed
    chosen = select_variables(list(var_names), observed, lambda name: [name])
    return list(chosen)


def _few_scalars(posterior, names: list[str]) -> tuple[list[str], str | None]:
    """The variables of a pair plot, at most `PAIR_AT_MOST` scalars in all."""
    import numpy as np
    kept, count = [], 0
    for name in names:
        size = int(np.prod(posterior.draws[name].shape[2:], dtype=int))
        if count + size > PAIR_AT_MOST and kept:
            break
        kept.append(name)
        count += size
    if len(kept) == len(names):
        return kept, None
    return kept, (f"pair: showing {', '.join(kept)}; left out {', '.join(names[len(kept):])}"
                  f" (more than {PAIR_AT_MOST} scalars); pick others with --vars")
