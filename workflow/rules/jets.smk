# Top-tagging downstream: LieGNN (true / wrong / discovered metric) and the particle-flow baseline,
# then the jets table and ROC figure. Needs common.smk (TASKS, SEEDS, RESULTS, LIEGAN, THREADS).
import shlex

JETS_TASK = "top_tagging"
JETS_FIXED_SYMMETRIES = ("none", "true", "wrong")


def jets_downstream_runs() -> list[str]:
    """metrics.json of every configured run: downstream.symmetries per model x SEEDS.

    A discovery-method symmetry is kept only when the profile runs that method on the task (its
    generators.npz is what the run needs).
    """
    if JETS_TASK not in TASKS:
        return []
    cfg = TASKS[JETS_TASK]
    section = cfg.get("downstream") or {}
    return [
        f"{RESULTS}/runs/{JETS_TASK}/downstream/{model}/{symmetry}/seed{seed}/metrics.json"
        for model in section.get("models", [])
        for symmetry in (section.get("symmetries") or {}).get(model, [])
        if symmetry in JETS_FIXED_SYMMETRIES or symmetry in cfg["methods"]
        for seed in SEEDS
    ]


def jets_downstream_targets() -> list[str]:
    """The runs plus the jets table and ROC figure; empty unless top_tagging is one of the profile's tasks."""
    runs = jets_downstream_runs()
    if not runs:
        return []
    return [
        *runs,
        f"{RESULTS}/tables/jets.csv",
        f"{RESULTS}/tables/jets.md",
        f"{RESULTS}/figures/roc_{JETS_TASK}.png",
        f"{RESULTS}/figures/roc_{JETS_TASK}.pdf",
    ]


def jets_downstream_inputs(wildcards) -> dict[str, object]:
    """Config and dataset; for a discovery-method symmetry also that method's generators (same seed)."""
    inputs = {
        "cfg": ancient(f"{RESULTS}/config/{JETS_TASK}.json"),
        "data": f"{RESULTS}/data/{JETS_TASK}.npz",
    }
    if wildcards.symmetry not in JETS_FIXED_SYMMETRIES:
        inputs["generators"] = (
            f"{RESULTS}/runs/{JETS_TASK}/discover/{wildcards.symmetry}/seed{wildcards.seed}/generators.npz"
        )
    return inputs


def jets_downstream_params() -> str:
    """The resolved downstream section and device: a change re-runs only the downstream jobs."""
    return json.dumps(
        {"downstream": TASKS[JETS_TASK].get("downstream"), "profile": RUN_SETTINGS}, sort_keys=True
    )


rule downstream_jets:
    input:
        unpack(jets_downstream_inputs),
    output:
        metrics=f"{RESULTS}/runs/{JETS_TASK}/downstream/{{model}}/{{symmetry}}/seed{{seed}}/metrics.json",
        roc=f"{RESULTS}/runs/{JETS_TASK}/downstream/{{model}}/{{symmetry}}/seed{{seed}}/roc.npz",
        log_csv=f"{RESULTS}/runs/{JETS_TASK}/downstream/{{model}}/{{symmetry}}/seed{{seed}}/log.csv",
    params:
        settings=lambda w: jets_downstream_params(),
        generators=lambda w, input: (
            f"--generators {shlex.quote(input.generators)}" if "generators" in input.keys() else ""
        ),
        outdir=lambda w, output: os.path.dirname(output.metrics),
    log:
        f"{RESULTS}/logs/downstream/{JETS_TASK}/{{model}}/{{symmetry}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/downstream/{JETS_TASK}/{{model}}/{{symmetry}}/seed{{seed}}.tsv"
    wildcard_constraints:
        model="liegnn|baseline",
        seed=r"\d+",
    priority: lambda w: task_priority(JETS_TASK)
    threads: THREADS
    shell:
        "{LIEGAN:q} downstream-jets --config {input.cfg:q} --model {wildcards.model} "
        "--symmetry {wildcards.symmetry} --seed {wildcards.seed} --data {input.data:q} {params.generators} "
        "--out {params.outdir:q} --threads {threads} --no-progress 2> {log:q}"


rule downstream_jets_report:
    input:
        runs=jets_downstream_runs(),
    output:
        csv=f"{RESULTS}/tables/jets.csv",
        tidy=f"{RESULTS}/tables/jets_tidy.csv",
        md=f"{RESULTS}/tables/jets.md",
        tex=f"{RESULTS}/tables/jets.tex",
        html=f"{RESULTS}/tables/jets.html",
        png=f"{RESULTS}/figures/roc_{JETS_TASK}.png",
        pdf=f"{RESULTS}/figures/roc_{JETS_TASK}.pdf",
    log:
        f"{RESULTS}/logs/downstream_jets_report.log",
    shell:
        "{LIEGAN:q} downstream-jets-report --runs {RESULTS}/runs --out {RESULTS} 2> {log:q}"
