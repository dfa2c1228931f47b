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
    threads: THREADS
    shell:
        "{LIEGAN:q} discover --config {input.cfg:q} --method {wildcards.method} --seed {wildcards.seed} "
        "--data {input.data:q} --out {params.outdir:q} --threads {threads} --no-progress 2> {log:q}"
