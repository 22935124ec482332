# Two entry points for a fresh clone: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this machine's disk; a plain `torch` may pull a CUDA build.
TORCH_PIN := torch==2.13.0
SHARED_DATA ?= ../shared/data

.PHONY: venv demo test test-slow lint bench clean

$(BIN)/geochange: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/geochange

demo: venv
	$(BIN)/geochange example -o build/example --overwrite
	$(BIN)/geochange simulate build/example/region.tif \
		--events building_add:count=40,deforestation:fraction=0.3,road_add:count=2,flood \
		--seed 1 -o build/demo --overwrite
	@echo "Results in build/demo: open build/demo/t2_landcover.tif and changes.gpkg in QGIS."

test: venv
	GEOCHANGE_SHARED_DATA=$(SHARED_DATA) $(BIN)/pytest -q

test-slow: venv
	GEOCHANGE_SHARED_DATA=$(SHARED_DATA) $(BIN)/pytest -q -m slow

lint: venv
	$(BIN)/ruff check geochange tests benchmarks
	$(BIN)/ruff format --check geochange tests benchmarks

bench: venv
	$(BIN)/python benchmarks/simulate.py

clean:
	rm -rf $(VENV) build
