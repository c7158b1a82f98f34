# VAE Loss Lab. `make help` lists the targets; `make lab` and `make test` are all a student needs.
# Everything runs inside $(VENV) (created on first use); nothing is installed or registered globally.

VENV ?= .venv
PYTHON ?= python3
PY = $(VENV)/bin/python
STAMP = $(VENV)/.vae-loss-lab-requirements
NBMAKE_TIMEOUT ?= 900
NOTEBOOKS = $(sort $(wildcard notebooks/*.ipynb))

.DEFAULT_GOAL := help
.PHONY: help venv lab app test course strip clean-cache

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  (VENV=$(VENV); pass VENV=/path to use another environment)"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed, found " + sys.version.split()[0] + "; run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever requirements.txt is newer than the stamp left by the last install.
$(STAMP): requirements.txt | $(PY)
	@echo "installing requirements.txt into $(VENV) (the first time takes a few minutes)"
	$(PY) -m pip install --disable-pip-version-check --progress-bar off --quiet -r requirements.txt
	@touch $@

venv: $(STAMP) ## create the venv if missing, install requirements.txt, install vaeutils and coursekit from this folder (editable)
	@(cd / && $(abspath $(PY)) -c 'import os, sys, vaeutils, coursekit; sys.exit(os.path.realpath(vaeutils.__file__) != sys.argv[1] \
	    or os.path.realpath(coursekit.__file__) != sys.argv[2])' "$(realpath vaeutils/__init__.py)" "$(realpath coursekit/__init__.py)" 2>/dev/null) \
	  || $(PY) -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation --editable .

lab: venv ## start JupyterLab on notebooks/ (extra options: LAB_ARGS="--port 9999 --no-browser")
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

PORT ?= 8866
app: venv ## the β explorer dashboard (Voila) at http://127.0.0.1:8866/ (PORT=...); trains the β-sweep first if needed
	$(PY) -m coursekit app --port $(PORT)

# Every notebook runs twice: once through nbmake from the model cache as it is (empty in a fresh clone, so it
# trains every model), then once more into build/executed for the site, whose build the tests then check with the
# decks and the guides (the second run loads every model from the cache). The Chinese units (notebooks/zh/) run
# once, in full mode, into build/executed/zh for the site's Chinese edition, loading the models the English units
# trained; a failing cell fails the run as under nbmake. `zh check` first fails the run when an English text
# changed without its translation (i18n/README.md). Notebooks run one at a time, here and in the tests: with
# kernels running beside other kernels, three hung in two rehearsals (ipykernel 7.4.0: the kernel idle, the client
# waiting for its reply, at a widget cell of units 01 and 02), and two at a time saved nothing without a thread
# limit per kernel.
test: venv ## ruff, the Chinese edition current, every English notebook through nbmake (full mode; SMOKE=1 for a quick run), the site in both languages, then the tests
	$(VENV)/bin/ruff check .
	$(PY) -m coursekit zh check
	$(VENV)/bin/pytest --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) --durations=0 notebooks --ignore=notebooks/zh
	@test -d node_modules/mathjax -a -d node_modules/reveal.js || npm ci --no-audit --no-fund
	$(PY) -m coursekit course
	$(VENV)/bin/pytest tests --durations=15

# MathJax 3 for the site's maths comes from the npm registry, pinned in package-lock.json
course: venv ## the course site in build/site/ (Jupyter Book): runs what is stale into build/executed, then builds
	@test -d node_modules/mathjax || npm ci --no-audit --no-fund
	$(PY) -m coursekit course

# LANG=zh on the command line picks the Chinese edition (notebooks/zh/); the LANG of your locale does not.
ZH := $(if $(and $(filter command line,$(origin LANG)),$(filter zh zh_% zh-%,$(LANG))),zh)
EDITION_NOTEBOOKS = notebooks$(if $(ZH),/zh)
EDITION_SUFFIX = $(if $(ZH),-zh)

.PHONY: student slides
student: venv ## the folder to hand out: student copies, what they link to, a README (build/student/ and build/student.zip; LANG=zh: the Chinese edition, build/student-zh/)
	$(PY) -m coursekit student $(EDITION_NOTEBOOKS) build/student$(EDITION_SUFFIX)

# reveal.js and MathJax 3 come from the npm registry, pinned in package-lock.json; the decks are made from
# the executed units in build/executed (python -m coursekit execute, run here for the units that are stale)
slides: venv ## a lecture deck (reveal.js) and its PDF per unit in build/slides/, offline (LANG=zh: the Chinese decks, build/slides-zh/)
	@test -d node_modules/reveal.js -a -d node_modules/mathjax || npm ci --no-audit --no-fund
	$(PY) -m coursekit slides $(EDITION_NOTEBOOKS) build/slides$(EDITION_SUFFIX)$(if $(ZH), --executed build/executed/zh)

# The Chinese edition (i18n/README.md): refresh the catalogs from the English, then build notebooks/zh/ from them.
# The build stops with a list while a text is untranslated or fuzzy; ZH_ARGS=--allow-missing builds a draft.
.PHONY: zh
zh: venv ## the Chinese units in notebooks/zh/ from the catalogs in i18n/zh/ (ZH_ARGS=--allow-missing: a draft)
	$(PY) -m coursekit zh update
	$(PY) -m coursekit zh build $(ZH_ARGS)

# The class server (docs/classroom.md). `make models` runs every unit notebook and the app's sweep in full mode
# with VAELAB_DATA=$(MODELS_DIR): the notebooks are the list of models, so nothing here names them.
.PHONY: models hub
MODELS_DIR ?= data
models: venv ## train every model of the course once into $(MODELS_DIR)/cache, to share read-only (MODELS_DIR=...)
	$(PY) -m coursekit models --data-dir $(MODELS_DIR)

HUB_PORT ?= 8000
hub: venv ## a trial JupyterHub at http://127.0.0.1:8000/ (as root; students log in with local accounts)
	@test -x node_modules/.bin/configurable-http-proxy || npm ci --no-audit --no-fund
	$(PY) -m coursekit hub --port $(HUB_PORT) --models $(MODELS_DIR)

strip: venv ## clear outputs and execution counts of the notebooks (do it before committing)
	$(PY) -m coursekit strip $(NOTEBOOKS)

clean-cache: venv ## delete the trained checkpoints in data/cache
	@if $(PY) -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("vaeutils.cache") is None)'; \
	  then $(PY) -m vaeutils.cache; else echo "nothing to clear: this checkout has no vaeutils.cache"; fi
