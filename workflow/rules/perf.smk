# Performance: where a pipeline run's time went (from the rules' `benchmark:` files), and the
# machine benchmark (benchmarks/perf/run.py). Neither is part of `all`:
#   snakemake --cores 2 perf_jobs      after a run: results/perf/jobs.{csv,md}
#   snakemake --cores 2 perf_bench     the benchmark, alone on the machine: results/perf/perf.*
# Uses RESULTS, discovery_runs() and THREADS from common.smk.


rule perf_jobs:
    # every discovery run first, so that each job's benchmark file exists
    input:
        runs=discovery_runs(),
    output:
        csv=f"{RESULTS}/perf/jobs.csv",
        md=f"{RESULTS}/perf/jobs.md",
    params:
        bench_dir=f"{RESULTS}/benchmarks",
    run:
        from liegan_core.report.perf import aggregate_jobs

        aggregate_jobs(params.bench_dir, os.path.dirname(output.csv))


rule perf_bench:
    # takes every core Snakemake was given, so no other job runs beside the measurements
    output:
        csv=f"{RESULTS}/perf/perf.csv",
        md=f"{RESULTS}/perf/perf.md",
        png=f"{RESULTS}/perf/perf.png",
        pdf=f"{RESULTS}/perf/perf.pdf",
        machine=f"{RESULTS}/perf/machine.json",
    params:
        out=lambda w, output: os.path.dirname(output.csv),
    log:
        f"{RESULTS}/logs/perf_bench.log",
    threads: workflow.cores
    shell:
        "{sys.executable:q} benchmarks/perf/run.py --out {params.out:q} --threads {threads} "
        "--only ceiling methods ensemble processes scaling 2> {log:q}"
