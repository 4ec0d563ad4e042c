# Two commands matter: `make course` (run the whole course locally) and `make test`.
# Both set up what they need: the virtual environment, the Python packages, and the
# MariaDB / PostgreSQL / Redis server binaries the local cloud runs (apt, when root or sudo).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterLab settings for everyone using this environment: no pop-up asking about news.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json
NOTEBOOKS ?=
ARGS ?=

.PHONY: setup course test lint format bench notebooks diagrams up down status clean lab

setup: $(STAMP) engines $(LAB_SETTINGS)

$(PY):
	@scripts/bootstrap-venv.sh $(PYTHON) $(VENV)

$(STAMP): $(PY) requirements.txt pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	@touch $(STAMP)

$(LAB_SETTINGS): $(STAMP) Makefile
	@mkdir -p $(dir $@)
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}' > $@

.PHONY: engines
engines: $(STAMP)
	@$(PY) -m localcloud install-engines

# JupyterLab rooted at the repository, so that the notebooks' ../images/ diagrams load, open
# at notebook 00. Jupyter refuses to run as root (containers, CI, cloud IDEs) without --allow-root.
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb \
		$(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

# Run notebooks with papermill into build/executed/ (all by default; NOTEBOOKS="00 16" for some).
course: setup
	$(PY) -m helpers.runner $(NOTEBOOKS) $(ARGS)

# The notebook runs use a local cloud of their own (private state, free port), stopped at
# the end whatever happens, so `make test` neither uses nor disturbs a student's daemon.
# The browser test (tests/browser) opens every notebook in JupyterLab in headless Chromium as
# committed, and runs a set of them with Run All, checking the rendered page, on its own
# JupyterLab and local cloud. The set (BROWSER_RUN_ALL) keeps the browser test short:
# 00, 16, 17, 18 and 99 take about 2 minutes and show every kind of output the course has
# (course map, cost and metrics tables, charts, progress widgets, teardown); 19, 20 and 21
# take 1.5, 4 and 1.5 minutes more, and papermill and nbval below already run their cells.
# `make test BROWSER_RUN_ALL=all` runs every notebook.
BROWSER_RUN_ALL ?= 00 16 17 18 99
# The tests run in four processes (pytest-xdist), a test file each at a time, each process
# with a local cloud of its own: most tests wait on processes and timers, so two cores run
# four at once (load 1.5-2.3; 184 s, 219 s with three). Then three notebook checks run at
# the same time, each on a local cloud of its own (scripts/notebook-checks.sh; logs in
# build/test-logs/): the browser test above; nbval, which executes every notebook as
# committed and compares its checked outputs; and the runner (papermill, as `make course`),
# which runs the course under the local cloud's AWS timing profile (localcloud/timing.py:
# roles that take seconds to propagate, metrics that arrive late, stages that answer 404 at
# first), each notebook twice in a row (the first run keeps its resources, the second must
# reuse them, then tears down; any resource left fails the run), with shorter load bursts
# (--quick): the evidence that the notebooks' waits and retries hold on AWS.
# NOTEBOOKS="19 20" limits nbval and the runner to some notebooks.
test: setup lint
	$(PY) -m pytest tests --ignore=tests/browser -n 4 --dist loadfile --durations=15
	BROWSER_RUN_ALL="$(filter-out all,$(BROWSER_RUN_ALL))" scripts/notebook-checks.sh $(PY) $(NOTEBOOKS)

# Maintainers: re-execute committed notebooks in place (local backend) to refresh their
# outputs. No parameters are injected and no timings or progress-bar widget states recorded,
# so diffs stay readable.
notebooks: setup
	cd notebooks && ../$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=900 \
		--ExecutePreprocessor.store_widget_state=False \
		$(if $(NOTEBOOKS),$(NOTEBOOKS:%=%_*.ipynb),[0-9][0-9]_*.ipynb)

# Architecture diagrams are drawn from code (images/draw.py).
diagrams: $(STAMP)
	$(PY) images/draw.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) -m benchmarks $(ARGS)

up: setup
	$(PY) -m localcloud up

down:
	@test -x $(PY) && $(PY) -m localcloud down || true

status:
	$(PY) -m localcloud status

clean: down
	rm -rf build .localcloud
