rule aggregate:
    input:
        runs=discovery_runs(),
        data=expand(f"{RESULTS}/data/{{task}}.npz", task=list(TASKS)),
    output:
        csv=f"{RESULTS}/tables/discovery.csv",
        md=f"{RESULTS}/tables/discovery.md",
        summary=f"{RESULTS}/tables/discovery_summary.csv",
        figures=[f"{RESULTS}/figures/similarity_{task}.png" for task in TASKS],
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "{LIEGAN:q} aggregate --runs {RESULTS}/runs --out {RESULTS} --data-dir {RESULTS}/data 2> {log:q}"
