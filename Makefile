# The two commands of the README. Each bootstraps what it needs into .venv.
#   make demo   run the example project against the local stand-in ImageKit server
#   make test   the whole tox matrix plus lint, type and docs
# And for a person: make serve runs the example site at http://127.0.0.1:8000.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOX := $(BIN)/tox

# pyenv installs Pythons that tox and uv cannot find through its shims: put each
# 3.10-3.13 install's bin/ first on PATH (older ones stay off it).
PYENV_ROOT := $(shell pyenv root 2>/dev/null)
PYENV_BINS := $(foreach v,$(shell pyenv versions --bare 2>/dev/null | grep -E '^3\.1[0-3]\.[0-9]+$$'),$(PYENV_ROOT)/versions/$(v)/bin)
empty :=
space := $(empty) $(empty)
ifneq ($(strip $(PYENV_BINS)),)
export PATH := $(subst $(space),:,$(strip $(PYENV_BINS))):$(PATH)
endif
# Never let uv fetch an interpreter: a missing one must fail.
export UV_PYTHON_DOWNLOADS := never

.PHONY: help test demo serve clean

help:
	@echo "make demo   run the example project on the local stand-in ImageKit server"
	@echo "make test   run the tox matrix (every Django with STORAGES) plus lint, type, docs"
	@echo "make serve  run the example site at http://127.0.0.1:8000 (stand-in server unless IMAGEKIT_* is set)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(TOX): $(BIN)/python requirements/tox.txt
	$(BIN)/python -m pip install --quiet -r requirements/tox.txt
	touch $(TOX)

$(BIN)/.demo-installed: $(BIN)/python pyproject.toml requirements/demo.txt
	$(BIN)/python -m pip install --quiet -r requirements/demo.txt -e .
	touch $@

test: $(TOX)
	$(TOX) run --skip-missing-interpreters false

demo: $(BIN)/.demo-installed
	$(BIN)/python example/demo.py

# On the stand-in server (no IMAGEKIT_* variables) manage.py migrates a temporary database
# itself; on a real account the example's db.sqlite3 is migrated first.
serve: $(BIN)/.demo-installed
	@if env | grep -q '^IMAGEKIT_'; then $(BIN)/python example/manage.py migrate --noinput; fi
	$(BIN)/python example/manage.py runserver 127.0.0.1:8000

clean:
	rm -rf $(VENV) .tox build dist
