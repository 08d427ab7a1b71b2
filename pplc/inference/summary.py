"""Posterior summaries and files: ArviZ's diagnostics, the summary JSON, netCDF draws.

R-hat (rank-normalized, split) and bulk/tail ESS come from ArviZ, so they are the numbers
the field already trusts. The summary JSON is a public interface:

    {"parameters": {"mu": {"mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk",
                           "ess_tail"}, "theta[0]": {...}, "X[1,2]": {...}},
     "divergences": int, "n_grad_evals": int, "compile_seconds": float,
     "sampling_seconds": float}

Array elements are named with 0-based indices and no spaces.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

STAT_KEYS = ("mean", "sd", "q5", "q50", "q95", "r_hat", "ess_bulk", "ess_tail")


def element_names(name: str, shape: tuple[int, ...]) -> list[str]:
    """`theta[0]`, `X[1,2]`: 0-based, no spaces, C order (the summary's naming)."""
    if not shape:
        return [name]
    return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


def _arviz():
    import arviz

    return arviz


def to_inference_data(posterior: Mapping[str, np.ndarray],
                      sample_stats: Mapping[str, np.ndarray] | None = None,
                      observed_data: Mapping[str, np.ndarray] | None = None,
                      dims: Mapping[str, list[str]] | None = None,
                      attrs: Mapping[str, Any] | None = None,
                      posterior_predictive: Mapping[str, np.ndarray] | None = None,
                      log_likelihood: Mapping[str, np.ndarray] | None = None,
                      prior: bool = False):
    """Draws (each array (chain, draw, *shape)) -> ArviZ's container (InferenceData for
    ArviZ < 1, DataTree for ArviZ >= 1)."""
    az = _arviz()
    groups = {"prior" if prior else "posterior": dict(posterior)}
    if sample_stats:
        groups["sample_stats"] = dict(sample_stats)
    if observed_data:
        groups["observed_data"] = dict(observed_data)
    if posterior_predictive:
        groups["prior_predictive" if prior else "posterior_predictive"] = \
            dict(posterior_predictive)
    if log_likelihood:
        groups["log_likelihood"] = dict(log_likelihood)
    major = int(az.__version__.split(".")[0])
    if major >= 1:  # ArviZ 1.x: from_dict takes one dict of groups
        data = az.from_dict(groups, dims=dict(dims or {}))
        if attrs:
            data.attrs.update(attrs)
        return data
    idata = az.from_dict(**groups, dims=dict(dims or {}), attrs=dict(attrs or {}))
    return idata


def summarize(posterior: Mapping[str, np.ndarray],
              labels: Mapping[str, list[str]] | None = None) -> dict[str, dict[str, float]]:
    """Per-element statistics of draws shaped (chain, draw, *shape).

    `labels` names the elements of variables whose elements are not simply indexed in C
    order (the imputed entries of a partly observed variable: `y[3]`, `y[7]`)."""
    labels = labels or {}
    import xarray as xr

    az = _arviz()
    out: dict[str, dict[str, float]] = {}
    for name, draws in posterior.items():
        draws = np.asarray(draws, dtype=float)
        chains, n = draws.shape[:2]
        shape = draws.shape[2:]
        flat = draws.reshape(chains, n, -1)
        data = xr.Dataset({"x": (("chain", "draw", "element"), flat)})
        with np.errstate(invalid="ignore", divide="ignore"), _quiet_arviz():
            # R-hat compares chains: one chain (ADVI, Laplace, Pathfinder draws) has none.
            r_hat = np.asarray(az.rhat(data)["x"]) if chains > 1 else np.full(flat.shape[2],
                                                                             np.nan)
            ess_bulk = np.asarray(az.ess(data, method="bulk")["x"])
            ess_tail = np.asarray(az.ess(data, method="tail")["x"])
        pooled = flat.reshape(chains * n, -1)
        q5, q50, q95 = np.quantile(pooled, [0.05, 0.5, 0.95], axis=0)
        mean = pooled.mean(axis=0)
        sd = pooled.std(axis=0, ddof=1) if pooled.shape[0] > 1 else np.full(mean.shape, np.nan)
        names = labels.get(name) or element_names(name, shape)
        for k, element in enumerate(names):
            out[element] = {
                "mean": _num(mean[k]), "sd": _num(sd[k]), "q5": _num(q5[k]),
                "q50": _num(q50[k]), "q95": _num(q95[k]), "r_hat": _num(r_hat[k]),
                "ess_bulk": _num(ess_bulk[k]), "ess_tail": _num(ess_tail[k]),
            }
    return out


class _quiet_arviz:
    """ArviZ logs a shape warning for single-chain input; the summary says so itself."""

    def __enter__(self):
        import logging
        self.logger = logging.getLogger("arviz")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


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


def write_atomically(path: str | Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, doc: Mapping) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    write_atomically(path, write)


def write_netcdf(path: str | Path, data) -> None:
    write_atomically(path, lambda tmp: data.to_netcdf(tmp, engine="h5netcdf"))
