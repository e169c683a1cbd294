# Two commands for a fresh Debian/Ubuntu machine with Python 3.11 (see README):
#   make app    set up .venv from the pins and start distpose-app (ARGS="--source demo" etc.)
#   make test   set up .venv (+ test tools, + Xvfb and GL packages when run as root) and run
#               lint, the import contract and the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
PY_SOURCES := distpose_app tests scripts main.py setup.py

# Debian packages: Qt's xcb platform and OpenGL (app), plus Xvfb for headless GUI tests.
APT_RUNTIME := libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
  libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libx11-xcb1 libfontconfig1 libdbus-1-3 \
  libglib2.0-0
APT_TEST := xvfb xauth $(APT_RUNTIME)

.PHONY: app test lint unit system-deps-runtime system-deps-test clean weights

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Empty by default: torch comes from the package registry like everything else (CI reaches the
# registries only). On a Linux machine whose registry torch is the CUDA build (several GB),
# `make TORCH_INDEX=https://download.pytorch.org/whl/cpu app` takes the CPU wheel (~200 MB).
TORCH_INDEX ?=

$(VENV)/.app-installed: $(BIN)/python requirements.txt setup.cfg setup.py pyproject.toml
	$(if $(TORCH_INDEX),$(BIN)/pip install -q --index-url $(TORCH_INDEX) $$(grep '^torch==' requirements.txt))
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.app-installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# Installs Debian packages only when run as root and they are missing; otherwise says what to do.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing Debian packages (run as root or: sudo apt-get install $$missing)"; \
	  fi; \
	fi
endef

system-deps-runtime:
	$(call apt_install,$(APT_RUNTIME))

system-deps-test:
	$(call apt_install,$(APT_TEST))

app: system-deps-runtime $(VENV)/.app-installed
	$(BIN)/distpose-app $(ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/lint-imports
	$(BIN)/mypy

unit: $(VENV)/.test-installed
	$(BIN)/pytest -q

test: system-deps-test lint unit

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache .mypy_cache *.egg-info build dist

# Reproduce the shipped weights (pretrained/MODEL_CARD.md): needs ../shared/data (the Bandai-Namco
# archive and Human3.6M's training subjects). baseline and augmented are independent; each run
# resumes from runs/<mode>/last.pt if interrupted.
TRAIN := $(BIN)/distpose train --batch 256 --chunk 8
CALIBRATE := $(BIN)/distpose adapt-calibrate --threads 1
pretrained/baseline.pt: | $(VENV)/.app-installed
	$(TRAIN) baseline --threads 1 --steps 1500 --out runs/baseline --export $@
	$(CALIBRATE) $@
# augmented trains in eight stages (a session's budget each): 5,000 steps from scratch, 9,000
# more with the learning rate restarted at 5e-4 and decayed to 2e-5, 8,000 steps of 1,024
# single-output windows (strided, 4x the windows a second) from 4e-4 to 1e-5, then widened from
# 256 to 512 channels (the first 1,000 steps of a 5,000-step decay from 3e-4 to 1e-5), 4,000
# steps from 2.5e-4 to 1e-5, 4,000 from 2e-4 to 1e-5 with Bandai's walks, runs and dashes
# drawn 0.3 times as often within their source (their stance knee is bent), and 4,000 from
# 1.5e-4 to 1e-5 with a quarter of the windows from Bandai and half from Human3.6M's cameras,
# and 1,500 more of that with S1's real detection residuals on a quarter of the windows (one
# batch worker: its random stream differs from the in-process one).
TRAIN1 := $(BIN)/distpose train augmented --batch 1024 --chunk 1 --threads 2
pretrained/augmented.pt: | $(VENV)/.app-installed
	$(TRAIN) augmented --threads 2 --steps 5000 --out runs/augmented --export runs/augmented-1.pt
	$(TRAIN) augmented --threads 2 --steps 9000 --lr 5e-4 --lr-final 2e-5 \
	    --init runs/augmented-1.pt --out runs/augmented-2 --export runs/augmented-2.pt
	$(TRAIN1) --steps 8000 --lr 4e-4 --lr-final 1e-5 --init runs/augmented-2.pt \
	    --out runs/augmented-3 --export runs/augmented-3.pt
	$(TRAIN1) --steps 1000 --lr 3e-4 --lr-final 1.5203e-4 --init runs/augmented-3.pt \
	    --widen 512 --out runs/augmented-4 --export runs/augmented-4.pt
	$(TRAIN1) --steps 4000 --lr 2.5e-4 --lr-final 1e-5 --init runs/augmented-4.pt \
	    --out runs/augmented-5 --export runs/augmented-5.pt
	$(TRAIN1) --steps 4000 --lr 2e-4 --lr-final 1e-5 --init runs/augmented-5.pt \
	    --content-weight '_(walk|run|dash)=0.3' --out runs/augmented-6 --export runs/augmented-6.pt
	$(TRAIN1) --steps 4000 --lr 1.5e-4 --lr-final 1e-5 --init runs/augmented-6.pt \
	    --content-weight '_(walk|run|dash)=0.3' \
	    --source-weights bandai=0.25,h36m-cameras=0.5,h36m-virtual=0.25 \
	    --out runs/augmented-7 --export runs/augmented-7.pt
	$(TRAIN1) --workers 1 --steps 1500 --lr 1.5e-4 --lr-final 1e-5 --init runs/augmented-7.pt \
	    --content-weight '_(walk|run|dash)=0.3' \
	    --source-weights bandai=0.25,h36m-cameras=0.5,h36m-virtual=0.25 \
	    --noise-residuals 0.25 --noise-residual-subjects S1 --out runs/augmented-8 --export $@
	$(CALIBRATE) $@
pretrained/meta.pt: pretrained/augmented.pt
	$(BIN)/distpose train meta --threads 2 --init pretrained/augmented.pt --steps 1000 --lr 1e-4 \
	    --source-weights bandai=0.65,h36m-cameras=0.2,h36m-virtual=0.15 \
	    --noise-residuals 0.25 --noise-residual-subjects S1 --out runs/meta --export $@
	$(CALIBRATE) $@
H36M_EVAL := .cache/eval
pretrained/evaluation.json: pretrained/baseline.pt pretrained/augmented.pt pretrained/meta.pt
	mkdir -p $(H36M_EVAL)
	$(BIN)/distpose data h36m-external --subjects S8 --input gt --out $(H36M_EVAL)/s8_gt.npz
	$(BIN)/distpose data h36m-external --subjects S8 --input gt --noise sh \
	    --out $(H36M_EVAL)/s8_shnoise.npz
	$(BIN)/distpose evaluate --threads 2 --data $(H36M_EVAL)/s8_gt.npz --group-by action \
	    --models augmented meta --json pretrained/evaluation-h36m-s8.json
	$(BIN)/distpose evaluate --threads 2 --data $(H36M_EVAL)/s8_shnoise.npz --input-2d detections \
	    --group-by action --models meta --json pretrained/evaluation-h36m-s8-shnoise.json
	$(BIN)/distpose evaluate --threads 2 --adapt lens --adapt-models augmented meta --json $@
	$(BIN)/distpose evaluate --threads 2 --poses --models meta --json pretrained/evaluation-poses.json
	$(BIN)/distpose evaluate --threads 2 --lenses out --noise-px 2 --adapt lens --adapt-models meta \
	    --methods meta meta+truelens --json pretrained/evaluation-out.json
weights: pretrained/evaluation.json
