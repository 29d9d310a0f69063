# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the JupyterLab sidebar: built by pip's build hook at install, rebuilt here when its sources change
LABEXT := nbdebug/labextension/package.json
LABEXT_SRC := $(wildcard labextension/src/*.ts labextension/style/*) \
	labextension/package.json labextension/package-lock.json labextension/tsconfig.json

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(VENV)/bin/jupyter-builder develop --overwrite . >/dev/null
	touch $(STAMP)

$(LABEXT): $(LABEXT_SRC) | $(STAMP)
	cd labextension && (test -d node_modules || npm ci --no-audit --no-fund) && \
		PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run build
	touch $(LABEXT)

install: $(STAMP) $(LABEXT)

demo: $(STAMP)
	$(PY) scripts/demo.py notebooks/quickstart.ipynb --out build

test: $(STAMP) $(LABEXT)
	bash scripts/ensure-chromium.sh
	$(PY) -m mypy
	$(PY) -m pytest -q

BENCH := .venv-bench
$(BENCH)/.installed: pyproject.toml requirements-dev.txt benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install -q -r requirements-dev.txt -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH)/.installed
	mkdir -p build
	$(BENCH)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BENCH)/bin/python benchmarks/overhead.py --memory --short | tee build/bench.md
	$(BENCH)/bin/python benchmarks/notebook.py | tee -a build/bench.md

clean:
	rm -rf $(VENV) $(BENCH) build nbdebug/labextension labextension/lib labextension/node_modules
