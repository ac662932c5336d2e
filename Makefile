# Entry points: `make demo`, `make app` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build by default. A GPU user installs their CUDA torch into .venv first; this step
# then keeps it (pip sees torch already satisfied).
TORCH ?= torch==2.13.0
DEMO_MODEL ?= ast
DEMO_EPOCHS ?= 30

.PHONY: install install-dev demo app test test-fast bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(PY) train.py --model $(DEMO_MODEL) --epochs $(DEMO_EPOCHS) --demo --output_dir runs/$(DEMO_MODEL)-demo --overwrite_output_dir
	$(PY) evaluate.py --model_dir runs/$(DEMO_MODEL)-demo

# The web demo of the demo run (python app.py --model_dir RUN for another one).
app: install
	$(PY) app.py

test: install-dev
	$(PY) -m pytest -q -n 2 tests

# The inner loop: every test but the `slow` ones (child processes, kill tests, the browser, trainings, corpora).
test-fast: install-dev
	$(PY) -m pytest -q -n 2 -m "not slow" tests

bench: install
	$(PY) bench/preprocess.py

clean:
	rm -rf $(VENV) runs data/demo data/cache
