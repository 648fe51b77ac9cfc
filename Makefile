# The README's two commands: `make run` (the main job) and `make test` (lint, then the whole suite).
# Both create .venv and install gdlab into it when needed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gdlab run configs/q4_alpha_sweep.toml --overwrite

test: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	mkdir -p runs
	$(BIN)/gdlab bench --json runs/bench.json

clean:
	rm -rf runs .pytest_cache
