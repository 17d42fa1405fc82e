# Two entry points for a newcomer: `make demo` (the main job) and `make test` (the suite).
# Both create .venv and install what they need. torch is pinned to the CPU build first so that
# pip never pulls a multi-GB CUDA wheel on a CPU machine; GPU users install `.[gpu]` themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The real openpi-client (pins numpy<2) lives in its own venv; the serving tests run it as a subprocess.
CLIENT_VENV := .venv-client
CLIENT_STAMP := $(CLIENT_VENV)/.installed

.PHONY: venv demo test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev,sim]'
	$(PY) -m pip install --no-deps robosuite==1.5.2  # see the sim extra in pyproject.toml
	touch $(STAMP)

$(CLIENT_STAMP):
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/pip install openpi-client==0.1.2 typing_extensions
	touch $(CLIENT_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	MUJOCO_GL=egl WANDB_MODE=offline $(PY) scripts/demo.py

test: $(STAMP) $(CLIENT_STAMP)
	$(PY) -m ruff check src scripts tests benchmarks examples
	MUJOCO_GL=egl WANDB_MODE=offline $(PY) -m pytest -n 2 tests
