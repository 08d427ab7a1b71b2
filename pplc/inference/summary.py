"""Posterior summaries and files: the diagnostics, ArviZ's container, the summary JSON,
netCDF draws.

R-hat (rank-normalized, split) and bulk/tail ESS are ArviZ's definitions, computed in NumPy
(inference/convergence.py, tested equal to ArviZ's to rounding), so they are the numbers
the field already trusts without waiting seconds for ArviZ's import. The Monte Carlo standard error of the mean is ArviZ's and Stan's
(Vehtari et al. 2021): sd / sqrt(ESS of the mean), with the plain (not rank-normalized)
ESS. The summary JSON is a public interface:

    {"parameters": {"mu": {"mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk",
                           "ess_tail", "mcse_mean"}, "theta[0]": {...}, "X[1,2]": {...}},
     "divergences": int, "n_grad_evals": int, "compile_seconds": float,
     "sampling_seconds": float}

Array elements are named with 0-based indices and no spaces.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pplc.errors import did_you_mean, error
from pplc.inference import convergence
from pplc.files import write_atomically, write_bytes

STAT_KEYS = ("mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk", "ess_tail", "mcse_mean")


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """`theta[0]`, `X[1,2]`: 0-based, no spaces, C order (the summary's naming)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def select_variables(var_names: str | Sequence[str] | None, variables: Sequence[str],
                     element_names: Callable[[str], list[str]]
                     ) -> dict[str, list[str] | None]:
    """The variables (and elements) that `var_names` asks for, in the order asked:
    variable name -> None for all its elements, or the list of those named (`theta[0]`).
    `None` asks for every variable, in the order of `variables`.

    A name that is neither a variable nor one of its elements is a user error, with a
    did-you-mean hint (`--vars H` -> did you mean 'H0'?)."""
    if var_names is None:
        return {name: None for name in variables}
    if isinstance(var_names, str):
        var_names = [var_names]
    chosen: dict[str, list[str] | None] = {}
    for wanted in var_names:
        base = wanted.split("[", 1)[0]
        if wanted in variables:
            chosen[wanted] = None
        elif base in variables and base != wanted:
            elements = element_names(base)
            if wanted not in elements:
                raise error(f"'{base}' has no element '{wanted}'",
                            hint=f"its elements are {_span_of(elements)}")
            if chosen.get(base, []) is not None:
                chosen.setdefault(base, []).append(wanted)
        else:
            raise error(f"unknown variable '{wanted}'",
                        hint=did_you_mean(base, variables)
                        or f"the variables are {', '.join(variables)}")
    return chosen


def _span_of(elements: Sequence[str]) -> str:
    return ", ".join(elements) if len(elements) <= 3 else f"{elements[0]} .. {elements[-1]}"


def _arviz():
    import arviz

    return arviz


def _arviz_version() -> str:
    """The installed ArviZ's version, read from its metadata: importing ArviZ (its plots,
    SciPy and matplotlib with it) costs 2-3 CPU-s, which writing its groups does not need."""
    from importlib.metadata import version

    return version("arviz")


def _arviz_major_version() -> int:
    """The installed ArviZ's major version: 1 and later hold draws in an xarray DataTree."""
    return int(_arviz_version().split(".")[0])


def arviz_container(groups: Mapping):
    """ArviZ's container of `groups` (name -> xarray Dataset): InferenceData for ArviZ < 1,
    an `xarray.DataTree` for ArviZ >= 1."""
    if _arviz_major_version() >= 1:
        return datatree(groups)
    return _arviz().InferenceData(**groups)


def arviz_groups(posterior: Mapping[str, np.ndarray],
                 sample_stats: Mapping[str, np.ndarray] | None = None,
                 observed_data: Mapping[str, np.ndarray] | None = None,
                 dims: Mapping[str, list[str]] | None = None,
                 attrs: Mapping[str, Any] | None = None,
                 posterior_predictive: Mapping[str, np.ndarray] | None = None,
                 log_likelihood: Mapping[str, np.ndarray] | None = None,
                 prior: bool = False,
                 labels: Mapping[str, list[str]] | None = None) -> dict:
    """ArviZ's groups as xarray Datasets, built here rather than by an ArviZ converter so
    that both containers hold exactly the same data.

    `posterior` (or `prior`), `sample_stats`, `posterior_predictive` (or
    `prior_predictive`) and `log_likelihood` are over (chain, draw, ...); `observed_data`
    over the variables' own axes. A variable listed in `labels` has only its imputed
    entries in the draws: their axis is `{name}_missing`, with coordinates the entries'
    indices as text (`"3"`, `"1,2"`), so ArviZ labels them `y[3]` as the summary does;
    its observed data, predictive draws and log-likelihood keep the variable's own axes.
    """
    dims, labels = dict(dims or {}), dict(labels or {})
    attrs = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "arviz_version": _arviz_version(), **(attrs or {})}
    missing_dims = {name: [f"{name}_missing"] for name in labels}
    missing_coords = {f"{name}_missing": [_index_text(label) for label in names]
                      for name, names in labels.items()}
    draws = "prior" if prior else "posterior"
    predictive = "prior_predictive" if prior else "posterior_predictive"
    groups = {draws: _dataset(posterior, {**dims, **missing_dims}, attrs, missing_coords)}
    if sample_stats:
        groups["sample_stats"] = _dataset(sample_stats, {}, attrs)
    if observed_data:
        groups["observed_data"] = _dataset(observed_data, dims, attrs, sampled=False)
    if posterior_predictive:
        groups[predictive] = _dataset(posterior_predictive, dims, attrs)
    if log_likelihood:
        # One term per observation: a multivariate observation's event axes (the trailing
        # ones) are summed over, so its leading dims name the terms.
        groups["log_likelihood"] = _dataset(log_likelihood, dims, attrs, leading=True)
    return groups


def _dataset(arrays: Mapping[str, np.ndarray], dims: Mapping[str, list[str]],
             attrs: Mapping[str, Any], coords: Mapping[str, list] | None = None,
             sampled: bool = True, leading: bool = False):
    """One group: each array with its dimension names and integer coordinates (0-based,
    as the summary's element names), or the given `coords`. With `leading`, an array of
    fewer axes than its variable takes the variable's leading names."""
    import xarray as xr

    coords = dict(coords or {})
    lengths: dict[str, int] = {}
    variables = {}
    for name, array in arrays.items():
        array = np.asarray(array)
        lead = ("chain", "draw") if sampled else ()
        names = dims.get(name)
        shape = array.shape[len(lead):]
        if leading and names is not None:
            names = names[:len(shape)]
        names = _axis_names(name, shape, names, lengths)
        variables[name] = (lead + names, array)
        lengths.update(zip(lead + names, array.shape))
    index = {dim: coords.get(dim, np.arange(n)) for dim, n in lengths.items()}
    return xr.Dataset(variables, coords=index, attrs=dict(attrs))


def _axis_names(name: str, shape: tuple[int, ...], names: list[str] | None,
                lengths: Mapping[str, int]) -> tuple[str, ...]:
    """The given names when they fit the array (one per axis, each of a length that the
    group agrees with); otherwise ArviZ's default `{name}_dim_{k}`."""
    if names is not None and len(names) == len(shape) and all(
            lengths.get(dim, n) == n for dim, n in zip(names, shape)):
        return tuple(names)
    return tuple(f"{name}_dim_{k}" for k in range(len(shape)))


def _index_text(element: str) -> str:
    """`y[1,2]` -> `1,2`."""
    return element[element.index("[") + 1:-1] if element.endswith("]") else element


def datatree(groups: Mapping):
    """ArviZ 1's container: an xarray DataTree with one child node per group, and the
    first group's attributes on the root too. ArviZ 0.x reads the same file (its
    `from_netcdf` opens each group), so `--output` writes this tree whatever the installed
    ArviZ, without importing it."""
    import xarray as xr

    tree = xr.DataTree.from_dict({f"/{group}": data for group, data in groups.items()})
    tree.attrs.update(next(iter(groups.values())).attrs)
    return tree


def summarize(posterior: Mapping[str, np.ndarray],
              labels: Mapping[str, list[str]] | None = None) -> dict[str, dict[str, float]]:
    """Per-element statistics of draws shaped (chain, draw, *shape).

    `labels` names the elements of variables whose elements are not simply indexed in C
    order (the imputed entries of a partly observed variable: `y[3]`, `y[7]`)."""
    labels = labels or {}
    out: dict[str, dict[str, float]] = {}
    for name, draws in posterior.items():
        draws = np.asarray(draws, dtype=float)
        chains, n = draws.shape[:2]
        shape = draws.shape[2:]
        flat = draws.reshape(chains, n, -1)
        columns = [flat[:, :, k] for k in range(flat.shape[2])]
        with np.errstate(invalid="ignore", divide="ignore"):
            # R-hat compares chains: one chain (ADVI, Laplace, Pathfinder draws) has none.
            r_hat = np.array([convergence.rhat(c) if chains > 1 else np.nan for c in columns])
            ess_bulk = np.array([convergence.ess_bulk(c) for c in columns])
            ess_tail = np.array([convergence.ess_tail(c) for c in columns])
            # The ESS of the mean itself (no rank normalization): what the MCSE needs.
            ess_mean = np.array([convergence.ess_mean(c) for c in columns])
        pooled = flat.reshape(chains * n, -1)
        q5, q50, q95 = np.quantile(pooled, [0.05, 0.5, 0.95], axis=0)
        mean = pooled.mean(axis=0)
        sd = pooled.std(axis=0, ddof=1) if pooled.shape[0] > 1 else np.full(mean.shape, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            mcse_mean = sd / np.sqrt(ess_mean)   # Vehtari et al. (2021), as arviz.mcse
        names = labels.get(name) or element_names(name, shape)
        for k, element in enumerate(names):
            out[element] = {
                "mean": _num(mean[k]), "sd": _num(sd[k]), "q5": _num(q5[k]),
                "q50": _num(q50[k]), "q95": _num(q95[k]), "r_hat": _num(r_hat[k]),
                "ess_bulk": _num(ess_bulk[k]), "ess_tail": _num(ess_tail[k]),
                "mcse_mean": _num(mcse_mean[k]),
            }
    return out


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def summary_json(parameters: Mapping[str, Mapping[str, float]], divergences: int,
                 n_grad_evals: int, compile_seconds: float, sampling_seconds: float,
                 **extra: Any) -> dict:
    doc = {"parameters": {k: dict(v) for k, v in parameters.items()},
           "divergences": int(divergences), "n_grad_evals": int(n_grad_evals),
           "compile_seconds": float(compile_seconds),
           "sampling_seconds": float(sampling_seconds)}
    doc.update(extra)
    return doc


def write_json(path: str | Path, doc: Mapping) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    write_atomically(path, write)


def write_netcdf(path: str | Path, data) -> None:
    """ArviZ's container (or `datatree`'s) as netCDF, made in memory and then written as plain bytes: a disk
    that fills while HDF5 itself writes the file crashed the interpreter (a segmentation
    fault in h5py, the temporary file left behind); a plain write fails with OSError."""
    import xarray as xr

    if hasattr(data, "groups") and not isinstance(data, xr.DataTree):  # ArviZ < 1
        data = xr.DataTree.from_dict({f"/{group}": getattr(data, group)
                                      for group in data.groups()})
    write_bytes(path, bytes(data.to_netcdf(engine="h5netcdf")))
