# Plain entry points; README.md's first two commands are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch==2.13.0 is pinned so pip takes the CPU build (an open range may pull a multi-GB CUDA build);
# on a Jetson install JetPack's own torch instead (README, "Jetson").
TORCH ?= torch==2.13.0
# The suite runs on this many pytest-xdist worker processes (two: the CI machines have two cores; many
# tests wait on threads, sockets and child processes). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

.PHONY: setup segmenter demo test clean site-demo

$(BIN)/edgefas: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,train,kiosk,realsense]"
	touch $@

# The photo world's person segmenter: one file from the mediapipe 0.10 wheel (tools/fetch_segmenter.py);
# without it the photo-world tests skip and `photo:` sources refuse to start, with that command named.
segmenter: $(BIN)/edgefas
	$(BIN)/python tools/fetch_segmenter.py || echo "warning: segmenter not installed; photo-world tests will skip"

setup: $(BIN)/edgefas segmenter

demo: setup
	$(BIN)/edgefas live --source synthetic:mixed --seed 8 --headless --frames 225

# The site data loop on a rendered door, no camera (docs/site-loop.md): render -> collect -> dataset build ->
# train --init -> export -> calibrate threshold -> INT8 -> build-engine (or why not) -> pin -> kiosk; numbers
# in runs/site-demo/summary.json
site-demo: setup
	$(BIN)/python tools/site_demo.py

test: setup
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider -n $(TEST_WORKERS)

clean:
	rm -rf $(VENV) build *.egg-info
