# Config resolution and input functions; rule files stay declarative.
import json
import os
import shutil
import sys

from liegan_core.config import resolve_task

RESULTS = config.get("results_dir", "results")


wildcard_constraints:
    task=r"[a-z][a-z0-9_]*",
    method=r"[A-Za-z0-9_]+",
    seed=r"\d+",


CONFIG_SOURCE = ", ".join(map(str, workflow.overwrite_configfiles)) or "benchmarks/profiles/quick.yaml"
TASKS = {task: resolve_task(config, task, CONFIG_SOURCE) for task in config["tasks"]}
RUN_SETTINGS = {k: config.get(k) for k in ("device", "checkpoint_every", "profile")}
SEEDS = config["seeds"]
THREADS = int(config.get("threads", 2))
# `ensemble: true`: one job per task and method trains all seeds (`liegan discover --seeds`): as one
# batched ensemble where the method has one (LieGAN: bit-identical to one job per seed on CPU),
# else seed after seed; either way one process start per task and method instead of per seed.
ENSEMBLE = bool(config.get("ensemble", False)) and len(SEEDS) > 1


def task_priority(task: str) -> int:
    """The profile's `priorities` entry for a task (default 0): long chains start first."""
    return int((config.get("priorities") or {}).get(task, 0))


def ensemble_methods() -> list[str]:
    """Methods whose seeds run as one job: every method of any task under `ensemble: true`."""
    return sorted({m for cfg in TASKS.values() for m in cfg["methods"]}) if ENSEMBLE else []


def _liegan() -> str:
    """The `liegan` console script: beside this Python (a .venv run) or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "liegan")
    return here if os.path.exists(here) else (shutil.which("liegan") or "liegan")


LIEGAN = _liegan()


def task_config(task: str) -> str:
    """The task's resolved config (benchmark YAML + profile overrides + run settings) as JSON."""
    return json.dumps({**TASKS[task], "_profile": RUN_SETTINGS}, sort_keys=True, indent=1)


def data_params(task: str) -> str:
    """The resolved data section: a params value, so a change regenerates only this task's data."""
    return json.dumps(TASKS[task]["data"], sort_keys=True)


def data_chunks(task: str) -> list[str]:
    """Chunk files for tasks generated in chunks (`data.chunks` in the task YAML), else none."""
    from liegan_core.data import chunked_module

    data = TASKS[task]["data"]
    if chunked_module(data["generator"]) is None:
        return []
    return [f"{RESULTS}/data/chunks/{task}/chunk{i}.npz" for i in range(int(data.get("chunks", 1)))]


def method_params(task: str, method: str) -> str:
    cfg = TASKS[task]
    return json.dumps(
        {"method": cfg["methods"][method], "search_space": cfg["search_space"], "device": config.get("device", "cpu")},
        sort_keys=True,
    )


def discovery_runs() -> list[str]:
    return [
        f"{RESULTS}/runs/{task}/discover/{method}/seed{seed}/metrics.json"
        for task, cfg in TASKS.items()
        for method in cfg["methods"]
        for seed in SEEDS
    ]


def all_targets() -> list[str]:
    """Every aggregate output (tables, figures), so a new output re-runs the aggregation."""
    from liegan_core.report.aggregate import figures_for, other_outputs, table_views

    tasks = {t: list(c["methods"]) for t, c in TASKS.items()}
    return [
        *table_views(RESULTS).values(),
        *(f.png for f in figures_for(RESULTS, tasks)),
        *other_outputs(RESULTS, tasks),
        *downstream_targets(),
        *jets_downstream_targets(),
        f"{RESULTS}/perf/jobs.csv",
    ]
