"""A run of several processes (jax.distributed over loopback, gloo collectives on CPU):
each process holds its own rows of the split data, and process 0 writes the same draws as
one process with as many devices.

Why "as many devices" and not one: the all-reduce sums one partial log density per
device, so one process with two (virtual) devices adds the same numbers in the same order
as two processes with one device each; its draws are then identical, bit for bit, which
is a sharper check than posterior means within Monte Carlo error. Against one device the
density differs only in the order of summation (checked here to 1e-12 relative; the
posterior against one device is tests/test_sharding.py's). The data have 999 rows, so the
second process's shard ends with a padding row.

The runs whose draws are compared within 1e-4 (vectorized chains, four processes) are
compared with one device in this process (`_one_device`): the same NUTS path within
rounding (measured: 1.4e-9 for the 2 x 2 mesh, 5.3e-6 for 4 processes), and an oracle that
shares no sharding code with the run. It costs ~8 CPU-s here, once for both tests (the
second seed reuses the sampler), instead of a process of 4 devices each (8-14 CPU-s, most
of it compiling the split program).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HIER = ROOT / "examples" / "hierarchical_logistic"
ROWS = 999


def _first_rows() -> dict:
    """The hierarchical logistic's data cut to its first ROWS rows."""
    data = json.loads((HIER / "data.json").read_text())
    return {**data, **{name: data[name][:ROWS] for name in ("g", "X", "y")}, "N": ROWS}


def _data(tmp_path: Path) -> Path:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(_first_rows()))
    return path


_ONE_DEVICE: dict = {}


def _one_device(seed: int) -> dict:
    """The draws of `_api`'s run (2 chains, 30 + 20, metric diag) of one device in this
    process, its chains one after another; the model conditioned once, so a second seed
    reuses its compiled sampler."""
    import pplc
    if "model" not in _ONE_DEVICE:
        _ONE_DEVICE["model"] = pplc.compile(HIER / "model.ppl").condition(_first_rows())
    if seed not in _ONE_DEVICE:
        fit = _ONE_DEVICE["model"].sample(chains=2, warmup=30, draws=20, seed=seed,
                                          progress=False, chain_method="sequential",
                                          metric="diag")
        _ONE_DEVICE[seed] = {v: np.asarray(fit.draws[v])
                             for v in ("mu_a", "sigma_a", "a", "beta")}
    return _ONE_DEVICE[seed]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int = 1) -> dict:
    return {**os.environ, "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}


def _processes(argv_for, count: int = 2, timeout: int = 240, devices: int = 1) -> list:
    """Start `count` processes (argv_for(port, id)) of `devices` devices each and wait for
    all of them."""
    port = _free_port()
    procs = [subprocess.Popen(argv_for(port, i), cwd=ROOT, env=_env(devices), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(count)]
    try:
        return [(p.wait(timeout), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_log_density_across_two_processes_equals_one_device(tmp_path):
    import pplc
    data = _data(tmp_path)
    runs = _processes(lambda port, i: [sys.executable, __file__, "density", str(data),
                                       f"127.0.0.1:{port}", str(i)])
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    two = json.loads(runs[0][1].splitlines()[-1])   # after gloo's own line
    assert two["processes"] == 2 and two["local_rows"] == [500, 500]
    conditioned = pplc.compile(HIER / "model.ppl").condition(json.loads(data.read_text()))
    value, grad = conditioned.value_and_grad(np.asarray(two["u"]))
    assert abs(two["value"] - value) <= 1e-12 * abs(value)
    assert np.max(np.abs(np.asarray(two["grad"]) - grad)) <= 1e-12 * np.max(np.abs(grad))


@pytest.mark.slow
def test_two_processes_write_the_draws_of_one_process_with_two_devices(tmp_path):
    import xarray as xr
    data = _data(tmp_path)
    # The metric auto picks (low-rank): its update across processes is compared here (the
    # other runs sample with metric diag, whose program compiles faster). 60 + 40, not
    # 30 + 20: measured, the shorter run saved no CPU (compilation is most of it).
    args = ["-m", "pplc.cli", "sample", str(HIER / "model.ppl"), "--data", str(data),
            "--shard-data", "--chains", "2", "--warmup", "60", "--draws", "40", "--seed",
            "3", "--quiet", "--no-cache"]
    one = subprocess.run([sys.executable, *args, "--output", str(tmp_path / "one.nc")],
                         cwd=ROOT, env=_env(2), capture_output=True, text=True, timeout=240)
    assert one.returncode == 0, one.stderr[-2000:]
    runs = _processes(lambda port, i: [
        sys.executable, *args, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
        "--process-id", str(i), "--output", str(tmp_path / f"two{i}.nc")])
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    assert "draws written" in runs[0][1] and "mu_a" in runs[0][1]
    # process 1: no summary, no file (gloo's own C++ prints one line when it connects)
    assert [l for l in runs[1][1].splitlines() if not l.startswith("[Gloo]")] == []
    assert not (tmp_path / "two1.nc").exists()
    a = xr.open_dataset(tmp_path / "one.nc", group="posterior")
    b = xr.open_dataset(tmp_path / "two0.nc", group="posterior")
    for var in ("mu_a", "sigma_a", "a", "beta"):
        np.testing.assert_array_equal(a[var].values, b[var].values)


@pytest.mark.slow
def test_vectorized_chains_across_processes_give_the_draws_of_one_device(tmp_path):
    """Two chains vectorized on 2 processes of 2 devices: a mesh of 2 chains x 2 data
    devices whose every chain row crosses both processes (inference/sharding.py
    `Placement.make`), each chunk's draws replicated to both (mcmc.py): the draws of one
    device (`_one_device`; 999 rows padded to 1000 in the run). Tolerance as for 4
    processes below: the same NUTS path. Metric diag: the mesh is the point; the low-rank
    update is compared in the test above."""
    import xarray as xr
    data = _data(tmp_path)
    args = ["-m", "pplc.cli", "sample", str(HIER / "model.ppl"), "--data", str(data),
            "--shard-data", "--chains", "2", "--chain-method", "vectorized", "--warmup",
            "30", "--draws", "20", "--seed", "5", "--metric", "diag", "--quiet", "--no-cache"]
    runs = _processes(lambda port, i: [
        sys.executable, *args, "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
        "--process-id", str(i), "--output", str(tmp_path / f"two{i}.nc")], devices=2)
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    a = _one_device(5)
    b = xr.open_dataset(tmp_path / "two0.nc", group="posterior")
    for var in ("mu_a", "sigma_a", "a", "beta"):
        assert a[var].shape[:2] == b[var].shape[:2] == (2, 20)
        np.testing.assert_allclose(a[var], b[var].values, rtol=0, atol=1e-4)


@pytest.mark.slow
def test_four_processes_from_python_give_the_draws_of_one_device(tmp_path):
    """Item 2's 4 processes, joined from Python (`condition(distributed=pplc.Distributed(
    ...))`): 999 rows over 4 devices (the last shard padded). Two chains, which `auto`
    vectorizes across processes (inference/distributed.py `check_distributed`; with one
    device a process, both chains on every device), against one device running them
    one after another (`_one_device`): the same path, each chain's NUTS steps the same.
    Metric diag (the vectorized program compiles ~2 CPU-s faster a process than auto's
    low-rank one)."""
    data = _data(tmp_path)
    runs = _processes(lambda port, i: [sys.executable, __file__, "api", str(data),
                                       f"127.0.0.1:{port}", "4", str(i),
                                       str(tmp_path / f"four{i}.npz")], count=4)
    assert [r[0] for r in runs] == [0] * 4, [r[2][-2000:] for r in runs]
    assert [(tmp_path / f"four{i}.npz").exists() for i in range(4)] == [True] + [False] * 3
    a, b = _one_device(3), np.load(tmp_path / "four0.npz")
    assert int(b["processes"]) == 4
    # Not bit for bit, unlike 2 processes against 2 devices: the 4 ranks' partial sums
    # (gloo's all-reduce across processes) are associated otherwise than one device's
    # sum, and the last bits of the density differ; measured, the draws then differ by
    # at most 5.3e-6 after 50 iterations (4e-6 against one process of 4 devices). A NUTS
    # decision taken otherwise (another tree, a rejection) would move a draw by about a
    # posterior sd (0.1 to 1 here; 0.40 with the reference's warmup 31 instead of 30), so
    # 1e-4 separates "the same path" from "another path" with room on both sides.
    for var in ("mu_a", "sigma_a", "a", "beta"):
        np.testing.assert_allclose(a[var], b[var], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_data_that_differ_between_processes_are_refused_naming_the_array_and_file(tmp_path):
    data = _data(tmp_path)
    other = json.loads(data.read_text())
    other["y"][600] = 1 - other["y"][600]   # one row of process 1's half
    (tmp_path / "other.json").write_text(json.dumps(other))
    runs = _processes(lambda port, i: [
        sys.executable, "-m", "pplc.cli", "sample", str(HIER / "model.ppl"), "--data",
        str(data if i == 0 else tmp_path / "other.json"), "--shard-data", "--chains", "1",
        "--warmup", "5", "--draws", "5", "--quiet", "--no-cache", "--coordinator",
        f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)])
    assert [r[0] for r in runs] == [1, 1], [r[2][-2000:] for r in runs]
    for code, out, err in runs:
        assert "error: the data differ between the processes of the run" in err, err
        assert "'y' on process(es) 1 differ from process 0's" in err
        assert "Traceback" not in err
    assert str(data) in runs[0][2] and str(tmp_path / "other.json") in runs[1][2]


def test_processes_that_never_come_are_an_error_naming_the_coordinator(tmp_path):
    port = _free_port()
    done = subprocess.run([sys.executable, __file__, "alone", f"127.0.0.1:{port}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert (f"error: process 0 (the coordinator, at 127.0.0.1:{port}) waited 2 s for all 3 "
            "processes of the run to join; not all did") in done.stderr
    assert "Check failure" not in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_each_process_places_only_its_own_rows_read_from_the_file(tmp_path):
    """The placement's half of reading by row range: the split arrays given as rows of an
    `.npz` file (pplc/rowfiles.py) are read by each process in its own rows only (counted
    in bytes), and the density over 2 processes still equals one device's. (The
    conditioning before it still reads the file whole: docs/scaling.md.)"""
    import pplc
    data = json.loads(_data(tmp_path).read_text())
    np.savez(tmp_path / "rows.npz", g=np.asarray(data["g"], np.int64),
             X=np.asarray(data["X"], np.float64), y=np.asarray(data["y"], np.int64))
    (tmp_path / "sizes.json").write_text(json.dumps({k: data[k] for k in ("N", "G", "K")}))
    runs = _processes(lambda port, i: [sys.executable, __file__, "rows", str(tmp_path),
                                       f"127.0.0.1:{port}", str(i)])
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    two = json.loads(runs[0][1].splitlines()[-1])
    # process 0: rows 0..499; process 1: rows 500..998 and row 998 again for its padding
    assert two["rows_read"] == {"g": [[[0, 500]], [[500, 999], [998, 999]]],
                                "X": [[[0, 500]], [[500, 999], [998, 999]]],
                                "y": [[[0, 500]], [[500, 999], [998, 999]]]}
    assert two["bytes_read"] == {"g": [4000, 4000], "X": [12000, 12000], "y": [4000, 4000]}
    assert two["whole_reads"] == 0
    conditioned = pplc.compile(HIER / "model.ppl").condition(data)
    value, grad = conditioned.value_and_grad(np.asarray(two["u"]))
    assert abs(two["value"] - value) <= 1e-12 * abs(value)
    assert np.max(np.abs(np.asarray(two["grad"]) - grad)) <= 1e-12 * np.max(np.abs(grad))


def _row_files(tmp_path: Path, change=None) -> list[Path]:
    """The 999 rows as an `.npz` (read by row range in a run) and the sizes as JSON;
    `change(arrays)` edits the arrays first."""
    data = json.loads(_data(tmp_path).read_text())
    arrays = {"g": np.asarray(data["g"], np.int64), "X": np.asarray(data["X"], np.float64),
              "y": np.asarray(data["y"], np.int64)}
    if change is not None:
        change(arrays)
    np.savez(tmp_path / "rows.npz", **arrays)
    (tmp_path / "sizes.json").write_text(json.dumps({k: data[k] for k in ("N", "G", "K")}))
    return [tmp_path / "rows.npz", tmp_path / "sizes.json"]


@pytest.mark.slow
@pytest.mark.parametrize("bad, message", [
    (lambda a: a["y"].__setitem__(600, 2),
     ":16:1: error: observed y[600] = 2 is outside the support of Bernoulli (0 or 1)"),
    (lambda a: a["g"].__setitem__(700, 20),
     ":16:24: error: index g = 20 is out of range for axis 0 of 'a', which has 20 elements")])
def test_a_bad_row_of_one_process_stops_every_process_with_the_located_error(tmp_path, bad,
                                                                             message):
    """Row 600 (or 700) lies in process 1's rows (500..998) only: process 1 finds it while
    checking its own rows, and the outcome is combined over the run, so process 0, which
    never reads that row, stops with the same located error, and neither waits. The
    model's types are loosened so that the model's checks (pplc/backends/checks.py,
    value_checks.py), not the data's declared types, find the row."""
    model = tmp_path / "loose.ppl"
    model.write_text((HIER / "model.ppl").read_text()
                     .replace("int(lower=0, upper=G - 1)[N]", "int[N]")
                     .replace("int(lower=0, upper=1)[N]", "int[N]"))
    files = _row_files(tmp_path, bad)
    runs = _processes(lambda port, i: [
        sys.executable, "-m", "pplc.cli", "sample", str(model), "--data", str(files[0]),
        "--data", str(files[1]), "--shard-data", "--chains", "1", "--warmup", "5",
        "--draws", "5", "--quiet", "--no-cache", "--coordinator", f"127.0.0.1:{port}",
        "--num-processes", "2", "--process-id", str(i)], timeout=120)
    assert [r[0] for r in runs] == [1, 1], [r[2][-2000:] for r in runs]
    for _, _, err in runs:
        assert f"{model}{message}" in err, err
        assert "Traceback" not in err and "internal error" not in err


@pytest.mark.slow
def test_a_recorded_value_of_the_split_rows_is_refused_before_sampling(tmp_path):
    """`eta[n]` reads the split rows X and g and is recorded with the draws: no process
    holds all its rows, so the run is refused before the first iteration, not after the
    sampling (the draws would be lost)."""
    model = tmp_path / "eta.ppl"
    model.write_text((HIER / "model.ppl").read_text().replace(
        "y ~ Bernoulli(logits=a[g] + X @ beta)",
        "eta = a[g] + X @ beta\ny ~ Bernoulli(logits=eta)"))
    files = _row_files(tmp_path)
    runs = _processes(lambda port, i: [
        sys.executable, "-m", "pplc.cli", "sample", str(model), "--data", str(files[0]),
        "--data", str(files[1]), "--shard-data", "--chains", "1", "--warmup", "5",
        "--draws", "5", "--no-cache", "--coordinator", f"127.0.0.1:{port}",
        "--num-processes", "2", "--process-id", str(i)], timeout=120)
    assert [r[0] for r in runs] == [1, 1], [r[2][-2000:] for r in runs]
    for _, out, err in runs:
        assert "error: a recorded value reads 'X', split over the processes of the run" in err \
            or "error: a recorded value reads 'g', split over the processes of the run" in err, err
        assert "warmup" not in out + err and "Traceback" not in err


@pytest.mark.slow
def test_sizes_that_differ_between_processes_stop_every_process_before_the_rows(tmp_path):
    """Process 1 given a file of 998 rows (N = 998): each process binds its own files,
    and the sizes and shapes are compared over the run (pplc/row_shares.py `combined`)
    before a process cuts its rows, so both stop with the error, neither waiting."""
    files = _row_files(tmp_path)
    short = tmp_path / "short"
    short.mkdir()
    other = _row_files(short, lambda a: [a.__setitem__(k, a[k][:998]) for k in list(a)])
    sizes = json.loads(other[1].read_text())
    other[1].write_text(json.dumps({**sizes, "N": 998}))
    runs = _processes(lambda port, i: [
        sys.executable, "-m", "pplc.cli", "sample", str(HIER / "model.ppl"),
        *[a for f in (files if i == 0 else other) for a in ("--data", str(f))],
        "--shard-data", "--chains", "1", "--warmup", "5", "--draws", "5", "--quiet",
        "--no-cache", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
        "--process-id", str(i)], timeout=120)
    assert [r[0] for r in runs] == [1, 1], [r[2][-2000:] for r in runs]
    for _, _, err in runs:
        assert ("error: the data's sizes or shapes differ between the processes of the run: "
                "process(es) 1 differ from process 0's") in err, err
        assert "Traceback" not in err


@pytest.mark.slow
def test_each_process_reads_and_holds_only_its_rows_and_counts_groups_as_one(tmp_path):
    """Conditioning in a run (`condition(files, distributed=...)`) reads from the `.npz`
    only the process's own rows (bytes counted by pplc/rowfiles.py: 500 rows of g, X, y
    for process 0, 499 for process 1, nothing whole), holds only those, and the
    reparameterization pass, fed each process's counts of observations per group summed
    over the run, decides as one process does on the whole data: the same counts, the
    same notes; sampling then runs on those rows."""
    import pplc
    from pplc.passes.group_sizes import observations_per_element
    files = _row_files(tmp_path)
    runs = _processes(lambda port, i: [sys.executable, __file__, "shared", str(tmp_path),
                                       f"127.0.0.1:{port}", str(i)])
    assert [r[0] for r in runs] == [0, 0], [r[2][-2000:] for r in runs]
    report = [json.loads(r[1].splitlines()[-1]) for r in runs]
    row_bytes = {"g": 8, "X": 24, "y": 8}
    assert [r["rows"] for r in report] == [[0, 500], [500, 999]]
    for r, rows in zip(report, (500, 499)):
        assert r["bytes_read"] == {k: rows * b for k, b in row_bytes.items()}
        assert r["held"] == {k: rows for k in row_bytes}
    whole = pplc.compile(HIER / "model.ppl").condition(files)
    counts = observations_per_element(whole.unoptimized_graph, "a")
    assert counts.sum() == ROWS
    for r in report:
        assert r["counts"] == counts.tolist()
        assert r["notes"] == [n.message for n in whole.graph.notes]
        assert r["draws"] == [1, 5]


def test_distributed_takes_jax_environment_variables_and_joins_one_run_only():
    port = _free_port()
    env = {**_env(), "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "1",
           "JAX_PROCESS_ID": "0"}
    done = subprocess.run([sys.executable, __file__, "again", f"127.0.0.1:{port}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == [
        "joined: 1 process, lead True",
        f"error: this process already joined a run (coordinator 127.0.0.1:{port}, process 0 "
        f"of 1); it cannot join another (coordinator 127.0.0.1:{port}, process 0 of 2)"]


def test_a_process_id_outside_the_run_is_a_clear_error():
    done = subprocess.run([sys.executable, "-m", "pplc.cli", "sample",
                           str(HIER / "model.ppl"), "--data", str(HIER / "data.json"),
                           "--shard-data", "--coordinator", "127.0.0.1:1",
                           "--num-processes", "2", "--process-id", "2"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "error: --process-id 2 is not in 0..1" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_coordinator_is_an_error_naming_it_not_a_hang():
    port = _free_port()   # nothing listens there
    done = subprocess.run([sys.executable, __file__, "unreachable", f"127.0.0.1:{port}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"no coordinator at 127.0.0.1:{port} after 2 s" in done.stdout


# ---------------------------------------------------------------- the subprocess side
def _unreachable(coordinator: str) -> None:
    from pplc.errors import PplcError
    from pplc.inference import distributed
    try:
        distributed.initialize(coordinator, 2, 1, timeout=2)
    except PplcError as e:
        print(e)

def _density(data: str, coordinator: str, process_id: str) -> None:
    from pplc.inference import distributed
    distributed.initialize(coordinator, 2, int(process_id))
    import jax
    import pplc
    from pplc.inference.sharding import Placement, sharded_value_and_grad
    conditioned = pplc.compile(HIER / "model.ppl").condition(json.loads(Path(data).read_text()))
    axes = dict(conditioned.lowered.plan.sharding.axes)
    u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.5
    value, grad = sharded_value_and_grad(conditioned._log_density, conditioned.data, axes)(u)
    placed = Placement.make(axes, conditioned.data).place(conditioned.data)
    local = [s.data.shape[0] for s in placed["y"].addressable_shards]
    rows = jax.experimental.multihost_utils.process_allgather(np.asarray(local))
    if distributed.is_lead():
        print(json.dumps({"processes": jax.process_count(), "u": u.tolist(),
                          "local_rows": np.ravel(rows).tolist(), "value": float(value),
                          "grad": np.asarray(grad).tolist()}))


def _rows(folder: str, coordinator: str, process_id: str) -> None:
    from pplc.inference import distributed
    joined = distributed.Distributed(coordinator, 2, int(process_id))
    import jax
    from jax.experimental import multihost_utils
    import pplc
    from pplc.backends.data import bind_data
    from pplc.datafiles import read_data
    from pplc.inference.sharding import sharded_value_and_grad
    files = [Path(folder) / "rows.npz", Path(folder) / "sizes.json"]
    conditioned = pplc.compile(HIER / "model.ppl").condition(files, distributed=joined)
    rows, source = read_data(files, by_rows=True)
    bound = bind_data(conditioned.unoptimized_graph, rows, source)
    axes = dict(conditioned.lowered.plan.sharding.axes)
    data = {**conditioned.data, **{k: bound.arrays[k] for k in axes}}
    u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.5
    value, grad = sharded_value_and_grad(conditioned._log_density, data, axes)(u)
    read = {k: (rows[k].rows_read, rows[k].bytes_read, rows[k].whole_reads) for k in axes}
    gathered = {k: multihost_utils.process_allgather(
        np.asarray([[*r, n, w] for r in read[k][0] + [(0, 0)] * (2 - len(read[k][0]))
                    for n, w in [(read[k][1], read[k][2])]])) for k in axes}
    if jax.process_index() == 0:
        print(json.dumps({
            "u": u.tolist(), "value": float(value), "grad": np.asarray(grad).tolist(),
            "rows_read": {k: [[r[:2].tolist() for r in p if r[1] > r[0]] for p in v]
                          for k, v in gathered.items()},
            "bytes_read": {k: [int(p[0, 2]) for p in v] for k, v in gathered.items()},
            "whole_reads": int(sum(int(p[0, 3]) for v in gathered.values() for p in v))}))


def _shared(folder: str, coordinator: str, process_id: str) -> None:
    import pplc
    from pplc import row_shares
    from pplc.passes.group_sizes import observations_per_element
    joined = pplc.Distributed(coordinator, 2, int(process_id))
    files = [Path(folder) / "rows.npz", Path(folder) / "sizes.json"]
    conditioned = pplc.compile(HIER / "model.ppl").condition(files, distributed=joined)
    shares = conditioned.lowered.data.shares
    with row_shares.counting(conditioned.lowered.data):
        counts = observations_per_element(conditioned.unoptimized_graph, "a")
    fit = conditioned.sample(chains=1, warmup=5, draws=5, shard_data=True, progress=False,
                             metric="diag")
    print(json.dumps({
        "rows": [shares["y"].start, shares["y"].stop],
        "bytes_read": {k: v.bytes_read for k, v in shares.items()},
        "held": {k: len(v.block) for k, v in shares.items()},
        "counts": counts.tolist(), "notes": [n.message for n in conditioned.graph.notes],
        "draws": list(np.shape(fit.draws["mu_a"]))}))


def _again(coordinator: str) -> None:
    import jax
    import pplc
    joined = pplc.Distributed()   # all three from JAX's environment variables
    joined.join()
    joined.join()                 # the same run again: nothing to do
    print(f"joined: {jax.process_count()} process, lead {joined.is_lead}")
    try:
        pplc.Distributed(coordinator, 2, 0).join()
    except pplc.PplcError as e:
        print(e)


def _alone(coordinator: str) -> None:
    from pplc.inference import distributed
    distributed.Distributed(coordinator, 3, 0, timeout=2).join()   # the others never come


def _api(data: str, coordinator: str, processes: str, process_id: str, out: str) -> None:
    import jax
    import pplc
    joined = pplc.Distributed(coordinator, int(processes), int(process_id))
    conditioned = pplc.compile(HIER / "model.ppl").condition(
        json.loads(Path(data).read_text()), distributed=joined)
    fit = conditioned.sample(chains=2, warmup=30, draws=20, seed=3, shard_data=True,
                             progress=False, metric="diag")   # auto: vectorized here
    if jax.process_index() == 0:
        np.savez(out, processes=jax.process_count(),
                 **{v: np.asarray(fit.draws[v]) for v in ("mu_a", "sigma_a", "a", "beta")})


if __name__ == "__main__":
    {"density": _density, "unreachable": _unreachable, "alone": _alone, "api": _api,
     "rows": _rows, "again": _again,
     "shared": _shared}[sys.argv[1]](*sys.argv[2:])
