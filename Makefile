# Two entry points for a fresh clone: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this machine's disk; a plain `torch` may pull a CUDA build.
TORCH_PIN := torch==2.13.0
SHARED_DATA ?= ../shared/data

.PHONY: venv demo test test-slow lint bench quality clean

$(BIN)/geochange: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/geochange

demo: venv
	$(BIN)/geochange example -o build/example --size 1024 --overwrite
	$(BIN)/geochange synth build/example/region.tif \
		--events building_add:count=12,deforestation:fraction=0.4,road_add:count=1 \
		--seed 1 --preview -o build/demo --overwrite
	@echo "Results in build/demo: preview.png, t1.tif, t2.tif, the land-cover maps and changes.gpkg."

test: venv
	GEOCHANGE_SHARED_DATA=$(SHARED_DATA) $(BIN)/pytest -q

test-slow: venv
	GEOCHANGE_SHARED_DATA=$(SHARED_DATA) $(BIN)/pytest -q -m slow

lint: venv
	$(BIN)/ruff check geochange tests benchmarks
	$(BIN)/ruff format --check geochange tests benchmarks

bench: venv
	$(BIN)/python benchmarks/simulate.py

# The quality report of the shipped model (trains its segmenter first: ~15 min on 2 CPU cores).
quality: venv
	$(BIN)/geochange evaluate default $(SHARED_DATA)/openearthmap $(SHARED_DATA)/dubai \
		--device cpu -o build/quality --overwrite

clean:
	rm -rf $(VENV) build
