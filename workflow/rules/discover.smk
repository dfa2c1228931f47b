# One job per task x method x seed; with `ensemble: true` in the profile, one job per task and
# method training every seed (`liegan discover --seeds`), writing the same per-seed run folders.
ENSEMBLED = ensemble_methods()


rule discover:
    input:
        cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
        data=f"{RESULTS}/data/{{task}}.npz",
    output:
        generators=f"{RESULTS}/runs/{{task}}/discover/{{method}}/seed{{seed}}/generators.npz",
        metrics=f"{RESULTS}/runs/{{task}}/discover/{{method}}/seed{{seed}}/metrics.json",
        log_csv=f"{RESULTS}/runs/{{task}}/discover/{{method}}/seed{{seed}}/log.csv",
    params:
        cfg=lambda w: method_params(w.task, w.method),
        outdir=lambda w, output: os.path.dirname(output.metrics),
    log:
        f"{RESULTS}/logs/discover/{{task}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/discover/{{task}}/{{method}}/seed{{seed}}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    priority: lambda w: task_priority(w.task)
    threads: THREADS
    shell:
        "{LIEGAN:q} discover --config {input.cfg:q} --method {wildcards.method} --seed {wildcards.seed} "
        "--data {input.data:q} --out {params.outdir:q} --threads {threads} --no-progress 2> {log:q}"


if ENSEMBLED:

    ruleorder: discover_ensemble > discover

    rule discover_ensemble:
        input:
            cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
            data=f"{RESULTS}/data/{{task}}.npz",
        output:
            generators=expand(RESULTS + "/runs/{{task}}/discover/{{method}}/seed{seed}/generators.npz", seed=SEEDS),
            metrics=expand(RESULTS + "/runs/{{task}}/discover/{{method}}/seed{seed}/metrics.json", seed=SEEDS),
            log_csv=expand(RESULTS + "/runs/{{task}}/discover/{{method}}/seed{seed}/log.csv", seed=SEEDS),
        params:
            cfg=lambda w: method_params(w.task, w.method),
            seeds=",".join(map(str, SEEDS)),
            outdir=f"{RESULTS}/runs/{{task}}/discover/{{method}}",
        log:
            f"{RESULTS}/logs/discover/{{task}}/{{method}}/ensemble.log",
        benchmark:
            f"{RESULTS}/benchmarks/discover/{{task}}/{{method}}/ensemble.tsv"
        wildcard_constraints:
            method="|".join(ENSEMBLED),
        priority: lambda w: task_priority(w.task)
        threads: THREADS
        shell:
            "{LIEGAN:q} discover --config {input.cfg:q} --method {wildcards.method} --seeds {params.seeds} "
            "--data {input.data:q} --out {params.outdir:q} --threads {threads} --no-progress 2> {log:q}"
