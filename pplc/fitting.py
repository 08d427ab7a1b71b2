"""Fitting a conditioned model (a mixin of `ConditionedModel`): approximating its
posterior by ADVI (mean-field or full-rank, whole or in minibatches), the MAP mode, a
Laplace approximation at that mode, or multi-path Pathfinder, each as a one-chain
`Posterior` in the same format as NUTS's.

Split from conditioned.py by job: conditioned.py holds the densities and NUTS sampling, with
the starting points both use; posterior_building.py turns the fit's positions into the
`Posterior`.
"""

from __future__ import annotations

import time
from typing import Callable

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.errors import error, guard_public_methods
from pplc.inference.keys import seed_keys
from pplc.inference.posterior import Posterior
from pplc.options import check_options
from pplc.resources import check_run_size


class Fitting:
    """Approximations of the posterior (`fit`), for `ConditionedModel`."""

    def fit(self, method: str = "advi", draws: int = 1000, seed: int = 0, *,
            max_iterations: int | None = None, progress: "bool | Callable | None" = None,
            batch_size: int | None = None) -> Posterior:
        """Approximate the posterior: "advi" (mean-field), "fullrank", "map", "laplace" or
        "pathfinder" (multi-path, 4 paths, with Pareto-smoothed importance resampling).

        ADVI and the full-rank variant are Stan's (Gaussian on the unconstrained space,
        convergence by relative ELBO change); "map" is the mode on the unconstrained space
        (the density includes the log-Jacobian, as Stan's `jacobian=true`), returned as a
        single draw; "laplace" draws from the Gaussian at that mode with the inverse
        Hessian as covariance. The result has one chain, in the same format as `sample`.

        `batch_size=B` (advi, fullrank): each step sees B random rows of the observations,
        weighted N/B (inference/minibatch.py; docs/scaling.md).
        """
        from pplc.inference.advi import fit_advi
        from pplc.inference.laplace import laplace
        from pplc.inference.optimize import find_map

        self._refuse_if_predicting_only()
        options = check_options(method=method, draws=draws, seed=seed,
                                max_iterations=max_iterations, batch_size=batch_size)
        draws, seed, max_iterations, batch_size = (
            options[k] for k in ("draws", "seed", "max_iterations", "batch_size"))
        if batch_size is not None and method not in ("advi", "fullrank"):
            raise error(f"batch_size is for method advi or fullrank, not {method}")
        check_run_size(1, draws, self.dim, self._values_per_draw, self.lowered.data.sizes,
                       kind="fitting and drawing")
        started = time.perf_counter()
        init_key, run_key = seed_keys(seed)
        # Pathfinder draws its own four starts: no one-chain start to compile for it.
        init = None if method == "pathfinder" else self._initial_positions(1, init_key)[0]
        if method == "pathfinder":
            from pplc.inference.pathfinder import pathfinder
            starts = self._initial_positions(4, init_key)   # a located error if none
            result = pathfinder(self._log_density, self.data, starts, run_key,
                                num_draws=draws)
            positions, n_grad, seconds = result.draws, result.n_grad_evals, result.seconds
            attrs = {"pareto_k": float(result.pareto_k), "num_paths": result.num_paths}
            if result.pareto_k > 0.7:
                import warnings
                warnings.warn(f"Pathfinder's Pareto k-hat is {result.pareto_k:.2f} (> 0.7): "
                              "the approximation is unreliable; use NUTS", RuntimeWarning,
                              stacklevel=2)
        elif method in ("advi", "fullrank"):
            options = {} if max_iterations is None else {"max_iterations": max_iterations}
            from pplc.inference.progress import progress_for
            family = "meanfield" if method == "advi" else "fullrank"
            if batch_size is not None:
                from pplc.inference.minibatch import minibatch_fit
                result = minibatch_fit(self, self.data, batch_size, run_key, init, seed=seed,
                                       method=family, num_draws=draws, **options)
            else:
                with progress_for(progress) as callback:
                    result = fit_advi(self._log_density, self.data, init, run_key,
                                      method=family, num_draws=draws, progress=callback,
                                      **options)
            positions, n_grad, seconds = result.draws, result.n_grad_evals, result.seconds
            attrs = {"iterations": result.iterations, "converged": int(result.converged),
                     "pareto_k": float(result.pareto_k)}
        else:
            options = {} if max_iterations is None else {"max_iterations": max_iterations}
            # The mode of the model as written: a noncentered rewrite (a sampling choice)
            # changes the Jacobian and so moves the mode; MAP and Laplace must not move.
            written = self._parameterized_as_written
            density = self._log_density if written is self.lowered else written.log_density
            if written is not self.lowered:
                init = written.unconstrain(self.constrain(init), self.data)
            mode = find_map(density, self.data, init, **options)
            if not mode.converged:
                import warnings
                warnings.warn(f"the optimizer stopped after {mode.iterations} iterations "
                              f"without converging (gradient norm {mode.grad_norm:.3g})",
                              RuntimeWarning, stacklevel=2)
            n_grad, seconds = int(mode.iterations), mode.seconds
            attrs = {"iterations": int(mode.iterations), "converged": int(mode.converged),
                     "log_density_at_mode": float(mode.logdensity)}
            if method == "map":
                positions = np.asarray(mode.position)[None, :]
            else:
                approx = laplace(density, self.data, mode, run_key, num_draws=draws)
                positions = approx.draws
                attrs["pareto_k"] = float(approx.pareto_k)
            if written is not self.lowered:   # back to the sampler's layout, for the output
                to_sampler = jax.vmap(lambda w: self.lowered.unconstrain(
                    written.constrain(w, self.data), self.data))
                positions = np.asarray(to_sampler(jnp.asarray(positions)))
        setup = time.perf_counter() - started - seconds
        return self._posterior(np.asarray(positions)[None], {}, n_grad, setup, seconds,
                               {"inference_method": method, "seed": seed, **attrs})


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(Fitting)
