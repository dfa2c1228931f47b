# Two commands do all set-up: `make reproduce` (paper reproduction, quick profile) and `make test`.
# Both create/update the virtual environment .venv and install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
CORES ?= 2
EXTRAS ?= test,digits,jets

.PHONY: reproduce test bench compare venv clean-results

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --disable-pip-version-check -q -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed-$(EXTRAS)

reproduce: venv
	$(BIN)/snakemake --cores $(CORES) --configfile benchmarks/profiles/$(PROFILE).yaml --rerun-incomplete
	@echo "Tables:  results/tables/   Figures: results/figures/"

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python benchmarks/perf/run.py

clean-results:
	rm -rf results/data results/runs results/tables results/figures results/logs results/benchmarks results/config
