# Plain entry points; README.md's first two commands are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is pinned so pip takes the CPU build (an open range may pull a multi-GB CUDA build);
# on a Jetson install JetPack's own torch instead (README, "Jetson").
TORCH ?= torch==2.13.0

.PHONY: setup demo test clean

$(BIN)/edgefas: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,train,kiosk,realsense]"
	touch $@

setup: $(BIN)/edgefas

demo: setup
	$(BIN)/edgefas live --camera synthetic:mixed --seed 8 --headless --frames 225

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info
