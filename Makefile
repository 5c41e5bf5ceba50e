# One-command set-up: `make demo` runs the main job, `make test` the tests; both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.maskrt-installed

.PHONY: demo test test-all typecheck lint bench clean

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,cpu,dev]'
	$(PY) -m pip install -q --no-deps tensorrt-stubs
	touch $@

demo: $(STAMP)
	$(VENV)/bin/maskrt demo

test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory typecheck

test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"

typecheck: $(STAMP)
	$(PY) -m mypy --config-file mypy-trt.ini export/tensorrt_build.py runtime/backends/tensorrt_backend.py

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache runs demo-out
