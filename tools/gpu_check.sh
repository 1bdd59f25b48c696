#!/usr/bin/env bash
# Every GPU check of edgefas in one go, on a machine with an NVIDIA GPU (a Jetson, a workstation).
#
#   tools/gpu_check.sh [PYTHON]        (default: .venv/bin/python if present, else python3)
#
# Checks, each skipped with its reason when what it needs is absent (nothing is installed):
#   1. PyTorch CUDA forward of the `edge` preset vs the same weights on CPU (max |Δscore|);
#   2. ONNX Runtime with the CUDA and TensorRT execution providers: which provider actually ran;
#   3. TensorRT (if `import tensorrt` works): fp16 engine build + manifest + TensorRT runner vs ORT CPU;
#   4. bundled cuda: each bundled checkpoint (engines/models/*.pt) on the faces of out/calib-dev.npz (random
#      inputs when it is absent): fp32 CUDA vs fp32 CPU (max |Δscore| with TF32 off; with torch's TF32
#      defaults as information), and fp16 CUDA vs fp32 CPU (median and max |Δscore|, decisions flipped at the
#      checkpoint's threshold; FAIL beyond the accuracy gate's median or agreement: a proxy for a TensorRT
#      FP16 engine);
#   5. cuda train: 5 steps of the `edge` preset through train.trainer.Trainer on CUDA on the faces of
#      out/calib-dev.npz (finite losses, weights moved, steps/s), and 3 steps on the CPU for the ratio;
#   6. cuda latency: batch 1 and 8 forward of the bundled edge-synthetic model on CUDA, fp32 and fp16.
# Prints one table (and each row on stderr as soon as it is known). Hard limit 230 s; a section that would
# start after 180 s is skipped (the checks take well under a minute on an Orin Nano).
# EDGEFAS_GPU_CHECK_DEVICE=cpu runs sections 4-6 on the CPU with fewer faces and repeats: a dry run of
# their code on a machine without a GPU (its rows say so; its timings mean nothing).
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
PYTHONUNBUFFERED=1 timeout 230 "$PY" - "$WORK" <<'PYEOF'
import copy, math, os, sys, time, traceback
from pathlib import Path

import numpy as np

work = Path(sys.argv[1])
rows = []
STARTED = time.perf_counter()
SECTION_BUDGET_S = 180  # a section that would start later is skipped: the shell kills everything at 230 s


def row(check, status, detail):
    rows.append((check, status, detail))
    print(f"  {check}: {status} {detail}", file=sys.stderr)


def section(name, fn):
    start = time.perf_counter()
    if start - STARTED > SECTION_BUDGET_S:
        row(name, "SKIP", f"time budget spent ({start - STARTED:.0f} s > {SECTION_BUDGET_S} s before it began)")
        return
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


# -- sections 4-6: the bundled checkpoints, training and latency on CUDA ---------------------------------
MODELS = Path("engines/models")
BUNDLED = ("edge-synthetic", "edge-wide-synthetic")
CALIB_SET = Path("out/calib-dev.npz")  # ignored by git: on a borrowed machine only if it was carried there
DRY_RUN = os.environ.get("EDGEFAS_GPU_CHECK_DEVICE", "") == "cpu"
SCORE_BATCH = 64


def cuda_or_skip(check):
    """The device sections 4-6 run on ("cuda", or "cpu" in a dry run), or None after a SKIP row."""
    try:
        import torch
    except ImportError:
        row(check, "SKIP", "torch not installed (edgefas[train])")
        return None
    if DRY_RUN:
        return "cpu"
    if not torch.cuda.is_available():
        row(check, "SKIP", f"torch {torch.__version__}: torch.cuda.is_available() is False")
        return None
    return "cuda"


def where():
    """What a row's numbers were measured on, at the head of its detail."""
    import torch

    return "DRY RUN on cpu" if DRY_RUN else torch.cuda.get_device_name(0)


def sync(device):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def calibration_faces(input_size, contract):
    """(rgb, depth, set, note): float32 model inputs from CALIB_SET through CalibrationSet.batches (the INT8
    gate's path), or random inputs and set None when it is absent."""
    from calibration.calibset import load_calibration_set

    if not CALIB_SET.is_file():
        n = 16 if DRY_RUN else 64
        rgb = rng.random((n, 3, input_size, input_size), dtype=np.float32)
        depth = rng.random((n, 1, input_size, input_size), dtype=np.float32)
        return rgb, depth, None, f"{n} random inputs ({CALIB_SET} absent: carry it for real faces)"
    calib = load_calibration_set(CALIB_SET)
    if calib.input_size != input_size:
        raise ValueError(f"{CALIB_SET} holds {calib.input_size} px faces, the model takes {input_size} px")
    limit = 64 if DRY_RUN else None
    parts = list(calib.batches(SCORE_BATCH, limit))
    rgb, depth = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    note = f"{len(rgb)} faces of {CALIB_SET}"
    try:
        calib.check_contract(contract, input_size, "checkpoint")
    except Exception as exc:  # the faces still compare devices; say that decisions are off-contract
        note += f" (made under another preprocessing contract: {str(exc).splitlines()[0][:80]})"
    return rgb, depth, calib, note


def scores(model, rgb, depth, device, half=False):
    """Scores [N] float64 of ``model`` (already on ``device``) in batches of SCORE_BATCH."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(rgb), SCORE_BATCH):
            r = torch.from_numpy(rgb[start:start + SCORE_BATCH]).to(device)
            d = torch.from_numpy(depth[start:start + SCORE_BATCH]).to(device)
            if half:
                r, d = r.half(), d.half()
            out.append(model(r, d).score.float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def bundled_check():
    device = cuda_or_skip("bundled cuda")
    if device is None:
        return
    import torch

    from engines.accuracy_gate import GateTolerance
    from engines.outputs import classify_attack
    from train.checkpoint import load_checkpoint

    gate = GateTolerance()  # the INT8 / engine accuracy gate's product defaults
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    for name in BUNDLED:
        path = MODELS / f"{name}.pt"
        if not path.is_file():
            others = ", ".join(p.name for p in sorted(MODELS.glob(f"{name}.*"))) or "nothing"
            row(f"bundled {name}", "SKIP", f"{path} not in this checkout (bundled: {others})")
            continue
        model, info = load_checkpoint(path)
        rgb, depth, calib, note = calibration_faces(info.model_config.input_size_px, info.preprocess)
        cpu = scores(model, rgb, depth, "cpu")
        on_device = copy.deepcopy(model).to(device)
        default = float(np.abs(scores(on_device, rgb, depth, device) - cpu).max())  # torch's TF32 defaults
        try:  # strict fp32: TF32 off in convolutions and matmuls
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            strict = float(np.abs(scores(on_device, rgb, depth, device) - cpu).max())
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        row(f"bundled {name} fp32", "PASS" if strict <= 1e-3 else "FAIL",
            f"{where()}: max |Δscore| fp32 vs CPU {strict:.2e} with TF32 off (tolerance 1e-3), {default:.2e} "
            f"with torch's defaults (TF32 conv {'on' if tf32[0] else 'off'}, matmul {'on' if tf32[1] else 'off'}); "
            f"over {note}")
        fp16 = scores(on_device.half(), rgb, depth, device, half=True)
        del on_device
        delta = np.abs(fp16 - cpu)
        median, worst = float(np.median(delta)), float(delta.max())
        detail = (f"model.half() vs CPU fp32: median |Δscore| {median:.2e}, max {worst:.2e} "
                  f"(gate: median {gate.median_abs_score}; its max {gate.max_abs_score} not applied here)")
        threshold = info.threshold
        status = "INFO"
        if not np.isfinite(fp16).all():
            status, detail = "FAIL", detail + "; non-finite fp16 scores"
        if math.isfinite(threshold):
            flips = int((classify_attack(cpu, threshold) != classify_attack(fp16, threshold)).sum())
            agreement = 1.0 - flips / len(cpu)
            detail += (f"; {flips} of {len(cpu)} decisions flip at the stored threshold {threshold:.4f} "
                       f"(agreement {agreement:.4f}, gate {gate.min_agreement})")
        else:
            agreement = 1.0
            detail += "; the checkpoint stores no threshold: flips not counted"
        if calib is None:
            detail += "; random inputs: not gated"
        elif median > gate.median_abs_score or agreement < gate.min_agreement:
            status = "FAIL"
        row(f"bundled {name} fp16", status,
            f"{where()}: {detail}; over {note}; a proxy for a TensorRT FP16 engine")


def sample_set_from_calibration(calib):
    """A SampleSet of the calibration set's faces, stored as build_sample_set stores crops (uint8 colour,
    depth * DEPTH_SCALE as uint16), so that SampleSet.arrays gives back the set's float inputs."""
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    n = calib.count
    rgb = np.rint(calib.rgb.astype(np.float32) * 255.0).astype(np.uint8)
    depth = np.rint(calib.depth.astype(np.float32) * DEPTH_SCALE).astype(np.uint16)
    return SampleSet(rgb, depth, calib.is_attack.astype(np.int8), calib.pai, np.full(n, "calib"), np.full(n, ""),
                     {"source": str(CALIB_SET)})


def train_steps(samples, model_config, train_config, initial, device, steps):
    """``steps`` steps of train.trainer.Trainer from the weights ``initial``, fed as train.run.run_training
    feeds it; returns (trainer, step results, wall seconds between consecutive steps incl. batch making)."""
    from train.model.network import build_model
    from train.run import AUGMENTS, balanced_batches
    from train.trainer import Trainer, seed_everything

    seed_everything(train_config.seed)
    model = build_model(model_config)
    model.load_state_dict(initial)
    trainer = Trainer(model, model_config, train_config, None, device=device)
    augment = AUGMENTS[train_config.augment]
    batches = balanced_batches(samples, train_config.batch_size, train_config.seed, **augment.batch_shares())
    results, stamps = [], [time.perf_counter()]

    def on_step(result):
        sync(device)
        results.append(result)
        stamps.append(time.perf_counter())

    trainer.fit(batches, steps=steps, on_step=on_step)
    return trainer, results, np.diff(stamps)


def train_check():
    device = cuda_or_skip("cuda train")
    if device is None:
        return
    if not CALIB_SET.is_file():
        row("cuda train", "SKIP", f"{CALIB_SET} absent (the faces it trains on; carry it to the machine)")
        return
    import dataclasses

    from calibration.calibset import load_calibration_set
    from train.model.network import build_model
    from train.model.objective import TrainConfig
    from train.model.presets import get_preset
    from train.run import DEFAULT_BATCH
    from train.trainer import seed_everything

    calib = load_calibration_set(CALIB_SET)
    model_config = get_preset("edge")
    if calib.input_size != model_config.input_size_px or calib.is_attack is None:
        row("cuda train", "SKIP", f"{CALIB_SET}: {calib.input_size} px faces, labels "
            f"{'absent' if calib.is_attack is None else 'present'}; the edge preset needs "
            f"{model_config.input_size_px} px labelled faces")
        return
    samples = sample_set_from_calibration(calib)
    steps = 5
    train_config = dataclasses.replace(TrainConfig(), batch_size=DEFAULT_BATCH, steps=steps, seed=0,
                                       modalities=("rgb", "depth"), augment="standard", species_mix="even")
    seed_everything(0)
    initial = {k: v.detach().clone() for k, v in build_model(model_config).state_dict().items()}
    trainer, results, wall = train_steps(samples, model_config, train_config, initial, device, steps)
    skipped = {"blind"} if train_config.colour_blind_weight <= 0 else set()  # NaN by design when a term is off
    bad = [f"step {r.step} {k}={v}" for r in results for k, v in r.losses.as_row().items()
           if not math.isfinite(v) and k not in skipped
           and not (k == "discriminator" and r.step % train_config.discriminator_every)]
    moved = max(float((p.detach().cpu() - initial[k]).abs().max()) for k, p in trainer.model.named_parameters())
    step_s = float(np.median([r.seconds for r in results[1:]]))
    wall_s = float(np.median(wall[1:]))
    ok = len(results) == steps and not bad and moved > 0
    row("cuda train", "PASS" if ok else "FAIL",
        f"{where()}: {len(results)} edge steps, batch {train_config.batch_size}, {len(samples)} faces of "
        f"{CALIB_SET}; {1 / step_s:.1f} steps/s (median trainer step after the first, {step_s * 1000:.0f} ms; "
        f"{1 / wall_s:.1f} steps/s with batch making); first step {results[0].seconds:.1f} s; "
        f"max |Δweight| {moved:.2e}; final generator loss {results[-1].losses.generator:.3f}"
        + (f"; non-finite: {', '.join(bad[:3])}" if bad else ""))
    del trainer
    cpu_steps = 3
    _, cpu_results, _ = train_steps(samples, model_config, dataclasses.replace(train_config, steps=cpu_steps),
                                    initial, "cpu", cpu_steps)
    cpu_s = float(np.median([r.seconds for r in cpu_results[1:]]))
    import torch

    row("cpu train", "INFO", f"{cpu_steps} steps on {torch.get_num_threads()} CPU threads: {cpu_s * 1000:.0f} ms "
        f"per step (median after the first), {cpu_s / step_s:.1f}x the {device} step")


def latency_check():
    device = cuda_or_skip("cuda latency")
    if device is None:
        return
    import torch

    from train.checkpoint import load_checkpoint

    name = BUNDLED[0]
    model, info = load_checkpoint(MODELS / f"{name}.pt")
    model = model.to(device)
    side = info.model_config.input_size_px
    warm, runs = (1, 3) if DRY_RUN else (10, 50)
    parts = []
    for precision in ("fp32", "fp16"):
        if precision == "fp16":
            model = model.half()
        for batch in (1, 8):
            dtype = torch.float16 if precision == "fp16" else torch.float32
            rgb = torch.rand(batch, 3, side, side, device=device).to(dtype)
            depth = torch.rand(batch, 1, side, side, device=device).to(dtype)
            times = []
            with torch.inference_mode():
                for i in range(warm + runs):
                    sync(device)
                    start = time.perf_counter()
                    model(rgb, depth)
                    sync(device)
                    if i >= warm:
                        times.append(time.perf_counter() - start)
            parts.append(f"{precision} b{batch} {np.median(times) * 1000:.2f} ms")
    row("cuda latency", "INFO", f"{where()}: {name}.pt forward, inputs on the device, median of {runs} "
        f"after {warm} warm-ups: {', '.join(parts)}")


for name, fn in (("torch cuda", torch_check), ("onnx export", export_check), ("ort providers", ort_check),
                 ("tensorrt", trt_check), ("bundled cuda", bundled_check), ("cuda train", train_check),
                 ("cuda latency", latency_check)):
    section(name, fn)

width = max(len(r[0]) for r in rows)
print(f"{'check'.ljust(width)}  status  detail")
for check, status, detail in rows:
    print(f"{check.ljust(width)}  {status.ljust(6)}  {detail}")
sys.exit(1 if any(r[1] == "FAIL" for r in rows) else 0)
PYEOF
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "gpu_check: the Python part ran past 230 s and was killed; the rows it had are on stderr above"
fi
exit "$rc"
