"""Data split across the devices of one process: the placement the plan decided, in JAX.

The plan (backends/sharding.py) names the arrays that run over the observations and the
axis of each. Here they are placed on a `jax.sharding.Mesh` with `NamedSharding`s, split
along that axis over the mesh's "data" axis, with everything else (the parameters, the
sampler's state, the other data) replicated. The log density is then compiled with `jit`
over those input shardings, and XLA's SPMD partitioner (GSPMD) runs each device on its
rows and sums the partial log densities with an all-reduce it inserts; the gradient is
exact, and differs from one device's only by the order of the summation. No runtime of
our own: the collectives are XLA's.

Rows that do not divide over the devices: a `NamedSharding` needs equal shards, so each
split array is padded with copies of its last row up to a multiple of the device count,
and the program slices the padding off first thing (`Placement.trim`); the sliced array
keeps the split (the partitioner pads uneven shards internally), and the model never sees
a padded row, whatever it does with the whole array.

Chains: where chains are vectorized, the mesh has two axes, ("chain", "data"): a
`shard_map` over "chain" only (the "data" axis left to the partitioner) gives each row of
the mesh its block of chains, each running its own NUTS loops, and within it the data are
split over the row's devices. Where chains run one after another or on threads, each
chain's program runs on the one-axis "data" mesh of all devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from pplc.backends.row_views import GATHER_ROWS
from pplc.errors import error

CHAIN, DATA = "chain", "data"


def chain_and_data_shape(num_devices: int, num_chains: int, batched: bool,
                         processes: int = 1) -> tuple[int, int]:
    """(chain devices, data devices): the data get at least two devices where there are,
    the chains (when vectorized) the largest number dividing both counts in what is left.
    Over several processes the chain count also divides each process's devices, so that
    every chain's row of the mesh crosses all the processes (`Placement.make`)."""
    if not batched or num_devices < 2:
        return 1, num_devices
    local = num_devices // processes
    c = max(k for k in range(1, num_devices // 2 + 1)
            if num_chains % k == 0 and num_devices % k == 0 and local % k == 0)
    return c, num_devices // c


def process_rows(length: int, num_devices: int, process: int, processes: int
                 ) -> tuple[int, int, int]:
    """(start, stop, padding): the real rows [start, stop) of a split axis of `length` rows
    that process `process` of `processes` holds, and how many copies of the last row pad
    its share, when the rows are padded to a multiple of all `num_devices` devices and
    split in order (each process's devices consecutive on the data axis, `Placement.make`).
    The same for every chain method: it is what a process reads while conditioning
    (pplc/row_shares.py), before it is known how the chains will run."""
    padded = length + (-length % num_devices)
    per = padded // processes
    start, stop = process * per, (process + 1) * per
    return min(start, length), min(stop, length), max(0, stop - max(start, length))


@dataclass(frozen=True)
class Placement:
    """The mesh and where each data array lives on it; `lengths` are the true extents of
    the split axes (before padding)."""

    mesh: Mesh
    axes: Mapping[str, int]
    lengths: Mapping[str, int]
    # the split arrays are padded to a multiple of this: the data axis's devices, and over
    # several processes every device of the mesh, so that the rows each process holds do
    # not depend on the chains' axis (`process_rows`)
    pad_to: int = 1

    @classmethod
    def make(cls, axes: Mapping[str, int], data: Mapping[str, Any], num_chains: int = 1,
             batched: bool = False, devices=None) -> "Placement":
        devices = list(jax.devices() if devices is None else devices)
        processes = len({d.process_index for d in devices})
        c, d = chain_and_data_shape(len(devices), num_chains, batched, processes)
        if processes > 1:   # each process's devices in a block: its rows (process_rows)
            devices.sort(key=lambda x: (x.process_index, x.id))
            local = len(devices) // processes
            # (process, chain, its share of the data axis) -> (chain, data): every chain's
            # row crosses the processes, each holding the same rows for all its chains
            grid = np.array(devices, dtype=object).reshape(processes, c, local // c)
            grid = grid.transpose(1, 0, 2).reshape(c, d)
        else:
            grid = np.array(devices[:c * d], dtype=object).reshape(c, d)
        mesh = Mesh(grid, (CHAIN, DATA)) if batched else Mesh(grid.reshape(-1), (DATA,))
        axes = {name: axis for name, axis in axes.items() if name in data}
        lengths = {name: int(np.shape(data[name])[axis]) for name, axis in axes.items()}
        return cls(mesh, axes, lengths, c * d if processes > 1 else d)

    @property
    def data_devices(self) -> int:
        return int(self.mesh.shape[DATA])

    @property
    def even(self) -> bool:
        """Whether every split array's rows divide over the data devices (no padding)."""
        return all(n % self.pad_to == 0 for n in self.lengths.values())

    @property
    def key(self) -> Hashable:
        """What the compiled program depends on, beyond the arguments' shapes."""
        return ("data-sharded", tuple(self.mesh.shape.items()),
                tuple(sorted(self.axes.items())), tuple(sorted(self.lengths.items())))

    def spec(self, name: str) -> P:
        if name not in self.axes:
            return P()
        return P(*([None] * self.axes[name]), DATA)

    def shardings(self, data: Mapping[str, Any]) -> dict[str, NamedSharding]:
        return {name: NamedSharding(self.mesh, self.spec(name)) for name in data}

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def place(self, data: Mapping[str, Any]) -> dict[str, jax.Array]:
        """The data on the mesh: split arrays padded to a multiple of the devices and split
        along the data axis; the rest replicated."""
        out = {}
        shardings = self.shardings(data)
        for name, value in data.items():
            if name in self.axes:
                out[name] = _split(value, self.axes[name], self.pad_to, shardings[name])
            else:
                value = np.asarray(value)
                out[name] = jax.make_array_from_callback(value.shape, shardings[name],
                                                         lambda index, v=value: v[index])
        return out

    def trim(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Inside the program: the split arrays without their padding rows, still split.
        Where there are padding rows, the lowering is told to read rows in loops by gathers
        (`GATHER_ROWS`): mapped along a loop, an unevenly split index (`alpha[g[n]]`) makes
        XLA's partitioner abort on the gradient's scatter (docs/scaling.md)."""
        out = dict(data)
        if not self.even:
            out[GATHER_ROWS] = True
        for name, axis in self.axes.items():
            value = jax.lax.slice_in_dim(data[name], 0, self.lengths[name], axis=axis)
            out[name] = jax.lax.with_sharding_constraint(
                value, NamedSharding(self.mesh, self.spec(name)))
        return out


def _split(value, axis: int, parts: int, sharding: NamedSharding) -> jax.Array:
    """`value` split along `axis` over `parts` devices, padded with copies of its last row
    up to a multiple of `parts` (valid values of the array's type, never read:
    `Placement.trim` cuts them off). Built shard by shard, and only the shards of this
    process's devices: in a run of several processes (inference/distributed.py) each
    reads just its own rows of `value` (a memory-mapped `.npy` is read no further)."""
    shape = list(np.shape(value))
    length = shape[axis]
    shape[axis] += -length % parts

    def rows(index):
        start, stop, _ = index[axis].indices(shape[axis])
        at = lambda lo, hi: tuple(slice(lo, hi) if k == axis else i
                                  for k, i in enumerate(index))
        real = np.asarray(value[at(min(start, length), min(stop, length))])
        extra = stop - max(start, length)
        if extra > 0:   # the padding: copies of the last row
            last = np.asarray(value[at(length - 1, length)])
            real = np.concatenate([real, np.repeat(last, extra, axis=axis)], axis=axis)
        return real

    return jax.make_array_from_callback(tuple(shape), sharding, rows)


def sharded_value_and_grad(log_density: Callable, data: Mapping[str, Any],
                           axes: Mapping[str, int], devices=None) -> Callable:
    """u -> (log density, gradient) with the data split as the plan says, on a one-axis
    mesh of `devices` (default: all): for checking against one device, and benchmarks.
    Its `compiled_text(u)` is the text of the program a call compiled (JAX's AOT lowering
    finds it compiled: no second compilation), where the collectives XLA inserted can be
    read."""
    placement = Placement.make(axes, data, devices=devices)
    placed = placement.place(data)
    fn = jax.jit(jax.value_and_grad(lambda u, d: log_density(u, placement.trim(d))),
                 in_shardings=(placement.replicated, placement.shardings(data)))
    replicated = lambda u: jax.device_put(np.asarray(u, np.float64), placement.replicated)

    def value_and_grad(u):
        return fn(replicated(u), placed)

    value_and_grad.compiled_text = (
        lambda u: fn.lower(replicated(u), placed).compile().as_text())
    return value_and_grad


def split_density(log_density: Callable, data: Mapping[str, Any], axes: Mapping[str, int]
                  ) -> tuple[Callable, dict[str, jax.Array]]:
    """(u, data) -> the log density on the data placed as the plan splits them, and the
    placed data: what a run of several processes evaluates where one process would use
    the whole data (its initial points; each process holds only its own rows)."""
    placement = Placement.make(axes, data)
    return (lambda u, d: log_density(u, placement.trim(d))), placement.place(data)


def should_split(shard_data, sharding, devices: int | None = None) -> bool:
    """`shard_data` (True, False or "auto") as a decision: "auto" splits when the plan's
    `Sharding.auto` says so for this process's devices (backends/sharding.py)."""
    if shard_data is True or shard_data is False:
        return shard_data
    if shard_data != "auto":
        raise error(f"shard_data must be True, False or 'auto', not {shard_data!r}")
    devices = len(jax.devices()) if devices is None else devices
    return sharding is not None and sharding.size is not None and sharding.auto(devices)


def axes_to_split(sharding, source=None) -> dict[str, int]:
    """The plan's split (backends/sharding.py `Sharding`) as name -> axis, or an error
    located where the plan looked when there is nothing to split."""
    if sharding is not None and sharding.axes:
        return dict(sharding.axes)
    why = "no plan" if sharding is None else sharding.describe()
    raise error(f"shard_data: cannot split the data across devices: {why}", source,
                None if sharding is None else sharding.span,
                hint="sharding splits the arrays of observations (a `data y: real[N]` "
                     "observed by a `~`); run without --shard-data")
