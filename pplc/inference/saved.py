"""Fits saved to netCDF and loaded back: `Posterior.to_netcdf(path)`, `pplc.load(path)`.

The file is ArviZ's format (`arviz.from_netcdf` reads it: groups `posterior`,
`sample_stats`, `observed_data`, ...), plus what pplc needs to use the fit again in a new
process:

- the group `unconstrained_posterior` (ArviZ's name for it): `u`, the sampler's flat
  unconstrained positions `(chain, draw, u_dim)`, and for NUTS the adapted inverse metric
  of each chain; its attribute `pplc_layout` says which latent each slice of `u` holds;
- attributes of the draws' group (`posterior`, or `prior`), all named `pplc_*`: the model's
  source text and its hash, a hash of the data the model was conditioned on, the variables'
  roles (latent or deterministic, in the model's order), their axis names, the element
  names of partly observed variables, and the run's gradient count and timings.

Predictions at new inputs need only the parameters' draws in the user's parameterization
(`posterior`): `ConditionedModel.predictions` maps them to its own unconstrained space. The
positions make the fit exact to reuse on the same model and data (in-sample predictive,
continuing from the last draws) and keep the file self-describing.

Loading checks what it reads: a file that is missing, not netCDF, or without draws is a
`PplcError` saying so, with a hint, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from pplc.errors import error

if TYPE_CHECKING:
    from pplc.inference.posterior import Posterior

FORMAT = 1                       # pplc_format: bumped when the layout below changes
UNCONSTRAINED = "unconstrained_posterior"
HINT = "pass a file written by 'pplc sample --output' or 'pplc fit --output' " \
       "(or Posterior.to_netcdf)"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_hash(sizes: Mapping[str, Any], arrays: Mapping[str, Any]) -> str:
    """A fingerprint of the data a model was conditioned on: names, shapes, dtypes, values."""
    digest = hashlib.sha256()
    for name, value in sorted({**sizes, **arrays}.items()):
        value = np.ascontiguousarray(np.asarray(value))
        digest.update(f"{name}|{value.shape}|{value.dtype.str}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------- writing


def to_container(posterior: "Posterior"):
    """What `to_netcdf` writes: ArviZ's groups (`posterior.groups()`) with the unconstrained
    positions and pplc's attributes added, as an xarray DataTree, the container of ArviZ 1
    that ArviZ 0.x reads as well. Built without importing ArviZ (2-3 CPU-s of imports:
    its plots, SciPy, matplotlib), which every `pplc sample --output` paid."""
    import xarray as xr

    from pplc.inference.summary import datatree

    data = posterior.groups()
    main = "prior" if posterior.prior else "posterior"
    meta = {
        "pplc_format": FORMAT,
        "pplc_roles": json.dumps(posterior.roles),
        "pplc_dims": json.dumps(posterior.dims),
        "pplc_labels": json.dumps(posterior.labels),
        "pplc_n_grad_evals": int(posterior.n_grad_evals),
        "pplc_compile_seconds": float(posterior.compile_seconds),
        "pplc_sampling_seconds": float(posterior.sampling_seconds),
    }
    for key in ("model_source", "model_path"):
        if posterior.attrs.get(f"_{key}") is not None:
            meta[f"pplc_{key}"] = str(posterior.attrs[f"_{key}"])
    groups = {}
    positions = posterior.attrs.get("_positions")
    if positions is not None and not posterior.prior:
        positions = np.asarray(positions)
        variables = {"u": (("chain", "draw", "u_dim"), positions)}
        metric = posterior.attrs.get("_inverse_metric")
        if metric is not None:
            metric = np.asarray(metric)
            axes = ("chain", "u_dim") if metric.ndim == 2 else ("chain", "u_dim", "u_dim_2")
            variables["inverse_metric"] = (axes, metric)
        chains, draws, dim = positions.shape
        coords = {"chain": np.arange(chains), "draw": np.arange(draws),
                  "u_dim": np.arange(dim)}
        if metric is not None and metric.ndim == 3:
            coords["u_dim_2"] = np.arange(dim)
        attrs = {"pplc_layout": json.dumps(posterior.attrs.get("_layout") or [])}
        groups[UNCONSTRAINED] = xr.Dataset(variables, coords=coords, attrs=attrs)
    tree = datatree({**data, **groups})
    tree[main].attrs.update(meta)
    return tree


def save(posterior: "Posterior", path: str | Path) -> None:
    """Write `posterior` to `path` as netCDF (through a temporary file: never half a file)."""
    from pplc.inference.summary import write_netcdf

    write_netcdf(path, to_container(posterior))


# ---------------------------------------------------------------- reading


def load(path: str | Path) -> "Posterior":
    """A `Posterior` back from a netCDF file written by pplc (or any ArviZ file with a
    `posterior` or `prior` group): it can be summarized, predicted from
    (`ConditionedModel.posterior_predictive`), and continued (`sample(init=posterior)`).

    Example:
        >>> posterior = pplc.load("fit.nc")                      # doctest: +SKIP
        >>> model.condition(new_data).posterior_predictive(posterior)  # doctest: +SKIP
    """
    from pplc.inference.posterior import Posterior

    groups = _read_groups(Path(path))
    prior = "posterior" not in groups and "prior" in groups
    main = "prior" if prior else "posterior"
    if main not in groups:
        raise error(f"'{path}' holds no draws (no 'posterior' or 'prior' group; it has "
                    f"{', '.join(sorted(groups)) or 'no groups'})", hint=HINT)
    draws_set = groups[main]
    meta = dict(draws_set.attrs)
    roles = _json_attr(meta, "pplc_roles", dict, path)
    labels = _json_attr(meta, "pplc_labels", dict, path)
    dims = _json_attr(meta, "pplc_dims", dict, path)
    draws = {}
    for name, array in draws_set.data_vars.items():
        if array.dims[:2] != ("chain", "draw"):
            raise error(f"'{path}': variable '{name}' of group '{main}' has axes "
                        f"{array.dims}, not (chain, draw, ...)", hint=HINT)
        draws[str(name)] = np.asarray(array.values)
        if name not in dims:   # a file pplc did not write: its own axis names
            dims[str(name)] = [str(d) for d in array.dims[2:]
                               if not str(d).startswith(f"{name}_dim_")]
            if len(dims[str(name)]) != array.ndim - 2:
                dims.pop(str(name))
    attrs = {k: _plain(v) for k, v in meta.items() if not k.startswith("pplc_")}
    for key in ("model_source", "model_path"):
        if f"pplc_{key}" in meta:
            attrs[f"_{key}"] = str(meta[f"pplc_{key}"])
    if UNCONSTRAINED in groups:
        saved = groups[UNCONSTRAINED]
        if "u" in saved:
            attrs["_positions"] = np.asarray(saved["u"].values)
            attrs["_layout"] = _json_attr(dict(saved.attrs), "pplc_layout", list, path)
        if "inverse_metric" in saved:
            attrs["_inverse_metric"] = np.asarray(saved["inverse_metric"].values)

    def arrays(name: str) -> dict[str, np.ndarray]:
        group = groups.get(name)
        return {} if group is None else {str(k): np.asarray(v.values)
                                         for k, v in group.data_vars.items()}

    predictive = "prior_predictive" if prior else "posterior_predictive"
    return Posterior(
        draws=draws, sample_stats=arrays("sample_stats"),
        n_grad_evals=int(meta.get("pplc_n_grad_evals", 0)),
        compile_seconds=float(meta.get("pplc_compile_seconds", 0.0)),
        sampling_seconds=float(meta.get("pplc_sampling_seconds", 0.0)),
        observed_data=arrays("observed_data"), dims=dims, attrs=attrs,
        labels=labels, posterior_predictive=arrays(predictive) or arrays("predictions"),
        log_likelihood=arrays("log_likelihood"), prior=prior, roles=roles,
        predictions="predictions" in groups, log_prior=arrays("log_prior"))


def _read_groups(path: Path) -> dict:
    """Every group of a netCDF file as an in-memory xarray Dataset."""
    import xarray as xr

    if path.is_dir():
        raise error(f"'{path}' is a folder, not a netCDF file", hint=HINT)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise error(f"cannot read '{path}': {exc.strerror or exc}", hint=HINT) from None
    # netCDF-4 files are HDF5 files, which is what ArviZ and pplc write; netCDF-3 files
    # (starting with CDF) cannot hold groups, so they cannot hold a fit either.
    if head[:3] == b"CDF":
        raise error(f"'{path}' is a netCDF-3 file, which has no groups: it holds no fit",
                    hint=HINT)
    if not head.startswith(b"\x89HDF\r\n\x1a\n"):
        raise error(f"'{path}' is not a netCDF file", hint=HINT)
    try:
        import h5netcdf

        with h5netcdf.File(path, "r") as f:
            names = list(f.groups)
        groups = {}
        for name in names:
            with xr.open_dataset(path, group=name, engine="h5netcdf") as dataset:
                groups[name] = dataset.load()
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file here
        raise error(f"cannot read '{path}' as netCDF: {type(exc).__name__}: {exc}",
                    hint=HINT) from None
    return groups


def _json_attr(attrs: Mapping, key: str, kind: type, path) -> Any:
    if key not in attrs:
        return kind()
    try:
        value = json.loads(str(attrs[key]))
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, kind):
        raise error(f"'{path}': attribute '{key}' is damaged", hint=HINT)
    return value


def _plain(value):
    """netCDF attributes come back as NumPy scalars: plain Python numbers instead."""
    return value.item() if isinstance(value, np.generic) else value
