# Every target creates .venv on first use and installs the package (editable, with extras) once;
# the stamp file makes a second run skip the install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[test,bench,mri-raw]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m demos --quick

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests

bench: $(STAMP)
	$(PY) benchmarks/ct_operators.py
	$(PY) benchmarks/tv_reconstruction.py
	$(PY) benchmarks/graph_laplacian.py
	$(PY) benchmarks/mimo_operator.py
	$(PY) benchmarks/mri.py
	$(PY) benchmarks/dynamic_ct.py
	$(PY) benchmarks/batch.py

clean-venv:
	rm -rf $(VENV)
