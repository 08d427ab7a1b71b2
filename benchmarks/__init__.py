"""pplc's benchmark suite, side by side with NumPyro (protocol: /work/shared/PERFORMANCE.md).

Run from the repository root (`make bench` does the first):

    .venv/bin/python -m benchmarks            # full run: benchmarks/results.md, results.png,
                                              # scaling.png, results.json (about an hour)
    .venv/bin/python -m benchmarks --quick    # tiny sizes, smallest model: harness check

Parts: `suite` (nine models, both systems: speed, ESS, overhead, memory, first-run time),
`scaling` (cost against N), `coldwarm` (`pplc sample` with and without the persistent
compilation cache); `startup` and `passes` are older, separate reports. Every measured
configuration runs in a fresh Python process (`benchmarks.worker`), which counts XLA
compilations with JAX's monitoring events and prints one JSON line back. NumPyro is a
benchmark-only dependency: pplc never imports it.

This package imports nothing heavy at import time, so a worker's clock starts before JAX.
"""
