"""The `pplc` command.

    pplc check  MODEL.ppl [--data DATA.json]
    pplc ir     MODEL.ppl [--data DATA.json]
    pplc graph  MODEL.ppl [--data DATA.json] -o model.svg|png|pdf|dot
    pplc sample MODEL.ppl --data DATA.json [--chains 4] [--warmup 1000] [--draws 1000]
                [--seed 0] [--summary OUT.json] [--output OUT.nc] [--force]
    pplc fit    MODEL.ppl --data DATA.json --method advi|fullrank|map|laplace
                [--draws 1000] [--seed 0] [--summary OUT.json] [--output OUT.nc]
    pplc predict MODEL.ppl --data NEW.json --draws FIT.nc -o PRED.nc [--seed 0] [--force]
    pplc build  MODEL.ppl -o model_module.py [--data DATA.json] [--force]
    pplc plot   FIT.nc --kind trace|pair|ppc|forest [--vars NAME ...] -o FILE.png [--force]

A mistake in a model, its data or the options prints `FILE:LINE:COL: error: ...` with the
source line and a caret, and exits with status 1; never a traceback. Any other exception
is a bug in pplc, reported as such (status 2).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Sequence

from pplc.errors import InternalError, PplcError, error

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a PplcError like every other user mistake."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise error(f"{message}", hint=f"see '{self.prog} --help'")


def _option(name: str, parser, *flags: str, **kwargs) -> None:
    """An option read through pplc.options' table, the one the Python API checks with:
    `--chains 0` and `sample(chains=0)` are refused in the same words."""
    from pplc.options import OPTIONS, argparse_type

    if OPTIONS[name].kind == "choice":
        kwargs.setdefault("choices", OPTIONS[name].choices)
    else:
        kwargs.setdefault("type", argparse_type(name))
    parser.add_argument(*flags, **kwargs)


def _add_passes(parser) -> None:
    parser.add_argument("--no-pass", action="append", default=[], metavar="NAME",
                        help="turn an optimization pass off (repeatable), e.g. "
                             "--no-pass reparameterize")


def _add_extern(parser) -> None:
    parser.add_argument("--extern", action="append", default=[], metavar="NAME=MODULE:FUNCTION",
                        help="bind `extern def NAME` to a JAX-traceable Python function "
                             "(repeatable)")


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


def _add_summary_options(parser) -> None:
    parser.add_argument("--vars", nargs="+", metavar="NAME",
                        help="show only these variables in the table (or elements: "
                             "'theta[0]'), each with all its elements")
    parser.add_argument("--expand", action="store_true",
                        help="show every element of every array (by default an array of "
                             "deterministics, or a latent array of more than 20 elements, "
                             "takes one line)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pplc", description="A probabilistic-programming compiler.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def command(name, help, data_help="a JSON file of data", data_required=False,
                passes=True):
        """A subcommand on a model file, with --data, --extern and (unless off) --no-pass."""
        parser = sub.add_parser(name, help=help)
        parser.add_argument("model")
        parser.add_argument("--data", required=data_required, action="append",
                            help=data_help + "; .json, .csv (a column per array) or .npz, "
                                 "repeatable: the files are merged")
        _add_extern(parser)
        if passes:
            _add_passes(parser)
        return parser

    check = command("check", "check a model (and its data) without sampling")
    check.add_argument("--pedantic", action="store_true",
                       help="also warn about likely modelling mistakes (Stan's pedantic mode "
                            "and more)")

    ir = command("ir", "print the model's graph IR",
                 "a JSON file of data (decides observed vs latent)")
    ir.add_argument("--plan", action="store_true",
                    help="also print the lowering plan: the unconstrained layout, each "
                         "latent's transform, how each statement is evaluated (without --data: what the "
                         "text alone decides)")

    graph = command("graph", "draw the model as a PGM picture (graphviz)",
                    "a JSON file of data (sizes on plates, observed vs latent)")
    graph.add_argument("-o", "--output", required=True,
                       help="the picture: .svg, .png, .pdf, or .dot for the DOT source")
    graph.add_argument("--after", metavar="PASS",
                       help="draw the graph after this pass (needs --data)")

    fit = command("fit", "approximate the posterior: ADVI, full-rank ADVI, MAP, Laplace",
                  data_required=True)
    _option("method", fit, "--method", default="advi")
    _option("draws", fit, "--draws", default=1000,
            help="draws from the approximation (not for map)")
    _option("seed", fit, "--seed", default=0)
    _option("max_iterations", fit, "--max-iterations", default=None)
    _option("batch_size", fit, "--batch-size", default=None,
            help="advi/fullrank on minibatches of this many rows of the observations, "
                 "weighted N/B (docs/scaling.md)")
    _add_outputs(fit)

    command("explain", "say what each optimization pass decided", data_required=True)

    sample = command("sample", "draw from the posterior with NUTS", data_required=True)
    _option("chains", sample, "--chains", default=4)
    _option("warmup", sample, "--warmup", default=1000)
    _option("draws", sample, "--draws", default=1000)
    _option("seed", sample, "--seed", default=0)
    _option("max_tree_depth", sample, "--max-tree-depth", default=10)
    _option("target_accept", sample, "--target-accept", default=0.8)
    _option("chain_method", sample, "--chain-method", default="auto")
    _option("metric", sample, "--metric", default="diag",
            help="the mass matrix adapted in warmup: diagonal (Stan's default), "
                 "dense (for strongly correlated posteriors), or from draws and "
                 "gradients (Fisher-optimal, as nutpie): diag-grad, or low-rank "
                 "(low-rank plus diagonal; fewest gradients on correlated posteriors)")
    sample.add_argument("--init", default="uniform", metavar="uniform|pathfinder|FILE",
                        help="starting points: uniform(-2, 2) on the unconstrained space "
                             "(Stan's), draws from multi-path Pathfinder, or a file of "
                             "initial values (.json, .csv or .npz) for some or all latents, "
                             "the others uniform")
    sample.add_argument("--prior", action="store_true",
                        help="draw from the prior and prior predictive instead (forward "
                             "simulation; the observations only give shapes)")
    sample.add_argument("--predict", action="store_true",
                        help="also draw the posterior predictive and the pointwise "
                             "log-likelihood, and each latent's log prior (groups "
                             "posterior_predictive, log_likelihood, log_prior)")
    sample.add_argument("--shard-data", action="store_true",
                        help="split the arrays of observations across the JAX devices, "
                             "as 'pplc ir --plan' shows (docs/scaling.md)")
    _add_outputs(sample)

    predict = command("predict", "predict at new inputs from a saved fit, without "
                                 "re-sampling", "a JSON file of the new data (covariates and "
                                 "sizes; leave out the observations to predict)",
                      data_required=True)
    predict.add_argument("--draws", required=True, metavar="FIT.nc",
                         help="the fit: a netCDF file written by 'pplc sample --output' or "
                              "'pplc fit --output'")
    predict.add_argument("-o", "--output", required=True,
                         help="write the predictions here as netCDF (ArviZ group "
                              "'predictions', with the parameters' draws in 'posterior')")
    _option("seed", predict, "--seed", default=0)
    predict.add_argument("--force", action="store_true", help="overwrite an existing output")
    predict.add_argument("--no-cache", action="store_true",
                         help="do not use the persistent compilation cache")

    build = command("build", "compile the model to a standalone Python module (JAX and "
                             "NumPy only)",
                    "a JSON file of data: decides observed vs latent, lets discrete latents "
                    "be summed out, makes PARAM_SHAPES concrete, and checks the module "
                    "against the compiler", passes=False)
    build.add_argument("-o", "--output", required=True,
                       help="the Python file to write, e.g. model_module.py")
    build.add_argument("--force", action="store_true", help="overwrite an existing output file")

    plot = sub.add_parser("plot", help="draw a saved fit with ArviZ: trace, pair, posterior "
                                       "predictive check (ppc) or forest plot")
    plot.add_argument("fit", metavar="FIT.nc", help="a netCDF file written by 'pplc sample "
                                                    "--output' or 'pplc fit --output'")
    plot.add_argument("--kind", required=True, help="trace, pair, ppc or forest")
    plot.add_argument("--vars", nargs="+", metavar="NAME",
                      help="the variables to draw (default: the model's latents; for ppc, "
                           "its observed variables)")
    plot.add_argument("-o", "--output", required=True, help="the picture: .png, .svg or .pdf")
    plot.add_argument("--force", action="store_true", help="overwrite an existing output")
    return parser


def _add_outputs(parser) -> None:
    """The summary table's options and the files `sample` and `fit` write."""
    _add_summary_options(parser)
    parser.add_argument("--summary", help="write the summary JSON here")
    parser.add_argument("--output", help="write the draws here as netCDF (ArviZ format)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing --summary / --output files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not use the persistent compilation cache")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Python warnings as one plain line, without the source line they came from."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
        if isinstance(getattr(args, "data", None), list):   # one file, or several merged
            args.data = args.data[0] if len(args.data) == 1 else _Files(args.data)
        if args.version:
            from pplc import __version__
            print(f"pplc {__version__}")
            return 0
        if args.command is None:
            raise error("no command given", hint="commands: check, ir, sample "
                                                "(see 'pplc --help')")
        status = _COMMANDS[args.command](args)
        return _signalled(status)
    except PplcError as exc:
        print(exc.render(), file=sys.stderr)
        if os.environ.get("PPLC_TRACEBACK") and exc.__cause__ is not None:
            import traceback   # what a user's extern function raised, where
            traceback.print_exception(exc.__cause__)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        status = _signalled(EXIT_INTERRUPTED)
        print("terminated" if status == 128 + signal.SIGTERM else "interrupted",
              file=sys.stderr)
        return status
    except InternalError as exc:
        _internal(exc)
        return EXIT_INTERNAL_ERROR
    except Exception as exc:  # noqa: BLE001 - anything else is a pplc bug
        _internal(exc)
        return EXIT_INTERNAL_ERROR
    finally:
        _join_background()


class _Files(list):
    """Several --data files: printed as `a.csv + sizes.json` in the commands' messages."""

    def __str__(self) -> str:
        return " + ".join(self)


def _signalled(status: int) -> int:
    """128 + the signal that stopped the run (130 Ctrl-C, 143 SIGTERM), even if the run
    then finished: a signal is never swallowed."""
    from pplc import interrupts

    received = interrupts.received()
    if received is not None:
        return 128 + received
    return status


def _internal(exc: BaseException) -> None:
    from pplc.errors import REPORT

    what = exc.detail if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
    print(f"internal error: {what}\n{REPORT} (Set PPLC_TRACEBACK=1 for details.)",
          file=sys.stderr)
    if os.environ.get("PPLC_TRACEBACK"):
        import traceback
        traceback.print_exception(exc)


# ---------------------------------------------------------------- commands


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
    from pplc.backends.plan import loop_notes, sharding_notes

    conditioned = _condition(_load(args), args)
    notes = conditioned.graph.notes + tuple(loop_notes(conditioned.lowered)) \
        + tuple(sharding_notes(conditioned.lowered))
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
    """Start importing slow modules (ArviZ: ~2 s) on a thread while XLA compiles.

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


def _join_background() -> None:
    while _BACKGROUND:
        _BACKGROUND.pop().join()


def _prepare_run(args):
    """Shared start of `sample` and `fit`: output checks (before any work), cache, model
    and data."""
    started = time.perf_counter()
    _check_outputs(args, "summary", "output")
    model = _load(args)  # a mistake in the model is reported before JAX is imported
    if not args.no_cache:
        from pplc.cache import enable_compilation_cache
        enable_compilation_cache()
    conditioned = _condition(model, args)
    if args.vars:
        _check_vars(conditioned, args.vars)
    # Only now that model and data are sound: a mistake is reported without waiting for
    # it, and the import does not contend for the interpreter while the model is lowered.
    _import_in_background("arviz")
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
    conditioned, frontend_seconds = _prepare_run(args)
    posterior = conditioned.fit(method=args.method, draws=args.draws, seed=args.seed,
                                max_iterations=args.max_iterations,
                                batch_size=args.batch_size,
                                progress=False if args.quiet else None)  # a terminal: a bar
    posterior.compile_seconds += frontend_seconds
    what = "the mode" if args.method == "map" else f"{posterior.num_draws} draws"
    return _report(args, posterior, f"{Path(args.model).name}: {args.method}, {what}")


def cmd_sample(args) -> int:
    conditioned, frontend_seconds = _prepare_run(args)
    if args.prior:
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
    status = _report(args, posterior, f"{Path(args.model).name}: {args.chains} chains x "
                                      f"{posterior.num_draws} draws"
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


_COMMANDS = {"check": cmd_check, "ir": cmd_ir, "graph": cmd_graph, "sample": cmd_sample,
             "fit": cmd_fit, "explain": cmd_explain, "build": cmd_build,
             "predict": cmd_predict, "plot": cmd_plot}


def entry_point() -> None:
    from pplc import interrupts

    interrupts.install()   # Ctrl-C and SIGTERM: one line, status 130/143 (pplc.interrupts)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
