"""The `liegan` command: every pipeline step, runnable by hand.

  liegan generate  --task T [--profile P] --out results/data/T.npz
  liegan discover  --task T --method M --seed K [--profile P] --data D --out DIR
  liegan aggregate --runs results/runs --out results [--profile P]
  liegan validate  [--profile P]

Errors in the user's input print one clear line (exit 2); `--debug` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import UserError


def _add_profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="quick", help="profile name (benchmarks/profiles/NAME.yaml) or path")


def _add_task(p: argparse.ArgumentParser, required: bool) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--task", help="task name: benchmarks/TASK.yaml merged with the --profile's overrides")
    group.add_argument("--config", help="a resolved task config (JSON, as the pipeline writes in results/config/)")


def _task_config(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved task config, from --config or from --task + --profile."""
    import json

    from .config import check_semantics, load_run_config, validate_schema

    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise UserError(f"{path}: config file not found")
        try:
            cfg = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON ({e})") from e
        profile = cfg.pop("_profile", {})
        cfg = validate_schema(cfg, "benchmark", str(path))
        check_semantics(cfg, str(path))
        return cfg | {"_profile": profile}
    return load_run_config(args.profile, args.task)


def _run_context(args: argparse.Namespace, cfg: dict[str, Any]) -> Any:
    """How a training step runs: --device over the profile's device, progress, checkpoint period."""
    from .methods import RunContext

    prof = cfg.get("_profile", {})
    return RunContext(
        device=args.device or prof.get("device", "cpu"),
        progress=not args.no_progress,
        checkpoint_every=int(prof.get("checkpoint_every", 10)),
    )


def cmd_generate(args: argparse.Namespace) -> None:
    from .data import chunked_module, generate

    cfg = _task_config(args)
    data_cfg = cfg["data"]
    params, seed = data_cfg.get("params") or {}, int(data_cfg.get("seed", 0))
    module = chunked_module(data_cfg["generator"])
    if (args.chunk is not None or args.from_chunks) and module is None:
        raise UserError(f"--chunk/--from-chunks: generator '{data_cfg['generator']}' does not generate in chunks")
    if args.chunk is not None:
        module.save_chunk(module.generate_chunk(params, seed, args.chunk, progress=not args.no_progress), args.out)
        print(f"wrote chunk {args.chunk} to {args.out}", file=sys.stderr)
        return
    if args.from_chunks:
        ds = module.build_dataset(args.from_chunks, params, seed)
    else:
        ds = generate(data_cfg["generator"], params, seed)
    ds.meta["task"] = cfg["task"]
    ds.save(args.out)
    print(f"wrote {args.out}: x {list(ds.x.shape)}, y {list(ds.y.shape)}, splits "
          + ", ".join(f"{k}={len(v)}" for k, v in ds.splits.items()), file=sys.stderr)


def cmd_discover(args: argparse.Namespace) -> None:
    from .data import load
    from .runner import run_discovery
    from .training import set_threads

    set_threads(args.threads)
    if args.task is None and args.config is None:
        from .user_data import discover_user_data

        if args.seeds is not None:
            raise UserError("--seeds: only with --task/--config; for your own data run one --seed per call")
        args.seed = 0 if args.seed is None else args.seed
        discover_user_data(args)
        return
    cfg = _task_config(args)
    _apply_method_flags(args, cfg)
    ds = load(args.data)
    ctx = _run_context(args, cfg)
    if args.seeds is None:
        results = [run_discovery(cfg, args.method, 0 if args.seed is None else args.seed, ds, args.out, ctx)]
        outs = [args.out]
    else:
        from .runner import run_discoveries

        if args.seed is not None:
            raise UserError("--seed and --seeds: give one of them")
        seeds = _parse_seeds(args.seeds)
        results = run_discoveries(cfg, args.method, seeds, ds, args.out, ctx)
        outs = [str(Path(args.out) / f"seed{s}") for s in seeds]
    for res, out in zip(results, outs):
        sim = next((r["value"] for r in res["rows"] if r["metric"] == "algebra_similarity"), None)
        print(f"{cfg['task']}/{args.method}/seed{res['seed']}: "
              + (f"algebra_similarity={sim:.4f} " if sim is not None else "")
              + f"in {res['run_seconds']:.1f} s -> {out}", file=sys.stderr)


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds: expected distinct non-negative integers like 0,1,2, got '{text}'")
    return seeds


OWN_DATA_FLAGS = ("spec", "x_key", "y_key", "x_cols", "y_cols", "x_rep", "x_dim", "y_rep", "y_dim",
                  "pairs_from_trajectories", "permute", "channels", "block", "compare")


def _apply_method_flags(args: argparse.Namespace, cfg: dict) -> None:
    """--epochs, --batch-size and --set change the task's method settings; own-data flags are refused.

    A flag that silently did nothing would leave a user believing a run used settings it did not.
    """
    from .methods import unknown_params
    from .user_data import parse_sets

    given = [f"--{name.replace('_', '-')}" for name in OWN_DATA_FLAGS if getattr(args, name) is not None]
    if given:
        raise UserError(f"{', '.join(given)}: only for your own data (without --task/--config); "
                        "a task's data and search space come from its YAML")
    flags = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    flags.update(parse_sets(args.set or []))
    bad = unknown_params(args.method, flags)
    if bad:
        raise UserError("; ".join(f"--set {key}: unknown hyperparameter of '{args.method}'{hint}" for key, hint in bad))
    if flags:
        cfg["methods"][args.method] = {**(cfg["methods"].get(args.method) or {}), **flags}


def cmd_aggregate(args: argparse.Namespace) -> None:
    from .report.aggregate import aggregate

    if args.jobs < 1:
        raise UserError(f"--jobs: expected a positive number of processes, got {args.jobs}")
    aggregate(Path(args.runs), Path(args.out), data_dir=Path(args.data_dir) if args.data_dir else None,
              jobs=args.jobs)


def cmd_validate(args: argparse.Namespace) -> None:
    from .config import load_profile, profile_path, resolve_task

    path = profile_path(args.profile)
    prof = load_profile(path)
    for task in prof["tasks"]:
        cfg = resolve_task(prof, task, str(path))
        print(f"{task}: ok ({', '.join(cfg['methods'])})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liegan", description="Symmetry discovery benchmark suite (LieGAN and baselines)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate a task's dataset")
    _add_task(g, required=True)
    _add_profile(g)
    g.add_argument("--out", required=True)
    g.add_argument("--chunk", type=int, help="generate only this chunk (for generators that work in chunks)")
    g.add_argument("--from-chunks", nargs="+", help="assemble the dataset from these chunk files")
    g.add_argument("--no-progress", action="store_true")
    g.set_defaults(func=cmd_generate)

    d = sub.add_parser("discover", help="run a discovery method on a task's dataset or on your own data")
    _add_task(d, required=False)
    d.add_argument("--method", default="liegan")
    d.add_argument("--seed", type=int, help="training seed (default 0)")
    d.add_argument("--seeds", metavar="I,J,...",
                   help="several seeds in this one process (a batched ensemble where the method has one); --out then holds seed<k>/")
    _add_profile(d)
    d.add_argument("--data", required=True, help="dataset .npz (from `liegan generate`) or your own .npz/.csv")
    d.add_argument("--out", required=True, help="run folder")
    d.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the profile's device")
    d.add_argument("--threads", type=int, help="torch threads for this job")
    d.add_argument("--no-progress", action="store_true")
    u = d.add_argument_group("your own data (no --task/--config; see docs/own_data.md); "
                             "--epochs, --batch-size and --set also change a task's method")
    u.add_argument("--spec", help="YAML with keys x, y, search_space, method, ... (flags override it)")
    u.add_argument("--x-key", help="npz array holding x (default x)")
    u.add_argument("--y-key", help="npz array holding y (default y)")
    u.add_argument("--x-cols", help="CSV columns of x, comma-separated, in order")
    u.add_argument("--y-cols", help="CSV columns of y, comma-separated, in order")
    u.add_argument("--x-rep", choices=["vector", "scalar"], help="how x transforms (default vector)")
    u.add_argument("--x-dim", type=int, help="vector dimension n; x's columns hold several n-vectors")
    u.add_argument("--y-rep", choices=["vector", "scalar", "label"],
                   help="how y transforms (default scalar; vector with --pairs-from-trajectories)")
    u.add_argument("--y-dim", type=int, help="vector dimension of y (default: --x-dim)")
    u.add_argument("--pairs-from-trajectories", metavar="KEY",
                   help="npz array [orbits, steps, d]: pairs x = state t, y = state t+1")
    u.add_argument("--permute", metavar="I,J,...", help="reorder the columns of x (and of a vector y)")
    u.add_argument("--channels", type=int, help="number of generators to learn")
    u.add_argument("--block", type=int, help="learn one KxK block repeated on each K-vector")
    u.add_argument("--epochs", type=int)
    u.add_argument("--batch-size", type=int)
    u.add_argument("--set", action="append", metavar="KEY=VALUE", help="method hyperparameter (repeatable)")
    u.add_argument("--compare", action="append", metavar="ALGEBRA",
                   help="so2, so3, so13, gl or a .npy/.npz of [k, n, n] (repeatable; the first goes in metrics.json)")
    d.set_defaults(func=cmd_discover)

    a = sub.add_parser("aggregate", help="tables and figures from finished runs")
    a.add_argument("--runs", default="results/runs")
    a.add_argument("--out", default="results")
    a.add_argument("--data-dir", default=None, help="folder of task datasets (for ground-truth heatmaps)")
    a.add_argument("--jobs", type=int, default=1, help="processes drawing the figures (default 1)")
    a.set_defaults(func=cmd_aggregate)

    from .downstream import add_parser as add_downstream_parser
    from .downstream_jets import add_parser as add_jets_parser
    from .report.compare import add_parser as add_compare_parser

    add_downstream_parser(sub)
    add_jets_parser(sub)
    add_compare_parser(sub)

    v = sub.add_parser("validate", help="validate a profile and every task it names")
    _add_profile(v)
    v.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"liegan: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liegan: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from .training import NumericalError

        if args.debug:
            raise
        kind = "numerical error" if isinstance(e, NumericalError) else f"unexpected {type(e).__name__}"
        print(f"liegan: {kind}: {e} (re-run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
