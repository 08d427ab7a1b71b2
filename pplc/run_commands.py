"""The `pplc` commands that run inference, `cmd_sample` and `cmd_fit`, and what only they
share: the start of a run (output checks, cache, model, data, --vars), --init, keeping the
draws taken so far on Ctrl-C or SIGTERM, and the report (summary table and files).

Split from commands.py by job (commands.py holds the other commands and the table
`COMMANDS`). Imports stay lazy, as there: a mistake in the model is reported before JAX
is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from pplc import interrupts
from pplc.command_support import (EXIT_INTERRUPTED, check_outputs, condition_model,
                                  import_in_background, load_model)
from pplc.errors import error


def cmd_fit(args) -> int:
    from pplc.streaming import mappable
    if args.batch_size is not None and args.method in ("advi", "fullrank") \
            and mappable(args.data):   # the rows streamed from the files, never read whole
        from pplc.streaming import fit_mapped, read_mapped
        check_outputs(args, "summary", "output")
        model = load_model(args)
        if not args.no_cache:
            from pplc.cache import enable_compilation_cache
            enable_compilation_cache()
        posterior = fit_mapped(model, read_mapped(args.data)[0], args.batch_size,
                               method=args.method, draws=args.draws, seed=args.seed,
                               max_iterations=args.max_iterations)
        return _report(args, posterior, f"{Path(args.model).name}: {args.method}, "
                                        f"{posterior.num_draws} draws, streamed")
    conditioned, frontend_seconds = _prepare_run(args)
    posterior = conditioned.fit(method=args.method, draws=args.draws, seed=args.seed,
                                max_iterations=args.max_iterations,
                                batch_size=args.batch_size,
                                progress=False if args.quiet else None)  # a terminal: a bar
    posterior.compile_seconds += frontend_seconds
    what = "the mode" if args.method == "map" else f"{posterior.num_draws} draws"
    return _report(args, posterior, f"{Path(args.model).name}: {args.method}, {what}")


def cmd_sample(args) -> int:
    # (pplc.inference, and JAX with it, imported only for a distributed run: a mistake in
    # the model is otherwise reported before JAX is imported)
    joined = (args.coordinator, args.num_processes, args.process_id) != (None,) * 3 \
        or bool(os.environ.get("JAX_COORDINATOR_ADDRESS"))
    if joined:   # before JAX makes any array; only process 0 writes and prints
        from pplc.inference import distributed
        if distributed.process_id(args.process_id) == 0:
            check_outputs(args, "summary", "output")   # refused before the others wait for it
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
        if distributed.joined()[1] > 1:
            interrupts.defer()   # a signal stops every process at one chunk (pplc.interrupts)
        if not distributed.is_lead():
            args.quiet, args.output, args.summary = True, None, None
    conditioned, frontend_seconds = _prepare_run(args)
    if args.prior:
        if joined and not distributed.is_lead():
            return 0
        return _report(args, _prior_draws(conditioned, args, frontend_seconds),
                       f"{Path(args.model).name}: prior, {args.chains * args.draws} draws")
    init = _init(args.init)
    from pplc.inference.progress import ProgressBar
    with ProgressBar(enabled=not args.quiet) as bar:
        progress = _keeping_draws(bar)
        posterior = conditioned.sample(
            chains=args.chains, warmup=args.warmup, draws=args.draws, seed=args.seed,
            max_tree_depth=args.max_tree_depth, target_accept=args.target_accept,
            chain_method=args.chain_method, init=init, metric=args.metric,
            progress=progress, shard_data=args.shard_data)
    complete = bool(posterior.attrs.get("complete", 1))
    received = interrupts.received()
    how = ("terminated" if received == signal.SIGTERM else "interrupted" if received or not joined
           else "stopped, as another process of the run was interrupted")
    if joined and not distributed.is_lead():   # the same draws as process 0, which writes them
        if complete:
            return 0
        print(f"{how}: every process of the run stopped at the same iteration; process 0 "
              "keeps the draws", file=sys.stderr)
        return EXIT_INTERRUPTED
    posterior.compile_seconds += frontend_seconds
    if args.predict and complete:
        conditioned.predictive(posterior, seed=args.seed)
    if not complete:
        print(f"{how}: keeping the {posterior.num_draws} draws per chain taken so far, "
              "marked incomplete", file=sys.stderr)
        if posterior.num_draws == 0:
            return EXIT_INTERRUPTED
    from pplc.inference.report import metric_phrase
    chosen = metric_phrase(posterior.attrs)   # what the metric kept, chain by chain
    chosen = f", {chosen}" if chosen else ""
    status = _report(args, posterior, f"{Path(args.model).name}: {args.chains} chains x "
                                      f"{posterior.num_draws} draws{chosen}"
                                      + ("" if complete else " (INCOMPLETE)"))
    return status if complete else EXIT_INTERRUPTED


def _prepare_run(args):
    """Shared start of `sample` and `fit`: output checks (before any work), cache, model
    and data."""
    started = time.perf_counter()
    check_outputs(args, "summary", "output")
    model = load_model(args)  # a mistake in the model is reported before JAX is imported
    if not args.no_cache:
        from pplc.cache import enable_executable_cache
        enable_executable_cache()
    conditioned = condition_model(model, args)
    if args.vars:
        _check_vars(conditioned, args.vars)
    # Only the netCDF file (--output) needs xarray and h5netcdf (not ArviZ itself:
    # inference/saved.py writes ArviZ's groups with xarray); the summary's diagnostics are
    # pplc's own (inference/convergence.py). Only now that model and data are sound: a
    # mistake is reported without waiting for it, and the import does not contend for the
    # interpreter while the model is lowered.
    if getattr(args, "output", None):
        import_in_background("xarray", "h5netcdf")
    return conditioned, time.perf_counter() - started


def _check_vars(conditioned, names: Sequence[str]) -> None:
    """A typo in --vars is found before sampling, not after: the names, and the elements
    of variables whose shape the lowered model knows (not a summed-out `z`'s draws)."""
    from pplc.inference.summary import select_variables

    lowered = conditioned.lowered

    def knows_elements(base: str) -> bool:
        return base in lowered.shapes and not conditioned.graph[base].marginalized

    checkable = [name if knows_elements(name.split("[", 1)[0]) else name.split("[", 1)[0]
                 for name in names]
    select_variables(checkable, list(conditioned.roles), lowered.element_names)


def _init(text: str):
    """--init: a rule's name, or a file of initial values (`pplc.initial_values`)."""
    rules = ("uniform", "pathfinder")
    if text in rules:
        return text
    if not Path(text).suffix:
        from pplc.errors import did_you_mean
        raise error(f"unknown --init '{text}'", hint=did_you_mean(text, rules)
                    or "--init uniform, pathfinder, or a file of initial values (.json)")
    from pplc.initial_values import read_init
    return read_init(text)


def _keeping_draws(bar):
    """The sampler's progress callback: from its first chunk on, Ctrl-C and SIGTERM stop
    the run at the next chunk and keep the draws (`pplc.interrupts`)."""

    def progress(*report):
        interrupts.keep_draws()
        bar(*report)
        interrupts.check()   # a signal whose KeyboardInterrupt was swallowed
    return progress


def _prior_draws(conditioned, args, frontend_seconds):
    prior = conditioned.sample_prior(draws=args.chains * args.draws, seed=args.seed)
    prior.compile_seconds = frontend_seconds
    return prior


def _report(args, posterior, title: str) -> int:
    """Print the summary table and write the requested files."""
    from pplc.inference.report import print_summary
    summary = posterior.summary()
    print_summary(summary, posterior, title=title, var_names=args.vars, expand=args.expand)
    if args.summary:
        from pplc.inference.summary import summary_json, write_json
        extra = {} if posterior.attrs.get("complete", 1) else {"complete": False}
        write_json(args.summary, summary_json(summary, posterior.divergences,
                                              posterior.n_grad_evals,
                                              posterior.compile_seconds,
                                              posterior.sampling_seconds, **extra))
        print(f"summary written to {args.summary}")
    if args.output:
        posterior.to_netcdf(args.output)
        print(f"draws written to {args.output}")
    return 0
