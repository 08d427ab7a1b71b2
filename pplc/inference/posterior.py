"""The result of sampling: draws in the user's parameterization, sampler statistics, timings.

Draws are kept as a dict name -> array (chain, draw, *shape) of constrained values, for
latents and for the deterministics that change from draw to draw; the rest (summary,
ArviZ container, files) is derived from them on demand.

`dims` names the axes of each variable after the model (`pplc.backends.dims`: `theta`
and `y` over `J` in eight schools), the same names in every ArviZ group. A variable with
`labels` is partly observed: its draws are only the imputed entries, on an axis of their
own (`y_missing`), while its observed data, predictive draws and log-likelihood keep the
variable's dims.

`roles` says which variables are the model's latents and which its deterministics, in the
order the model declares them; the summary lists the latents first in that order (see
`variable_names`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from pplc.errors import did_you_mean, error, guard_public_methods
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
    roles: dict[str, str] = field(default_factory=dict)  # name -> "latent" | "deterministic"
    # Predictions at new inputs (`ConditionedModel.predictions`): the drawn observations
    # are ArviZ's out-of-sample group `predictions`, not `posterior_predictive`.
    predictions: bool = False
    log_prior: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (chain, draw)

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

    def role(self, name: str) -> str:
        """"latent" or "deterministic"; without roles (draws made by hand) every variable
        counts as a latent."""
        return self.roles.get(name, "deterministic" if self.roles else "latent")

    def variable_names(self) -> list[str]:
        """The variables in the summary's order: the model's latents in the order the
        model declares them, then its deterministics (draws without roles: their own
        order)."""
        known = [name for name in self.roles if name in self.draws]
        names = known + [name for name in self.draws if name not in self.roles]
        return sorted(names, key=lambda name: self.role(name) != "latent")

    def element_names(self, name: str) -> list[str]:
        """`theta[0]`, `X[1,2]`, ... of one variable, as the summary names them (only the
        imputed entries of a partly observed variable)."""
        return self.labels.get(name) or _summary.element_names(name, self[name].shape[2:])

    def summary(self, var_names: str | Sequence[str] | None = None
                ) -> dict[str, dict[str, float]]:
        """Per element: mean, sd, q5, q50, q95, r_hat, ess_bulk, ess_tail, mcse_mean.

        Latents first, in the order the model declares them, then deterministics.
        `var_names` picks variables (`["mu", "tau"]`) or single elements (`"theta[0]"`), in
        that order; an unknown name raises `PplcError` with a did-you-mean hint.

        Example:
            >>> posterior.summary(var_names=["mu", "theta[0]"])["mu"]["mcse_mean"]  # doctest: +SKIP
        """
        if var_names is not None and not isinstance(var_names, str) and not (
                isinstance(var_names, Sequence)
                and all(isinstance(name, str) for name in var_names)):
            raise error(f"var_names takes a name or a list of names, not {var_names!r}")
        chosen = _summary.select_variables(var_names, self.variable_names(), self.element_names)
        stats = _summary.summarize({name: self.draws[name] for name in chosen}, self.labels)
        return {element: stats[element] for name, picked in chosen.items()
                for element in (picked or self.element_names(name))}

    def print_summary(self, var_names: str | Sequence[str] | None = None, *,
                      expand: bool = False, title: str = "", console=None) -> None:
        """The table `pplc sample` prints: latents first, each array of deterministics on
        one line (the range of its means, R-hat and ESS) unless `expand` or named in
        `var_names`; then the run's diagnostics in plain words."""
        from pplc.inference.report import print_summary
        print_summary(self.summary(), self, title=title, console=console,
                      var_names=var_names, expand=expand,
                      how_to_expand="var_names=[NAME] or expand=True")

    def summary_json(self, **extra: Any) -> dict:
        return _summary.summary_json(self.summary(), self.divergences, self.n_grad_evals,
                                     self.compile_seconds, self.sampling_seconds, **extra)

    def to_arviz(self):
        """ArviZ's container (InferenceData, or DataTree for ArviZ >= 1) of `groups()`."""
        return _summary.arviz_container(self.groups())

    def groups(self) -> dict:
        """ArviZ's groups of this fit, name -> xarray Dataset: `posterior` (or `prior`),
        `sample_stats`, `observed_data`, `posterior_predictive` (`predictions` for
        predictions at new inputs), `log_likelihood`, `log_prior`: what `to_arviz` holds
        and `to_netcdf` writes."""
        attrs = {k: v for k, v in self.attrs.items() if not k.startswith("_")}
        groups = _summary.arviz_groups(self.draws, self.sample_stats, self.observed_data,
                                       self.dims, attrs, self.posterior_predictive,
                                       self.log_likelihood, prior=self.prior,
                                       labels=self.labels)
        if self.log_prior:
            groups["log_prior"] = _log_prior_group(self.log_prior, attrs)
        if self.predictions and self.posterior_predictive:
            groups = {"predictions" if name == "posterior_predictive" else name: data
                      for name, data in groups.items()}
        return groups

    def to_netcdf(self, path) -> None:
        """Save to netCDF: ArviZ's groups, plus the unconstrained positions and what pplc
        needs to predict from, summarize and continue this fit in another process
        (`pplc.load` / `Posterior.from_netcdf`). The format `pplc sample --output` writes."""
        from pplc.inference import saved
        saved.save(self, path)

    @classmethod
    def from_netcdf(cls, path) -> "Posterior":
        """A posterior back from a netCDF file (see `pplc.inference.saved.load`); a file
        that is missing, not netCDF, or holds no draws raises `PplcError`."""
        from pplc.inference import saved
        return saved.load(path)

    def _repr_html_(self) -> str:
        """Notebooks show the summary table (`pplc.inference.report_html`)."""
        from pplc.inference.report_html import summary_html
        return summary_html(self)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.draws:
            raise error(f"no draws of '{name}'",
                        hint=did_you_mean(str(name), self.draws)
                        or "the variables are " + ", ".join(self.draws))
        return self.draws[name]

    def __repr__(self) -> str:
        names = ", ".join(self.draws)
        return (f"Posterior({self.num_chains} chains x {self.num_draws} draws: {names}; "
                f"{self.divergences} divergences)")


def _log_prior_group(log_prior: dict[str, np.ndarray], attrs: dict):
    """ArviZ's `log_prior` group (what `arviz.psens` reads): each latent's log prior,
    (chain, draw)."""
    import xarray as xr

    chains, draws = next(iter(log_prior.values())).shape
    return xr.Dataset({name: (("chain", "draw"), np.asarray(v)) for name, v in log_prior.items()},
                      coords={"chain": np.arange(chains), "draw": np.arange(draws)},
                      attrs=dict(attrs))


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(Posterior)
