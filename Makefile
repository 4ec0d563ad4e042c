# Two commands matter: `make course` (run the whole course locally) and `make test`.
# Both set up what they need: the virtual environment, the Python packages, and the
# MariaDB / PostgreSQL / Redis server binaries the local cloud runs (apt, when root or sudo).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NOTEBOOKS ?=
ARGS ?=

.PHONY: setup course test lint format bench notebooks diagrams up down status clean

setup: $(STAMP) engines

$(PY):
	@scripts/bootstrap-venv.sh $(PYTHON) $(VENV)

$(STAMP): $(PY) requirements.txt pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	@touch $(STAMP)

.PHONY: engines
engines: $(STAMP)
	@$(PY) -m localcloud install-engines

# Run notebooks with papermill into build/executed/ (all by default; NOTEBOOKS="00 16" for some).
course: setup
	$(PY) -m helpers.runner $(NOTEBOOKS) $(ARGS)

# The notebook runs use a local cloud of their own (private state, free port), stopped at
# the end whatever happens, so `make test` neither uses nor disturbs a student's daemon.
test: setup lint
	$(PY) -m pytest tests
	@export LOCALCLOUD_STATE_DIR="$(CURDIR)/build/test-localcloud" LOCALCLOUD_PORT=0; \
	trap '$(PY) -m localcloud down' EXIT; set -ex; \
	$(PY) -m helpers.runner --output-dir build/test-executed; \
	$(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-sanitize-with tests/sanitize.cfg notebooks/

# Maintainers: re-execute committed notebooks in place (local backend) to refresh their
# outputs. No parameters are injected and no timings recorded, so diffs stay readable.
notebooks: setup
	cd notebooks && ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=900 \
		$(if $(NOTEBOOKS),$(NOTEBOOKS:%=%_*.ipynb),[0-9][0-9]_*.ipynb)

# Architecture diagrams are drawn from code (images/diagrams.py).
diagrams: $(STAMP)
	$(PY) images/diagrams.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) -m benchmarks

up: setup
	$(PY) -m localcloud up

down:
	@test -x $(PY) && $(PY) -m localcloud down || true

status:
	$(PY) -m localcloud status

clean: down
	rm -rf build .localcloud
