# Downstream trajectory prediction (liegan_core/downstream.py): one job per task x model x symmetry
# source x seed, then tables and figures. Only tasks whose `downstream.models` maps models to settings
# take part (top tagging lists its models: jets.smk). Learned symmetry sources are the discovery
# methods the task runs (and `downstream.learned_from` names). Needs common.smk.
import shlex

from liegan_core.downstream import FIXED_SOURCES, MODELS, conditions, downstream_data_config, is_regression_task

DOWNSTREAM_TASKS = [task for task, cfg in TASKS.items() if is_regression_task(cfg)]


def downstream_runs() -> list[str]:
    """metrics.json of every downstream run the profile asks for."""
    return [
        f"{RESULTS}/runs/{task}/downstream/{model}/{symmetry}/seed{seed}/metrics.json"
        for task in DOWNSTREAM_TASKS
        for model, symmetry in conditions(TASKS[task])
        for seed in SEEDS
    ]


def downstream_targets() -> list[str]:
    """The downstream tables and figures (none when no task has a downstream section)."""
    if not DOWNSTREAM_TASKS:
        return []
    return [
        f"{RESULTS}/tables/downstream.csv",
        f"{RESULTS}/tables/downstream.md",
        *[f"{RESULTS}/figures/{kind}_{task}.png" for task in DOWNSTREAM_TASKS for kind in ("downstream", "sample_efficiency")],
    ]


def downstream_learned_inputs(wildcards) -> list[str]:
    """The discovery run (same task and seed) a learned symmetry source comes from; none for none/true/wrong."""
    if wildcards.symmetry in FIXED_SOURCES:
        return []
    run = f"{RESULTS}/runs/{wildcards.task}/discover/{wildcards.symmetry}/seed{wildcards.seed}"
    return [f"{run}/generators.npz", f"{run}/metrics.json"]


def downstream_params(task: str) -> str:
    """What a downstream run depends on besides its inputs: a change re-runs only this task's jobs."""
    return json.dumps({"downstream": TASKS[task]["downstream"], "device": config.get("device", "cpu")}, sort_keys=True)


rule downstream_data_config:
    # The task config with `downstream.data` merged into `data`: what `liegan generate` reads.
    output:
        f"{RESULTS}/downstream_data/{{task}}.config.json",
    params:
        cfg=lambda w: json.dumps({**downstream_data_config(TASKS[w.task]), "_profile": RUN_SETTINGS}, sort_keys=True, indent=1),
    wildcard_constraints:
        task=r"[a-z][a-z0-9_]*",
    run:
        from liegan_core.io import write_text

        write_text(output[0], params.cfg + "\n")


rule downstream_data:
    input:
        cfg=ancient(f"{RESULTS}/downstream_data/{{task}}.config.json"),
    output:
        data=f"{RESULTS}/downstream_data/{{task}}.npz",
        sidecar=f"{RESULTS}/downstream_data/{{task}}.json",
    params:
        data=lambda w: json.dumps(downstream_data_config(TASKS[w.task])["data"], sort_keys=True),
    log:
        f"{RESULTS}/logs/downstream_data/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/downstream_data/{{task}}.tsv"
    wildcard_constraints:
        task=r"[a-z][a-z0-9_]*",
    threads: 1
    shell:
        "{LIEGAN:q} generate --config {input.cfg:q} --out {output.data:q} 2> {log:q}"


rule downstream:
    input:
        cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
        data=f"{RESULTS}/downstream_data/{{task}}.npz",
        learned=downstream_learned_inputs,
    output:
        metrics=f"{RESULTS}/runs/{{task}}/downstream/{{model}}/{{symmetry}}/seed{{seed}}/metrics.json",
        log_csv=f"{RESULTS}/runs/{{task}}/downstream/{{model}}/{{symmetry}}/seed{{seed}}/log.csv",
    params:
        settings=lambda w: downstream_params(w.task),
        outdir=lambda w, output: os.path.dirname(output.metrics),
        generators=lambda w, input: f"--generators {shlex.quote(input.learned[0])}" if input.learned else "",
    log:
        f"{RESULTS}/logs/downstream/{{task}}/{{model}}/{{symmetry}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/downstream/{{task}}/{{model}}/{{symmetry}}/seed{{seed}}.tsv"
    wildcard_constraints:
        task=r"[a-z][a-z0-9_]*",
        model="|".join(MODELS),
        symmetry=r"[a-z][a-z0-9_]*",
        seed=r"\d+",
    priority: lambda w: task_priority(w.task)
    threads: THREADS
    shell:
        "{LIEGAN:q} downstream --config {input.cfg:q} --model {wildcards.model} --symmetry {wildcards.symmetry} "
        "--seed {wildcards.seed} --data {input.data:q} {params.generators} --out {params.outdir:q} "
        "--threads {threads} --no-progress 2> {log:q}"


rule downstream_report:
    input:
        runs=downstream_runs(),
    output:
        csv=f"{RESULTS}/tables/downstream.csv",
        md=f"{RESULTS}/tables/downstream.md",
        summary=f"{RESULTS}/tables/downstream_summary.csv",
        figures=[
            f"{RESULTS}/figures/{kind}_{task}.{ext}"
            for task in DOWNSTREAM_TASKS
            for kind in ("downstream", "sample_efficiency")
            for ext in ("png", "pdf")
        ],
    log:
        f"{RESULTS}/logs/downstream_report.log",
    shell:
        "{LIEGAN:q} downstream-report --runs {RESULTS}/runs --out {RESULTS} 2> {log:q}"
