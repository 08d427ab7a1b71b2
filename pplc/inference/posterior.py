"""The result of sampling: draws in the user's parameterization, sampler statistics, timings.

Draws are kept as a dict name -> array (chain, draw, *shape) of constrained values, for
latents and for the deterministics that change from draw to draw; the rest (summary,
ArviZ container, files) is derived from them on demand.

`dims` names the axes of each variable after the model (`pplc.backends.dims`: `theta`
and `y` over `J` in eight schools), the same names in every ArviZ group. A variable with
`labels` is partly observed: its draws are only the imputed entries, on an axis of their
own (`y_missing`), while its observed data, predictive draws and log-likelihood keep the
variable's dims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pplc.inference import summary as _summary


@dataclass
class Posterior:
    draws: dict[str, np.ndarray]                 # name -> (chain, draw, *shape)
    sample_stats: dict[str, np.ndarray]          # lp, diverging, tree_depth, ... (chain, draw)
    n_grad_evals: int
    compile_seconds: float
    sampling_seconds: float
    observed_data: dict[str, np.ndarray] = field(default_factory=dict)
    dims: dict[str, list[str]] = field(default_factory=dict)   # name -> one name per axis
    attrs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)  # element names, where not C order
    posterior_predictive: dict[str, np.ndarray] = field(default_factory=dict)
    log_likelihood: dict[str, np.ndarray] = field(default_factory=dict)
    prior: bool = False   # draws from the prior (groups prior and prior_predictive)

    @property
    def num_chains(self) -> int:
        return next(iter(self.draws.values())).shape[0] if self.draws else 0

    @property
    def num_draws(self) -> int:
        return next(iter(self.draws.values())).shape[1] if self.draws else 0

    @property
    def divergences(self) -> int:
        diverging = self.sample_stats.get("diverging")
        return int(np.sum(diverging)) if diverging is not None else 0

    def summary(self) -> dict[str, dict[str, float]]:
        """Per element: mean, sd, q5, q50, q95, r_hat, ess_bulk, ess_tail."""
        return _summary.summarize(self.draws, self.labels)

    def summary_json(self, **extra: Any) -> dict:
        return _summary.summary_json(self.summary(), self.divergences, self.n_grad_evals,
                                     self.compile_seconds, self.sampling_seconds, **extra)

    def to_arviz(self):
        """ArviZ's container (InferenceData, or DataTree for ArviZ >= 1)."""
        attrs = {k: v for k, v in self.attrs.items() if not k.startswith("_")}
        return _summary.to_inference_data(self.draws, self.sample_stats, self.observed_data,
                                          self.dims, attrs, self.posterior_predictive,
                                          self.log_likelihood, prior=self.prior,
                                          labels=self.labels)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.draws[name]

    def __repr__(self) -> str:
        names = ", ".join(self.draws)
        return (f"Posterior({self.num_chains} chains x {self.num_draws} draws: {names}; "
                f"{self.divergences} divergences)")
