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


rule generate_chunk:
    # Generators that work in chunks (jets) run one job per chunk, each with its own seed.
    input:
        cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
    output:
        f"{RESULTS}/data/chunks/{{task}}/chunk{{chunk}}.npz",
    params:
        data=lambda w: data_params(w.task),
    log:
        f"{RESULTS}/logs/generate/{{task}}_chunk{{chunk}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{task}}_chunk{{chunk}}.tsv"
    wildcard_constraints:
        chunk=r"\d+",
    priority: lambda w: task_priority(w.task)
    threads: 1
    shell:
        "{LIEGAN:q} generate --config {input.cfg:q} --chunk {wildcards.chunk} --out {output:q} 2> {log:q}"


rule generate:
    input:
        cfg=ancient(f"{RESULTS}/config/{{task}}.json"),
        chunks=lambda w: data_chunks(w.task),
    output:
        data=f"{RESULTS}/data/{{task}}.npz",
        sidecar=f"{RESULTS}/data/{{task}}.json",
    params:
        data=lambda w: data_params(w.task),
        from_chunks=lambda w, input: ("--from-chunks " + " ".join(input.chunks)) if input.chunks else "",
    log:
        f"{RESULTS}/logs/generate/{{task}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/generate/{{task}}.tsv"
    priority: lambda w: task_priority(w.task)
    threads: 1
    shell:
        "{LIEGAN:q} generate --config {input.cfg:q} {params.from_chunks} --out {output.data:q} 2> {log:q}"
