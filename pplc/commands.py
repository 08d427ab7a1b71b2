"""The `pplc` commands, one function each (`cmd_check`, `cmd_sample`, ...), and what they
share: loading and checking the model, checking output paths before any work, reporting.
cli.py parses the command line, runs the command named in `COMMANDS` and turns
exceptions and signals into exit statuses (`EXIT_*`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from pplc.errors import error

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_INTERRUPTED = 130


def _externs(specs: Sequence[str]) -> dict:
    """--extern f=package.module:function -> {"f": function}."""
    import importlib

    externs = {}
    for spec in specs:
        name, _, target = spec.partition("=")
        module_name, _, attribute = target.partition(":")
        if not name or not module_name or not attribute:
            raise error(f"bad --extern '{spec}'", hint="write --extern NAME=package.module:function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise error(f"--extern {name}: cannot import module '{module_name}': {exc}",
                        hint="the module must be importable (on PYTHONPATH)") from None
        try:
            externs[name] = getattr(module, attribute)
        except AttributeError:
            raise error(f"--extern {name}: module '{module_name}' has no attribute "
                        f"'{attribute}'") from None
    return externs


def _load(args):
    """The checked model. The frontend and the IR check it first, without JAX (2-4 s to
    import): `pplc check MODEL.ppl` answers in a fraction of a second, and a mistake in the
    model is reported as fast by every command. Only with --data is `pplc.model` imported
    (checking again costs milliseconds)."""
    from pplc.checked import check_file

    checked = check_file(Path(args.model), _externs(args.extern))
    if not args.data:
        return checked
    from pplc.model import Model

    return Model(checked.program, dict(checked.externs))


def cmd_check(args) -> int:
    model = _load(args)
    if args.data:
        conditioned = _condition(model, args)
        graph = conditioned.graph
        print(f"{args.model}: ok with {args.data}: {conditioned.dim} unconstrained "
              f"parameters")
    else:
        model.check_externs()
        graph = model.graph
        print(f"{args.model}: ok")
    from pplc.ir.graph import Kind
    for kind in (Kind.LATENT, Kind.OBSERVED, Kind.DETERMINISTIC):
        names = [v.name for v in graph.of_kind(kind) if not v.internal]
        if names:
            print(f"  {kind.value}: {', '.join(names)}")
    if args.pedantic:
        from pplc.ir.pedantic import pedantic
        as_written = conditioned.unoptimized_graph if args.data else model.graph
        warnings = pedantic(as_written)
        for warning in warnings:
            print(warning.render(), file=sys.stderr)
        print(f"{len(warnings)} pedantic warning{'s' if len(warnings) != 1 else ''}")
    return 0


def cmd_ir(args) -> int:
    from pplc.ir.printer import format_graph

    model = _load(args)
    conditioned = _condition(model, args) if args.data else None
    print(format_graph(conditioned.graph if conditioned else model.graph), end="")
    if args.plan and conditioned:
        from pplc.backends.plan import format_plan
        print(format_plan(conditioned.lowered), end="")
    elif args.plan:   # what can be decided before the data give the sizes
        from pplc.backends.plan import plan_without_data, render
        from pplc.passes.pipeline import run_passes
        graph = run_passes(model.graph, ("reparameterize", *args.no_pass))
        print("# without data: reparameterization and the sizes are decided with the data\n"
              + render(plan_without_data(graph), graph), end="")
    return 0


def _condition(model, args):
    return model.condition(args.data, disabled_passes=tuple(args.no_pass))


def cmd_explain(args) -> int:
    from pplc.backends.plan import factor_notes, loop_notes, sharding_notes

    conditioned = _condition(_load(args), args)
    notes = conditioned.graph.notes + tuple(loop_notes(conditioned.lowered)) \
        + tuple(factor_notes(conditioned.lowered)) + tuple(sharding_notes(conditioned.lowered))
    for note in notes:
        print(f"{conditioned.graph.source.path}:{note.span.line}:{note.span.column}: "
              f"{note.message}    [{note.pass_name}]")
    if not notes:
        print(f"{args.model}: no pass changed anything"
              + (f" (off: {', '.join(args.no_pass)})" if args.no_pass else ""))
    return 0


def cmd_graph(args) -> int:
    from pplc.ir.graphviz import render

    _check_outputs(args, "output")   # a picture is redrawn over an old one (no --force)
    model = _load(args)
    if args.after and not args.data:
        raise error("--after needs --data: the passes decide from the data")
    if args.data:
        # The model as written, with plate sizes from the data; --after shows the rewrites.
        conditioned = _condition(model, args)
        graph, sizes = conditioned.unoptimized_graph, dict(conditioned.lowered.data.sizes)
        if args.after:
            from pplc.passes.pipeline import run_passes
            graph = run_passes(graph, args.no_pass, until=args.after)
    else:
        graph, sizes = model.graph, None
    path = render(graph, args.output, sizes=sizes)
    print(f"picture written to {path}")
    return 0


def cmd_build(args) -> int:
    from pplc import __version__
    from pplc.backends.codegen import DISABLED_PASSES, check_module, generate_module
    from pplc.files import write_atomically

    output = Path(args.output)
    _check_outputs(args, "output")
    if output.suffix != ".py":
        raise error(f"the output '{output}' should be a Python file (.py)")
    model = _load(args)
    if args.data:
        from pplc.datafiles import read_data

        data, data_source = read_data(args.data)
        conditioned = model.condition(data, data_source, disabled_passes=DISABLED_PASSES)
        text = generate_module(conditioned.graph, conditioned.unoptimized_graph,
                               model_path=args.model, version=__version__,
                               lowered=conditioned.lowered)
        check_module(text, data, conditioned, path=str(output))
    else:
        from pplc.passes.pipeline import run_passes
        text = generate_module(run_passes(model.graph, DISABLED_PASSES), model.graph,
                               model_path=args.model, version=__version__)

    def write(tmp):
        Path(tmp).write_text(text)
    write_atomically(output, write)
    print(f"module written to {output}")
    return 0

_BACKGROUND: list = []   # threads importing modules; joined before main returns


def _import_in_background(*modules: str) -> None:
    """Start importing slow modules (xarray and h5netcdf: ~1 s) on a thread while XLA compiles.

    XLA compilation releases the GIL, so the import overlaps it; a later `import` of the
    same module simply waits for this one to finish (Python's import lock). `main` joins
    the thread before it returns: an interpreter that exits while a thread is still
    importing (a user error found early) can abort in finalization ("Fatal Python error").
    """
    import importlib
    import threading

    def run():
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # noqa: BLE001 - the real import later reports any problem
                pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    _BACKGROUND.append(thread)


def join_background() -> None:
    while _BACKGROUND:
        _BACKGROUND.pop().join()


def _prepare_run(args):
    """Shared start of `sample` and `fit`: output checks (before any work), cache, model
    and data."""
    started = time.perf_counter()
    _check_outputs(args, "summary", "output")
    model = _load(args)  # a mistake in the model is reported before JAX is imported
    if not args.no_cache:
        from pplc.cache import enable_executable_cache
        enable_executable_cache()
    conditioned = _condition(model, args)
    if args.vars:
        _check_vars(conditioned, args.vars)
    # Only the netCDF file (--output) needs xarray and h5netcdf (not ArviZ itself:
    # inference/saved.py writes ArviZ's groups with xarray); the summary's diagnostics are
    # pplc's own (inference/convergence.py). Only now that model and data are sound: a
    # mistake is reported without waiting for it, and the import does not contend for the
    # interpreter while the model is lowered.
    if getattr(args, "output", None):
        _import_in_background("xarray", "h5netcdf")
    return conditioned, time.perf_counter() - started


def _check_outputs(args, *options: str) -> None:
    """Every output file can be written, said before any work, so that no run is lost to
    its last step: not a folder, not already there (without --force), in a folder that
    exists (not under a file) and takes a new file, and no two outputs the same file."""
    import tempfile

    seen: dict[str, str] = {}
    for option in options:
        name = getattr(args, option, None)
        if not name:
            continue
        path = Path(name)
        if path.is_dir():
            raise error(f"output path '{path}' is a folder")
        if path.exists() and not getattr(args, "force", True):
            raise error(f"'{path}' already exists", hint="pass --force to overwrite it")
        folder = path.parent
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise error(f"cannot write --{option} '{path}': '{existing}' is a file, not a "
                        "folder")
        if existing != folder:
            raise error(f"cannot write --{option} '{path}': folder '{folder}' does not exist",
                        hint=f"create it first (mkdir -p {folder})")
        try:
            handle, probe = tempfile.mkstemp(dir=folder, prefix=".pplc-")
            os.close(handle)
            os.remove(probe)
        except OSError as exc:
            raise error(f"cannot write --{option} '{path}': folder '{folder}' does not take "
                        f"new files ({exc.strerror or exc})") from None
        same = os.path.realpath(path)
        if same in seen:
            raise error(f"--{seen[same]} and --{option} are the same file '{path}'",
                        hint="give each output a file of its own")
        seen[same] = option


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


def cmd_fit(args) -> int:
    from pplc.streaming import mappable
    if args.batch_size is not None and args.method in ("advi", "fullrank") \
            and mappable(args.data):   # the rows streamed from the files, never read whole
        from pplc.streaming import fit_mapped, read_mapped
        _check_outputs(args, "summary", "output")
        model = _load(args)
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
        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
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
    if joined and not distributed.is_lead():
        return 0   # the same draws as process 0, which writes them
    posterior.compile_seconds += frontend_seconds
    complete = bool(posterior.attrs.get("complete", 1))
    if args.predict and complete:
        conditioned.predictive(posterior, seed=args.seed)
    if not complete:
        from pplc import interrupts
        how = "terminated" if interrupts.received() == signal.SIGTERM else "interrupted"
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
    from pplc import interrupts

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


def cmd_predict(args) -> int:
    from pplc.inference.posterior import Posterior

    output = Path(args.output)
    _check_outputs(args, "output")
    if not args.no_cache:
        from pplc.cache import enable_compilation_cache
        enable_compilation_cache()
    fit = Posterior.from_netcdf(args.draws)
    result = _condition(_load(args), args).predictions(fit, seed=args.seed)
    print(f"{Path(args.model).name}: predictions at {args.data} from {args.draws} "
          f"({result.num_chains} chains x {result.num_draws} draws)")
    for name, values in result.posterior_predictive.items():
        means = values.mean(axis=(0, 1))
        print(f"  {name}: shape {values.shape[2:]}, predictive means from "
              f"{means.min():.4g} to {means.max():.4g}")
    result.to_netcdf(output)
    print(f"predictions written to {output}")
    return 0


def cmd_plot(args) -> int:
    """The picture's path, kind and file are checked before ArviZ is imported (~2 s)."""
    from pplc.plots import KINDS, check_picture_path
    from pplc.errors import did_you_mean

    if args.kind not in KINDS:
        raise error(f"unknown kind of plot '{args.kind}'",
                    hint=did_you_mean(args.kind, KINDS) or "kinds: " + ", ".join(KINDS))
    check_picture_path(args.output)
    _check_outputs(args, "output")
    if not Path(args.fit).exists():
        raise error(f"cannot read '{args.fit}': no such file",
                    hint="pass a file written by 'pplc sample --output' or 'pplc fit --output'")
    from pplc.inference.posterior import Posterior
    from pplc.plots import plot

    posterior = Posterior.from_netcdf(args.fit)
    for note in plot(posterior, args.kind, args.output, args.vars):
        print(note, file=sys.stderr)
    print(f"picture written to {args.output}")
    return 0


COMMANDS = {"check": cmd_check, "ir": cmd_ir, "graph": cmd_graph, "sample": cmd_sample,
             "fit": cmd_fit, "explain": cmd_explain, "build": cmd_build,
             "predict": cmd_predict, "plot": cmd_plot}
