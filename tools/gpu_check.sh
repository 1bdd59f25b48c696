#!/usr/bin/env bash
# Every GPU check of edgefas in one go, on a machine with an NVIDIA GPU (a Jetson, a workstation).
#
#   tools/gpu_check.sh [PYTHON]        (default: .venv/bin/python if present, else python3)
#
# Checks, each skipped with its reason when what it needs is absent (nothing is installed):
#   1. PyTorch CUDA forward of the `edge` preset vs the same weights on CPU (max |Δscore|);
#   2. ONNX Runtime with the CUDA and TensorRT execution providers: which provider actually ran;
#   3. TensorRT (if `import tensorrt` works): fp16 engine build + manifest + TensorRT runner vs ORT CPU.
# Prints one table. Hard limit 280 s (the checks take well under a minute on an Orin Nano).
set -u
cd "$(dirname "$0")/.."
PY="${1:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WORK="$(mktemp -d -t edgefas-gpu-check-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
else
  echo "gpu: nvidia-smi not found (a Jetson has none: tegrastats instead)"
fi
PYTHONUNBUFFERED=1 timeout 280 "$PY" - "$WORK" <<'PYEOF'
import sys, time, traceback
from pathlib import Path

import numpy as np

work = Path(sys.argv[1])
rows = []


def row(check, status, detail):
    rows.append((check, status, detail))


def section(name, fn):
    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # a diagnostic script: report every failure as a row and go on
        row(name, "FAIL", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        traceback.print_exc(file=sys.stderr)
    print(f"[{name}] {time.perf_counter() - start:.1f} s", file=sys.stderr)


rng = np.random.default_rng(0)
state = {}


def torch_check():
    try:
        import torch
    except ImportError:
        row("torch cuda", "SKIP", "torch not installed (edgefas[train])")
        return
    from train.model.network import build_model
    from train.model.presets import get_preset

    config = get_preset("edge")
    torch.manual_seed(0)
    model = build_model(config).eval()
    side = config.input_size_px
    rgb = rng.random((4, 3, side, side), dtype=np.float32)
    depth = rng.random((4, 1, side, side), dtype=np.float32)
    state.update(model=model, config=config, rgb=rgb, depth=depth)
    with torch.no_grad():
        cpu = model(torch.from_numpy(rgb), torch.from_numpy(depth)).score.numpy()
    state["cpu_score"] = cpu
    if not torch.cuda.is_available():
        row("torch cuda", "SKIP", f"torch {torch.__version__}: torch.cuda.is_available() is False")
        return
    gpu_model = model.to("cuda")
    with torch.no_grad():
        gpu = gpu_model(torch.from_numpy(rgb).cuda(), torch.from_numpy(depth).cuda()).score.cpu().numpy()
    model.to("cpu")
    diff = float(np.abs(gpu - cpu).max())
    row("torch cuda", "PASS" if diff <= 1e-3 else "FAIL",
        f"{torch.cuda.get_device_name(0)}: max |Δscore| GPU vs CPU {diff:.2e} (tolerance 1e-3, TF32 allowed)")


def export_check():
    if "model" not in state:
        row("onnx export", "SKIP", "needs torch and the edge model (check above)")
        return
    from edge.face.preprocess import PreprocessConfig
    from engines.export import export_module
    from engines.metadata import ModelMetadata

    config = state["config"]
    meta = ModelMetadata(preprocess=PreprocessConfig(size_px=config.input_size_px).to_metadata(),
                         input_size=config.input_size_px, preset="edge", threshold=0.5)
    result = export_module(state["model"], work / "edge.onnx", meta, "score")
    state["onnx"] = result.onnx_path
    row("onnx export", "PASS", f"opset {result.opset}, parity vs PyTorch {result.parity_max_abs_score:.1e}")


def ort_check():
    import onnxruntime as ort

    from engines.runner import open_runner

    if "onnx" not in state:
        row("ort providers", "SKIP", "no ONNX model (export check skipped or failed)")
        return
    available = ort.get_available_providers()
    cpu = open_runner(state["onnx"]).run(state["rgb"], state["depth"]).score
    state["ort_cpu"] = cpu
    for short, name in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")):
        if name not in available:
            row(f"ort {short}", "SKIP", f"onnxruntime {ort.__version__} has no {name} (available: {', '.join(available)})")
            continue
        runner = open_runner(state["onnx"], providers=[short, "cpu"])
        out = runner.run(state["rgb"], state["depth"])
        diff = float(np.abs(out.score - cpu).max())
        row(f"ort {short}", "PASS" if out.provider == name and diff <= 1e-2 else "FAIL",
            f"provider used: {out.provider}; max |Δscore| vs CPU {diff:.2e}")


def trt_check():
    try:
        import tensorrt as trt
    except ImportError:
        row("tensorrt", "SKIP", "import tensorrt failed (edgefas[tensorrt], or JetPack venv with --system-site-packages)")
        return
    if "onnx" not in state:
        row("tensorrt", "SKIP", "no ONNX model (export check skipped or failed)")
        return
    from engines.runner import open_runner
    from engines.tensorrt_build import build_engine

    result = build_engine(state["onnx"], "fp16", work / "engines")
    runner = open_runner(result.engine_path)
    out = runner.run(state["rgb"], state["depth"])
    diff = float(np.abs(out.score - state["ort_cpu"]).max())
    row("tensorrt fp16", "PASS" if diff <= 1e-2 else "FAIL",
        f"TensorRT {trt.__version__} on {result.manifest.gpu_name} ({result.manifest.compute_capability}); "
        f"build {result.build_s:.1f} s; max |Δscore| vs ORT CPU {diff:.2e}")
    start = time.perf_counter()
    for _ in range(50):
        runner.run(state["rgb"][:1], state["depth"][:1])
    row("tensorrt latency", "INFO", f"batch 1: {(time.perf_counter() - start) / 50 * 1000:.2f} ms mean of 50")
    runner.close()


for name, fn in (("torch cuda", torch_check), ("onnx export", export_check), ("ort providers", ort_check),
                 ("tensorrt", trt_check)):
    section(name, fn)

width = max(len(r[0]) for r in rows)
print(f"{'check'.ljust(width)}  status  detail")
for check, status, detail in rows:
    print(f"{check.ljust(width)}  {status.ljust(6)}  {detail}")
sys.exit(1 if any(r[1] == "FAIL" for r in rows) else 0)
PYEOF
