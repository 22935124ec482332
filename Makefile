# Two entry points for a fresh clone: `make demo` and `make test`. Each creates .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this machine's disk; a plain `torch` may pull a CUDA build.
TORCH_PIN := torch==2.13.0
SHARED_DATA ?= ../shared/data

.PHONY: venv demo test test-qgis test-slow lint bench quality qgis-plugin clean

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
	$(MAKE) test-qgis

# The plugin's tests run in QGIS 3.22 from Debian (bound to /usr/bin/python3), headless, through
# the real CLI in .venv; .ci/run installs QGIS first.
QGIS_BIN := .venv-qgis/bin
test-qgis: venv
	@if ! /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then \
		echo "QGIS plugin tests skipped: QGIS is not installed" \
			"(apt-get install python3-qgis qgis-providers xvfb xauth)"; \
	else \
		test -x $(QGIS_BIN)/pytest || (/usr/bin/python3 -m venv --system-site-packages .venv-qgis \
			&& $(QGIS_BIN)/pip install --quiet 'pytest>=7' 'pytest-qgis>=2' 'numpy<2'); \
		QT_QPA_PLATFORM=offscreen GEOCHANGE_SHARED_DATA=$(SHARED_DATA) \
			GEOCHANGE_EXECUTABLE=$(BIN)/geochange $(QGIS_BIN)/pytest -q qgis_plugin/tests; \
	fi

# The installable plugin: build/geochange_qgis-0.1.0.zip
qgis-plugin:
	python3 qgis_plugin/build_zip.py

test-slow: venv
	GEOCHANGE_SHARED_DATA=$(SHARED_DATA) $(BIN)/pytest -q -m slow

lint: venv
	$(BIN)/ruff check geochange tests benchmarks qgis_plugin
	$(BIN)/ruff format --check geochange tests benchmarks qgis_plugin

# simulate.py already gives simulate's peak RSS at 4096² and 16384²; memory.py adds synth's,
# stopping at 8192² (10 min on 2 cores): its default sizes, up to 32768², take hours for synth
# (docs/benchmarks.md).
bench: venv
	$(BIN)/python benchmarks/simulate.py
	$(BIN)/python benchmarks/memory.py --commands synth --sizes 4096 8192

# The quality report of the shipped model (trains its segmenter first: ~15 min on 2 CPU cores).
quality: venv
	$(BIN)/geochange evaluate default $(SHARED_DATA)/openearthmap $(SHARED_DATA)/dubai \
		--device cpu -o build/quality --overwrite

clean:
	rm -rf $(VENV) .venv-qgis .qgis-settings build
