"""pplc's benchmark harness, side by side with NumPyro (docs: /work/shared/PERFORMANCE.md).

Run from the repository root:

    .venv/bin/python -m benchmarks            # full run, writes benchmarks/results_skeleton.md
    .venv/bin/python -m benchmarks --quick    # tiny sizes, a few seconds per configuration

Protocol: every configuration runs in a fresh Python process (`benchmarks.worker`), which
counts XLA compilations with JAX's monitoring events and prints one JSON line back; the
driver (`startup`, `overhead`) times the process from launch to exit. NumPyro is a
benchmark-only dependency: pplc never imports it.

This package imports nothing heavy at import time, so a worker's clock starts before JAX.
"""
