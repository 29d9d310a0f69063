# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py notebooks/quickstart.ipynb --out build

test: $(STAMP)
	$(PY) -m pytest -q

BENCH := .venv-bench
$(BENCH)/.installed: pyproject.toml requirements-dev.txt benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install -q -r requirements-dev.txt -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH)/.installed
	mkdir -p build
	$(BENCH)/bin/python benchmarks/overhead.py --memory | tee build/bench.md

clean:
	rm -rf $(VENV) $(BENCH) build
