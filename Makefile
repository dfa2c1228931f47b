# Two commands do all set-up: `make reproduce` (paper reproduction, quick profile) and `make test`.
# Both create/update the virtual environment .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
CORES ?= 2
EXTRAS ?= test,digits,jets,slurm

.PHONY: reproduce test test-all bench compare venv clean-results

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --disable-pip-version-check -q -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed-$(EXTRAS)

reproduce: venv
	$(BIN)/snakemake --cores $(CORES) --configfile benchmarks/profiles/$(PROFILE).yaml --rerun-incomplete
	$(BIN)/snakemake --cores $(CORES) --configfile benchmarks/profiles/$(PROFILE).yaml --report results/report.html
	@echo "Tables: results/tables/ (csv, md, tex, html)  Figures: results/figures/ (png, pdf)  Report: results/report.html"

# runs the profile first when results/ lacks it (a no-op when it is up to date), then compares exactly
compare: reproduce
	$(BIN)/liegan compare --reference results/reference/$(PROFILE) --results results

test: venv
	$(BIN)/python -m pytest -q -m "not slow and not slurm"

test-all: venv
	$(BIN)/python -m pytest -q -m "not slurm"

bench: venv
	$(BIN)/python benchmarks/perf/run.py

clean-results:
	rm -rf results/data results/downstream_data results/runs results/tables results/figures results/logs results/benchmarks results/config results/perf/jobs.csv results/perf/jobs.md results/report.html
