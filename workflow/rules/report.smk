# Tables and figures from every finished run, and what the HTML report shows
# (`snakemake --report results/report.html`): the table views and PNG figures, each with a caption
# from workflow/report/, figures in one category per task.
from liegan_core.report.aggregate import figures_for, other_outputs, table_views
from liegan_core.report.paper import PAPER_NUMBERS

AGGREGATED = {task: list(cfg["methods"]) for task, cfg in TASKS.items()}
FIGURE_KINDS = {
    "similarity": "algebra similarity",
    "generators": "learned generators",
    "training": "training curves",
    "resources": "run time and memory",
}


def result_runs() -> list[str]:
    """metrics.json of every run whose rows enter the tables: the discovery runs, and the downstream
    runs of the rule files that define downstream_runs() / jets_downstream_runs(), when included."""
    runs = discovery_runs()
    for name in ("downstream_runs", "jets_downstream_runs"):
        if name in globals():
            runs += globals()[name]()
    return runs


rule aggregate:
    input:
        runs=lambda w: result_runs(),
        data=expand(f"{RESULTS}/data/{{task}}.npz", task=list(TASKS)),
        paper=str(PAPER_NUMBERS),
    output:
        tables=[
            report(path, caption=f"../report/{stem}.rst", category="All tasks", labels={"table": stem})
            for stem, path in table_views(RESULTS).items()
        ],
        figures=[
            report(
                fig.png,
                caption=f"../report/{fig.kind}.rst",
                category=fig.task,
                subcategory=FIGURE_KINDS[fig.kind],
                labels={"figure": FIGURE_KINDS[fig.kind], "method": fig.method or "all methods"},
            )
            for fig in figures_for(RESULTS, AGGREGATED)
        ],
        other=other_outputs(RESULTS, AGGREGATED),
    log:
        f"{RESULTS}/logs/aggregate.log",
    threads: min(2, workflow.cores)  # figures drawn in 2 processes (nothing else runs by then; 2 fits any SLURM node)
    shell:
        "{LIEGAN:q} aggregate --runs {RESULTS}/runs --out {RESULTS} --data-dir {RESULTS}/data "
        "--jobs {threads} 2> {log:q}"
