"""Data split across processes (issue 14, Measure: "and with 2 processes").

    python -m benchmarks.sharding_processes [--rows 100000 1000000] [--processes 2]

The hierarchical logistic regression of benchmarks/sharding.py, whole-array form. For each
size: one process with one CPU device (the data whole), one process with P virtual
devices (`XLA_FLAGS`), and P processes of one device each joined over loopback by
`jax.distributed` (gloo collectives over TCP, pplc/inference/distributed.py). Each
measures with `benchmarks.sharding.split_gradient` (as `scaling_point` does) the split
gradient's median wall time and CPU per call (compile excluded), and the data bytes and
XLA's peak bytes per device; each process also reports its own peak RSS. Every process of
a run computes the same gradient (the parameters are replicated), so process 0's time is
the run's.

The machine has 2 cores: P processes share them as P devices of one process do, so the
comparison shows what the collectives cost when they go over TCP instead of staying in
one process, not a speed-up from more hardware.

Every setup conditions on the same data files (an uncompressed `.npz` of g, X, y and the
sizes as JSON, written once per size): one process reads them whole; a process of a run
reads, checks and holds only its own rows (pplc/row_shares.py), which is what its peak
RSS shows, next to the bytes it read from the file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_files(rows: int, folder: Path) -> list[Path]:
    """benchmarks/sharding.py's data at `rows` rows as files a run reads by row range."""
    import numpy as np
    from benchmarks.sharding import data
    values = data(rows)
    files = [folder / f"rows{rows}.npz", folder / f"sizes{rows}.json"]
    if not files[0].exists():
        np.savez(files[0], **{k: values[k] for k in ("g", "X", "y")})
        files[1].write_text(json.dumps({k: values[k] for k in ("N", "G", "K")}))
    return files


def _worker(rows: int, coordinator: str | None, processes: int, process_id: int,
            folder: str) -> None:
    import pplc
    from benchmarks.sharding import FORMS, split_gradient
    joined = pplc.Distributed(coordinator, processes, process_id) if coordinator else None
    files = [Path(folder) / f"rows{rows}.npz", Path(folder) / f"sizes{rows}.json"]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    conditioned = pplc.compile(FORMS["whole-array"]).condition(files, distributed=joined)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result = split_gradient(conditioned)
    result["condition_cpu_seconds"] = (after.ru_utime + after.ru_stime
                                       - cpu.ru_utime - cpu.ru_stime)
    shares = getattr(conditioned.lowered.data, "shares", {})
    result["file_bytes_read"] = sum(s.bytes_read for s in shares.values()) if shares \
        else os.path.getsize(files[0])
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["process_id"] = process_id
    print("RESULT " + json.dumps(result), flush=True)


def _launch(rows: int, processes: int, devices: int, folder: Path,
            timeout: int = 1800) -> list[dict]:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "PYTHONPATH": str(ROOT)}
    coordinator = f"127.0.0.1:{_free_port()}" if processes > 1 else ""
    runs = [subprocess.Popen([sys.executable, "-m", "benchmarks.sharding_processes",
                              "--worker", str(rows), coordinator, str(processes), str(i),
                              str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=ROOT) for i in range(processes)]
    points = []
    for run in runs:
        out, err = run.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        if run.returncode != 0 or not lines:
            raise RuntimeError(f"worker failed ({run.returncode}): {err[-2000:]}")
        points.append(json.loads(lines[-1][len("RESULT "):]))
    return points


def run(rows_list, processes: int, log=print, folder: Path | None = None) -> list[dict]:
    import tempfile
    results = []
    folder = Path(folder or tempfile.mkdtemp(prefix="pplc_rows_"))
    for rows in rows_list:
        write_files(rows, folder)
        for label, procs, devices in (("1 process, 1 device", 1, 1),
                                      (f"1 process, {processes} devices", 1, processes),
                                      (f"{processes} processes, 1 device each", processes, 1)):
            points = _launch(rows, procs, devices, folder)
            lead = points[0]
            row = {"rows": rows, "setup": label, "seconds": lead["seconds"],
                   "cpu_seconds": lead["cpu_seconds"],
                   "data_bytes_per_device": lead["data_bytes_per_device"],
                   "peak_bytes_per_device": lead["peak_bytes_per_device"],
                   "condition_cpu_seconds": lead["condition_cpu_seconds"],
                   "file_bytes_read": max(p["file_bytes_read"] for p in points),
                   "peak_rss_bytes": max(p["peak_rss_bytes"] for p in points)}
            log(json.dumps(row))
            results.append(row)
    return results


def report(results: list[dict], load: str) -> str:
    lines = ["| rows | setup | gradient (ms) | CPU per call, process 0 (ms) | data per device "
             "(MB) | XLA peak per device (MB) | file bytes read per process (MB) | "
             "conditioning CPU, process 0 (s) | peak RSS per process (MiB) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['setup']} | {r['seconds'] * 1e3:.2f} | "
                     f"{r['cpu_seconds'] * 1e3:.2f} | {r['data_bytes_per_device'] / 1e6:.1f} | "
                     f"{r['peak_bytes_per_device'] / 1e6:.1f} | "
                     f"{r['file_bytes_read'] / 1e6:.1f} | "
                     f"{r['condition_cpu_seconds']:.2f} | "
                     f"{r['peak_rss_bytes'] / 2 ** 20:.0f} |")
    return "\n".join(lines) + f"\n\nLoad average during the run: {load}.\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--folder", help="where the data files are written (default: a "
                                             "new temporary folder)")
    parser.add_argument("--worker", nargs=5)
    args = parser.parse_args(argv)
    if args.worker:
        rows, coordinator, processes, process_id, folder = args.worker
        _worker(int(rows), coordinator or None, int(processes), int(process_id), folder)
        return
    results = run(args.rows, args.processes, folder=args.folder)
    print(report(results, ", ".join(f"{x:.1f}" for x in os.getloadavg())))


if __name__ == "__main__":
    main()
