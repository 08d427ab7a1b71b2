"""`python -m benchmarks.build_parity`: the gradient of a `pplc build` module against the
compiler's, on the recursive models (issue 12: "its gradient time is within 10% of the
compiler's on stochastic volatility and GARCH").

Both run the same plan: the module is built with the model's data, so it gets the
compiler's decisions (a window of the last slices for fixed lags), and the compiler runs
without the reparameterization the module leaves out. Each gradient is timed in a
compiled loop (gradfloor.in_loop_seconds), alternating the two, best of 3; the ratio is
written to benchmarks/results_build.md.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "GARCH(1,1) (posteriordb garch11)": ROOT.parent / "shared" / "conformance" / "garch-garch11",
    "stochastic volatility, noncentered by hand": ROOT / "benchmarks" / "models" / "sv_noncentered",
}


def _module(model: Path, data: Path, out: Path):
    subprocess.run([sys.executable, "-m", "pplc.cli", "build", str(model), "--data", str(data),
                    "-o", str(out), "--force"], check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location(out.stem, out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(folder: Path) -> tuple[float, float]:
    import jax.numpy as jnp
    import numpy as np

    import pplc
    from benchmarks.gradfloor import in_loop_seconds
    from pplc.backends.codegen import DISABLED_PASSES

    model, data_path = folder / "model.ppl", folder / "data.json"
    data = json.loads(data_path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        module = _module(model, data_path, Path(tmp) / "built.py")
    conditioned = pplc.compile(model).condition(data, disabled_passes=DISABLED_PASSES)
    u0 = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, conditioned.dim))
    # A module reads its data with NumPy (sizes fix shapes), so both close over the data.
    compiler = lambda u, _: conditioned.lowered.log_density(u, conditioned.data)  # noqa: E731
    built = lambda u, _: module.unconstrained_log_density(u, data)  # noqa: E731
    np.testing.assert_allclose(compiler(u0, None), built(u0, None), rtol=1e-9)
    times = {"compiler": [], "module": []}
    for _ in range(3):
        times["compiler"].append(in_loop_seconds(compiler, u0, {}))
        times["module"].append(in_loop_seconds(built, u0, {}))
    return min(times["compiler"]), min(times["module"])


def main() -> None:
    rows = ["| model | compiler (us / gradient) | built module | module / compiler |",
            "|---|---|---|---|"]
    for name, folder in MODELS.items():
        compiler, module = measure(folder)
        rows.append(f"| {name} | {compiler * 1e6:.1f} | {module * 1e6:.1f} | "
                    f"{module / compiler:.2f} |")
        print(rows[-1], flush=True)
    text = "# A built module's gradient against the compiler's\n\n" + __doc__.split("\n\n")[1] \
        + "\n\n" + "\n".join(rows) + "\n"
    (ROOT / "benchmarks" / "results_build.md").write_text(text)


if __name__ == "__main__":
    main()
