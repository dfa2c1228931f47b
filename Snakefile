# LieGAN benchmark suite: generate -> discover (task x method x seed) -> aggregate.
# Default profile: benchmarks/profiles/quick.yaml; another: --configfile benchmarks/profiles/paper.yaml
from snakemake.utils import validate

if not workflow.overwrite_configfiles:
    # only without --configfile: Snakemake would otherwise merge the two profiles key by key

    configfile: "benchmarks/profiles/quick.yaml"


validate(config, "liegan_core/schemas/profile.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/discover.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/jets.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/perf.smk"


rule all:
    input:
        all_targets(),
