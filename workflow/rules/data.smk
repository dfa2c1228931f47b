rule task_config:
    # The resolved config each step reads; later steps take it as ancient() input, so only the
    # parameters they actually use (their params) decide whether they re-run.
    output:
        f"{RESULTS}/config/{{task}}.json",
    params:
        cfg=lambda w: task_config(w.task),
    run:
        from liegan_core.io import write_text

        write_text(output[0], params.cfg + "\n")


rule generate:
    input:
        cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
    output:
        data=f"{RESULTS}/data/{{task}}.npz",
        sidecar=f"{RESULTS}/data/{{task}}.json",
    params:
        data=lambda w: data_params(w.task),
    log:
        f"{RESULTS}/logs/generate/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{task}}.tsv"
    threads: 1
    shell:
        "{LIEGAN:q} generate --config {input.cfg:q} --out {output.data:q} 2> {log:q}"
