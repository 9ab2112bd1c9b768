# Math Foundations for Machine Learning: course commands (see README.md).
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
# The Python the virtualenv is made from: one every user can run (the course hub's users run the course from
# it), Debian's when it is there and world-executable; changing it rebuilds the virtualenv.
VENV_PYTHON ?= $(shell p=/usr/bin/python3.11; [ -n "$$(find -L $$p -maxdepth 0 -perm -o=x 2>/dev/null)" ] && echo $$p || command -v python3)
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml requirements.lock; echo $(VENV_PYTHON)) | sha1sum | cut -c1-12)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
ASSIGNMENTS := $(notdir $(wildcard source/ps*))
SUBMITTED = $(sort $(notdir $(wildcard submitted/*/ps*)))

.PHONY: sysdeps venv pretrain release autograde feedback export report demo test validate-grader check bench clean hub hub-proxy hub-clean

## sysdeps: system packages: bubblewrap (the sandbox student code runs in), chromium (browser tests)
SYSTEM_PACKAGES := bubblewrap chromium chromium-driver
sysdeps:
	@command -v bwrap >/dev/null && command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq && apt-get install -y -qq $(SYSTEM_PACKAGES)) >/dev/null; \
	  else echo "WARNING: install $(SYSTEM_PACKAGES): without bwrap grading falls back to rlimits only (see README)"; fi; }

## venv: (re)create the virtualenv with exactly the pinned dependencies (no-op when up to date)
venv: sysdeps $(STAMP)
$(STAMP):
	@$(VENV_PYTHON) -c 'import ensurepip' 2>/dev/null || [ "$$(id -u)" != 0 ] || (apt-get update -qq && apt-get install -y -qq python3-venv) >/dev/null
	@rm -rf $(VENV) && $(VENV_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## pretrain: remake ps8's data and pretrained encoder from the course's own text (about 7 minutes; both are shipped)
pretrain: venv
	$(PYTHON) -m mfml_grader pretrain

## release: generate release/ (student notebooks) from source/ for every assignment
release: venv
	$(PYTHON) -m mfml_grader release

## autograde: grade every notebook in submitted/<student>/<assignment>/ (JOBS parallel graders, default: all cores;
## as Dask tasks on a LocalCluster; CLUSTER=slurm|tcp://host:port elsewhere, CLUSTER=processes without Dask: docs/scaling.md)
JOBS ?= $(shell nproc)
CLUSTER ?=
autograde: venv
	$(PYTHON) -m mfml_grader autograde --jobs $(JOBS) $(if $(CLUSTER),--cluster $(CLUSTER)) $(SUBMITTED)

## feedback: HTML feedback for every autograded submission, in feedback/
feedback: venv
	@for a in $(SUBMITTED); do nbgrader generate_feedback $$a --force --log-level=WARN || exit 1; done

## export: grades for other systems: exports/grades.csv (nbgrader), exports/gradescope/, exports/canvas.csv
export: venv
	@mkdir -p exports
	nbgrader export --CsvExportPlugin.to=exports/grades.csv --log-level=WARN
	$(PYTHON) -m mfml_grader export-lms

## report: item analysis of the graded batch, with plots, in reports/index.html
report: venv
	$(PYTHON) -m mfml_grader report

## demo: release, three demo students (perfect, typical mistakes, untouched), grade, feedback, report, table
demo: release
	$(PYTHON) -m mfml_grader demo-submissions
	$(MAKE) --no-print-directory autograde export feedback report
	$(PYTHON) -m mfml_grader table
	@echo; echo "Feedback: feedback/<student>/<assignment>/*.html   Grades: exports/   Report: reports/index.html"

## test: the linter, then the project's own tests (release in sync, grader scores, mistakes named)
test: venv
	$(VENV)/bin/ruff check .
	$(PYTHON) -m pytest

## validate-grader: grade every catalogued mistake, correct variant and forbidden use; print the table (A=ps1_linear_algebra: one assignment)
validate-grader: venv
	$(PYTHON) -m mfml_grader validate $(A) --jobs $(JOBS)

## check: the author's loop, in this process: make check A=ps1_linear_algebra [F=l2_norm]
check: venv
	$(PYTHON) -m mfml_grader check $(A) $(F)

## bench: stock nbgrader (kernel per notebook) vs the sandboxed batch grader on the same submissions,
## then continuous grading's submit-to-feedback time for bursts of submissions (median, 95th percentile)
bench: venv release
	$(PYTHON) bench/bench_autograde.py --jobs $(JOBS)
	$(PYTHON) bench/bench_feedback.py --jobs $(JOBS)

## clean: remove everything grading generated (submissions, autograded, feedback, gradebook, exports)
clean:
	rm -rf submitted feedback exports reports logs gradebook.db .pytest_cache
	find autograded -mindepth 1 -not -name .gitkeep -delete

## hub: a local course hub on loopback, as root: JupyterHub with an instructor (formgrader) and 3 students as unix
## users (logins printed), nbgrader's exchange, the assignments released; Ctrl-C stops it (README: Course hub)
HUB_STATE ?= /srv/mfml-hub
HUB_PREFIX ?= mfml-
HUB_PORT ?=
hub: venv hub-proxy
	$(PYTHON) -m mfml_grader hub --state $(HUB_STATE) --prefix $(HUB_PREFIX) $(if $(HUB_PORT),--port $(HUB_PORT)) $(HUB_ARGS)

## hub-proxy: configurable-http-proxy for the hub, pinned (hub/package-lock.json), in hub/node_modules (npm ci when out of date)
hub-proxy: hub/node_modules/.installed
hub/node_modules/.installed: hub/package.json hub/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq --no-install-recommends npm) >/dev/null; } \
	  || { echo "npm is missing: install Debian's npm"; exit 1; }
	cd hub && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## hub-clean: remove what make hub created: its users (those it recorded, with its prefix), their homes, HUB_STATE
hub-clean: venv
	$(PYTHON) -m mfml_grader hub-clean --state $(HUB_STATE)
