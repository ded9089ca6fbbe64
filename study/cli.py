"""The `seedvar` command: studies, models, datasets, sweep, report, ui, server (on top of seedvar.api).

Every user error ends as one line on stderr and exit status 2 (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import Any

from seedvar import __version__
from seedvar.engine import executors
from seedvar.errors import Terminated, UserError, raise_terminated
from seedvar.plan.execution import DEFAULT_URI, ENV_TRACKING_URI
from seedvar.plan.options import OPTIONS, SWEEP_OPTIONS
from seedvar.record.schema import SEED_PARAMS
from seedvar.serving.supervise import HOST, PORT, SERVER_WORKERS

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seedvar",
        description="How much does a deep-learning result vary, and why: seed sweeps, test modes, variance reports.",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    p.add_argument("--version", action="version", version=f"seedvar {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _listing_parsers(sub)
    _sweep_parser(sub)
    _report_parser(sub)
    _reproduce_parser(sub)
    _server_parser(sub)
    _ui_parser(sub)
    return p


def _listing_parsers(sub: Any) -> None:
    """studies, models, datasets: what a study can name."""
    sub.add_parser("studies", help="list the ready studies (`seedvar sweep NAME` runs one from any folder)")

    m = sub.add_parser(
        "models", help="list every model (built in and installed plugins) with its parameters and MACs"
    )
    m.add_argument(
        "--input-shape",
        help="C,H,W (or 1,bands,w,w for hybridsn) instead of each model's default: lists the models that "
        "accept it and names those left out",
    )
    m.add_argument("--classes", type=int, help="number of classes instead of each model's default")
    m.add_argument("names", nargs="*", help="only these models (names or import paths module:function)")

    sub.add_parser(
        "datasets", help="list the datasets a study can name: built in, torchvision classes, image_folder"
    )


def _sweep_parser(sub: Any) -> None:
    """`seedvar sweep SPEC`: the spec, then every option of the sweep's table (seedvar.plan.options), each
    flag built from its one entry, then what only the command has."""
    s = sub.add_parser("sweep", help="train and test a study's models across seeds, logging to MLflow")
    s.add_argument(
        "spec",
        help="a study spec (TOML path, e.g. my_study.toml) or a ready study's name (`seedvar studies`)",
    )
    for option in SWEEP_OPTIONS:
        if option.name == "retry_for":
            continue  # a store option: below, as every command that reads a store spells it
        choices = tuple(executors.names()) if option.name == "executor" else option.choices
        if option.type is bool:
            s.add_argument(option.flag, action="store_true", help=option.help_text())
        else:
            s.add_argument(
                option.flag,
                type=option.type,
                choices=choices,
                metavar=option.metavar,
                help=option.help_text(choices),
            )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any spec field, e.g. --set train.lr=0.01 (repeatable)",
    )
    s.add_argument(  # the default is seedvar.data's (data_root), not imported here: it loads torch
        "--data-root", help="dataset folder (default: $SEEDVAR_DATA_ROOT or ~/.cache/seedvar/datasets)"
    )
    _store_options(s)
    s.add_argument("--dry-run", action="store_true", help="print the expanded plan without training")
    s.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars or epoch lines (each run's result line stays)",
    )


def _report_parser(sub: Any) -> None:
    """`seedvar report`: a study's runs, or any runs' metric (MLflow or a CSV)."""
    r = sub.add_parser(
        "report",
        help="write a variance report (HTML, Markdown, CSV, PNG) from a study's runs, or from any runs' metric",
    )
    r.add_argument("--experiment", help="the study name (MLflow experiment); any experiment with --metric")
    r.add_argument(
        "--csv", help="a table of results, one row per run (with --metric and --by), instead of MLflow"
    )
    r.add_argument(
        "--metric",
        help="report this logged metric (a column with --csv) across conditions: runs seedvar did not train",
    )
    r.add_argument(
        "--by",
        help="comma-separated params (columns) whose values are the conditions (default: every one that varies, "
        "except the seed params)",
    )
    r.add_argument(
        "--seed-param",
        action="append",
        metavar="NAME",
        help=f"a param that names the seed, never a condition (repeatable; wildcards; default: "
        f"{', '.join(SEED_PARAMS)})",
    )
    r.add_argument("--lower-is-better", action="store_true", help="the metric is a loss or an error")
    r.add_argument(
        "--resolution",
        type=float,
        metavar="R",
        help="with --metric: the metric's step, which floors each std (default: from the values' decimals)",
    )
    r.add_argument(
        "--bounds",
        metavar="LO,HI",
        help="with --metric: the metric's possible range (0,1 for an accuracy as a fraction), which every "
        "interval keeps to (default: unknown)",
    )
    r.add_argument(
        "--target-ci",
        type=float,
        metavar="H",
        help="with --metric: runs per condition for a 95%% interval of half-width H (Stein's rule)",
    )
    r.add_argument(
        "--target-diff",
        type=float,
        metavar="D",
        help="with --metric: runs per condition to tell apart a difference of D (default: the closest pair's)",
    )
    _store_options(r)
    r.add_argument(
        "--claim",
        action="append",
        metavar="CONDITION=VALUE",
        help="hold a claimed number against a condition's seeds (repeatable; quote names with spaces)",
    )
    r.add_argument("--out", help="output folder (default: reports/<experiment> or reports/<csv name>)")
    r.add_argument("--format", default="html,md", help="comma-separated: html, md (default %(default)s)")
    r.add_argument(
        "--no-log",
        action="store_true",
        help="do not log a study's report as artifacts of its latest sweep run",
    )
    r.add_argument(
        "--no-cache",
        action="store_true",
        help="read every run from the store, not from the local cache of runs read by earlier reports",
    )


def _reproduce_parser(sub: Any) -> None:
    """`seedvar reproduce`: retrain a logged run and compare."""
    rp = sub.add_parser(
        "reproduce",
        help="retrain one logged run from its config and seeds and compare weights, predictions, accuracy "
        "and environment (exit 0 bit for bit, 1 when it differs)",
    )
    rp.add_argument(
        "target",
        metavar="RUN_ID",
        help="the MLflow run id of a trained model's run, or a study's name (with --runs: a sample of it)",
    )
    rp.add_argument(
        "--runs",
        type=int,
        help="with a study's name: reproduce this many of its runs, spread over its conditions (default 1)",
    )
    rp.add_argument("--tracking-uri", help=f"MLflow store (default: ${ENV_TRACKING_URI} or {DEFAULT_URI})")
    rp.add_argument("--device", help="retrain here instead of the logged device: cpu, cuda, cuda:1")
    rp.add_argument(
        "--data-root", help="dataset folder (default: $SEEDVAR_DATA_ROOT or ~/.cache/seedvar/datasets)"
    )
    rp.add_argument("--download", action="store_true", help="download missing dataset files")
    rp.add_argument("--no-tag", action="store_true", help="do not tag the run seedvar.reproduced")


def _server_parser(sub: Any) -> None:
    """`seedvar server`: a tracking server for a team."""
    v = sub.add_parser(
        "server", help="start an MLflow tracking server for a study team (PostgreSQL, many hosts)"
    )
    v.add_argument(
        "--backend-store-uri",
        help="where runs are kept, e.g. postgresql://user@host/db (default: the local sqlite store mlruns/mlflow.db)",
    )
    v.add_argument(
        "--artifacts-destination",
        help="where artifacts (predictions, checkpoints) are kept: a folder or an object store URI such as "
        "s3://bucket/seedvar (default: mlruns/artifacts)",
    )
    v.add_argument("--host", default=HOST, help="interface to listen on (default: loopback only)")
    v.add_argument("--port", type=int, default=PORT)
    v.add_argument(
        "--workers",
        type=int,
        default=SERVER_WORKERS,
        help=f"server worker processes (default {SERVER_WORKERS})",
    )
    v.add_argument(
        "--admin-password-file",
        help="file holding the admin password for MLflow's basic-auth (else $SEEDVAR_ADMIN_PASSWORD)",
    )
    v.add_argument(
        "--auth-db", help="database URI of the basic-auth users (default: sqlite beside the artifacts)"
    )
    v.add_argument(
        "--insecure",
        action="store_true",
        help="listen beyond loopback without authentication (not recommended)",
    )


def _ui_parser(sub: Any) -> None:
    """`seedvar ui`: the MLflow UI on the store."""
    u = sub.add_parser("ui", help="serve the MLflow UI for the store and print each study's runs-table URL")
    _store_options(u)  # for an http(s) tracking server nothing is started, only its URLs are printed
    u.add_argument("--experiment", help="only this study (default: every study in the store)")
    u.add_argument("--open", action="store_true", help="open the study's runs table in a web browser")
    u.add_argument("--host", default=HOST)
    u.add_argument("--port", type=int, default=PORT)


def _store_options(p: argparse.ArgumentParser) -> None:
    """Where the runs are, and how long to wait for a tracking server that is restarting."""
    p.add_argument("--tracking-uri", help=f"MLflow store (default: ${ENV_TRACKING_URI} or {DEFAULT_URI})")
    retry = OPTIONS["retry_for"]
    p.add_argument(retry.flag, type=retry.type, metavar=retry.metavar, help=retry.help_text())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and `python -m seedvar`."""
    args = _parser().parse_args(argv)
    if args.command in (
        "sweep",
        "report",
        "reproduce",
    ):  # `ui` and `server` stop their process trees themselves
        signal.signal(signal.SIGTERM, raise_terminated)
    try:
        return int(_dispatch(args) or 0)
    except Terminated:
        print("seedvar: stopped (SIGTERM); rerun the same command to resume", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print("seedvar: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug or not _is_user_error(exc):
            raise
        print(f"seedvar: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


def _is_user_error(exc: BaseException) -> bool:
    import seedvar.data as data
    import seedvar.nets as nets

    return isinstance(exc, (UserError, data.DataError, nets.ModelError))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "models":
        return _models(args)
    if args.command == "datasets":
        return _datasets()
    if args.command == "studies":
        return _studies()
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "report":
        return _report(args)
    if args.command == "reproduce":
        return _reproduce(args)
    if args.command == "server":
        from seedvar.serving.server import run_server

        return run_server(
            args.backend_store_uri,
            args.artifacts_destination,
            args.host,
            args.port,
            args.workers,
            args.insecure,
            args.admin_password_file,
            args.auth_db,
        )
    if args.command == "ui":
        from seedvar.serving.ui import serve_ui

        if not 0 < args.port < 65536:
            raise UserError(f"--port must be in 1..65535, got {args.port}")
        return serve_ui(
            args.tracking_uri, args.host, args.port, experiment=args.experiment, open_browser=args.open
        )
    raise AssertionError(args.command)


def _reproduce(args: argparse.Namespace) -> int:
    """One run by its id (verdict first, then the details), or with a study's name a sample as a table."""
    from seedvar.api import reproduce
    from seedvar.record.store import Store

    common = {
        "tracking_uri": args.tracking_uri,
        "device": args.device,
        "data_root": args.data_root,
        "download": args.download,
        "tag": not args.no_tag,
    }
    store = Store(args.tracking_uri, create=False)
    if args.runs is not None or store.experiment_id(args.target, create=False) is not None:
        from seedvar.sweeper.reproduce import EXIT_DIFFERS, EXIT_SAME, reproduce_study, study_lines

        reps = reproduce_study(args.target, 1 if args.runs is None else args.runs, **common)
        print("\n".join(study_lines(reps)))
        return EXIT_SAME if all(r.exit_code == EXIT_SAME for r in reps) else EXIT_DIFFERS
    rep = reproduce(args.target, **common)
    print("\n".join(rep.lines()))
    return rep.exit_code


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from seedvar.api import report

    if bool(args.experiment) == bool(args.csv):
        raise UserError("report: name one source, --experiment NAME or --csv FILE (with --metric)")
    if args.csv and not args.metric:
        raise UserError(
            f"--csv {args.csv}: name the column to report with --metric (and the conditions with --by)"
        )
    for flag in (
        "seed_param",
        "target_ci",
        "target_diff",
        "resolution",
        "bounds",
    ):  # --by alone: conditions of tested runs
        if getattr(args, flag) and not args.metric:
            raise UserError(
                f"--{flag.replace('_', '-')} goes with --metric: a study's report compares eval accuracy"
            )
    if args.lower_is_better and not args.metric:
        raise UserError("--lower-is-better goes with --metric: a study's report compares eval accuracy")
    for flag in ("target_ci", "target_diff"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise UserError(f"--{flag.replace('_', '-')} must be > 0, got {value}")
    claims: dict[str, float] = {}
    for item in args.claim or []:
        cond, sep, value = item.rpartition("=")
        try:
            claims[cond.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not cond.strip():
            raise UserError(f"--claim {item}: write CONDITION=VALUE, e.g. --claim hybridsn=96.89")
    bounds = None
    if args.bounds:
        try:
            lo, hi = (float(v) for v in args.bounds.split(","))
        except ValueError:
            raise UserError(f"--bounds {args.bounds}: write LO,HI, e.g. --bounds 0,1") from None
        if not lo < hi:
            raise UserError(f"--bounds {args.bounds}: LO must be below HI, e.g. --bounds 0,1")
        bounds = (lo, hi)
    name = args.experiment or Path(args.csv).stem
    built = report(
        args.experiment,
        Path(args.out) if args.out else Path("reports") / name,
        metric=args.metric,
        by=args.by,
        csv=args.csv,
        seed_params=[p for item in args.seed_param or [] for p in item.split(",") if p.strip()] or None,
        lower_is_better=args.lower_is_better,
        target_ci=args.target_ci,
        target_diff=args.target_diff,
        tracking_uri=args.tracking_uri,
        formats=[f.strip() for f in args.format.split(",") if f.strip()],
        log=not args.no_log,
        retry_for=args.retry_for,
        cache=not args.no_cache,
        claims=claims or None,
        resolution=args.resolution,
        bounds=bounds,
    )
    print(f"report written to {built.folder} ({built.loaded})")
    if built.logged:
        print(built.logged)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from seedvar.api import sweep
    from seedvar.plan import parse_value

    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set {item}: expected KEY=VALUE, e.g. --set train.lr=0.01")
        key, value = item.split("=", 1)
        overrides[key.strip()] = parse_value(value.strip())
    for option in SWEEP_OPTIONS:  # a flag given wins over --set of the same keyword
        value = option.from_flag(getattr(args, option.name))
        if value is not None:
            overrides[option.name] = value
    result = sweep(
        args.spec,
        tracking_uri=args.tracking_uri,
        data_root=args.data_root,
        dry_run=args.dry_run,
        progress=not args.no_progress,
        **overrides,
    )
    return 1 if result.failed else 0


def _studies() -> int:
    from seedvar.plan import ready_studies

    rows = [(r.name, r.runs_on or "-", r.description) for r in ready_studies()]
    print_table([("study", "runs on", "what"), *rows], right_from=99)
    print("\nrun one from any folder: seedvar sweep NAME (a path to your own spec works the same way)")
    return 0


def _models(args: argparse.Namespace) -> int:
    import seedvar.nets as nets

    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.replace("x", ",").split(","))
        except ValueError:
            raise UserError(f"--input-shape {args.input_shape}: expected integers such as 3,32,32") from None
    if args.classes is not None and args.classes < 1:
        raise UserError(f"--classes must be at least 1, got {args.classes}")
    names = args.names or nets.list_models()
    infos = {name: nets.model_info(name) for name in names}  # an unknown name or bad import path: exit 2
    rows, left_out = [], []
    for name, info in infos.items():
        in_shape = shape or info.default_in_shape
        classes = args.classes or info.default_num_classes
        try:
            model = nets.build(name, classes, in_shape)
            nets.probe(name, model, classes, in_shape)
        except nets.ModelError as exc:
            left_out.append((name, str(exc).removeprefix(f"{name}: ")))
            continue
        rows.append(
            (
                name,
                info.family,
                "x".join(map(str, in_shape)),
                classes,
                nets.count_params(model),
                nets.count_macs(model, in_shape),
            )
        )
    what = "x".join(map(str, shape)) if shape else "its default input"
    if args.classes:
        what += f", {args.classes} classes"
    if not rows:
        reasons = "; ".join(f"{n}: {r}" for n, r in left_out)
        raise UserError(f"no model accepts {what} ({reasons[:300]})")
    header = ("model", "family", "input", "classes", "params", "MACs")
    cells = [header] + [(n, f, s, str(c), f"{p:,}", f"{m / 1e6:,.1f}M") for n, f, s, c, p, m in rows]
    print_table(cells, right_from=3)
    if left_out:
        print(f"\nleft out ({len(left_out)}), cannot take {what}:")
        width = max(len(n) for n, _ in left_out)
        for name, reason in left_out:
            print(f"  {name.ljust(width)}  {reason[:160]}")
    return 0


def print_table(cells: list[tuple[str, ...]], right_from: int) -> None:
    """Columns padded to their widest cell; columns from `right_from` on are right-aligned (numbers)."""
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for i, row in enumerate(cells):
        print(
            "  ".join(
                v.ljust(w) if j < right_from else v.rjust(w)
                for j, (v, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _datasets() -> int:
    import torchvision

    import seedvar.data as data

    rows = data.available_datasets()
    builtin = [(r.name, r.about, r.options) for r in rows if r.kind == "built in"]
    print_table([("dataset", "what", "options (defaults)"), *builtin], right_from=99)
    vision = [(r.name, r.about, r.options) for r in rows if r.kind == "torchvision"]
    print(
        f"\ntorchvision {torchvision.__version__}: every image-classification class of torchvision.datasets"
    )
    print_table([("dataset", "train / test", "its own options (defaults)"), *vision], right_from=99)
    print(
        "\nimage_folder and every torchvision dataset also take train_size and test_size (stratified subsamples "
        "drawn with the split seed), augment (crop + flip), resize = [H, W] and mode ('L' or 'RGB'). Their files "
        "live under --data-root/<name in lower case>; missing ones are downloaded only with --download."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
