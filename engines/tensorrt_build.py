"""Building TensorRT engines from the ONNX export, with manifest and persisted timing cache (DESIGN §5).

Written against the TensorRT 10 Python API (JetPack 6 ships 10.x): explicit batch is the only mode
(``create_network(0)``), workspace is a memory-pool limit, and INT8 comes either from an explicitly
quantised Q/DQ ONNX (``edgefas calibrate int8``, the preferred route) or from the implicit entropy
calibrator over a calibration set, which TensorRT 10.1 deprecates but still runs.

``trtexec_command`` gives the equivalent ``trtexec`` line, so ``--dry-run`` works on a machine
without TensorRT and a build can be reproduced by hand on the target.
"""

from __future__ import annotations

import importlib.util
import logging
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from edge.digest import file_sha256
from edge.errors import ConfigError, EngineError, ModelError
from engines.manifest import EngineManifest, write_manifest
from engines.metadata import ModelMetadata
from engines.runner import INPUT_NAMES
from engines.tensorrt_runner import current_gpu, require_tensorrt

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MIB = 1024  # fits an 8 GB Orin Nano beside the camera pipeline; TensorRT's default is all device memory
DEFAULT_MAX_BATCH = 8  # one kiosk sees one face at a time; 8 leaves room for batched evaluation
# Fast INT8 (DP4A) arrived with compute capability 6.1 (CUDA C Programming Guide, "Arithmetic
# Instructions" throughput table); fast FP16 with 5.3 (Jetson TX1) and 6.0.
MIN_INT8_CAPABILITY = (6, 1)
MIN_FP16_CAPABILITY = (5, 3)


@dataclass(frozen=True)
class BuildRequest:
    onnx_path: Path
    precision: str
    out_dir: Path
    calib_path: Path | None = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    max_batch: int = DEFAULT_MAX_BATCH
    opt_batch: int = 1

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{self.precision}'; use one of: {', '.join(PRECISIONS)}")
        if self.workspace_mib < 16:
            raise ConfigError(f"--workspace-mib {self.workspace_mib} is too small; give at least 16 MiB")
        if not 1 <= self.opt_batch <= self.max_batch:
            raise ConfigError(f"batch sizes must satisfy 1 <= opt ({self.opt_batch}) <= max ({self.max_batch})")

    @property
    def engine_path(self) -> Path:
        return self.out_dir / f"{self.onnx_path.stem}.{self.precision}.engine"

    @property
    def timing_cache_path(self) -> Path:
        return self.out_dir / "timing.cache"

    @property
    def calibration_cache_path(self) -> Path:
        return self.out_dir / f"{self.onnx_path.stem}.int8-calibration.cache"

    def command(self) -> tuple[str, ...]:
        """The edgefas command that makes (or remakes) this engine."""
        cmd = ["edgefas", "build-engine", "--onnx", str(self.onnx_path), "--precision", self.precision,
               "--out", str(self.out_dir), "--workspace-mib", str(self.workspace_mib)]
        if self.calib_path is not None:
            cmd += ["--calib", str(self.calib_path)]
        return tuple(cmd)


def profile_shapes(input_size: int, opt_batch: int, max_batch: int) -> dict[str, dict[str, list[int]]]:
    """Optimisation-profile shapes: batch dynamic in [1, max], spatial fixed to the model's side."""
    channels = {"rgb": 3, "depth": 1}
    return {name: {"min": [1, channels[name], input_size, input_size],
                   "opt": [opt_batch, channels[name], input_size, input_size],
                   "max": [max_batch, channels[name], input_size, input_size]} for name in INPUT_NAMES}


def uses_explicit_int8(metadata: ModelMetadata) -> bool:
    return metadata.precision == "int8"


def check_int8_inputs(request: BuildRequest, metadata: ModelMetadata) -> None:
    if request.precision != "int8":
        if uses_explicit_int8(metadata):
            raise ConfigError(f"'{request.onnx_path}' is an INT8 (Q/DQ) model; build it with --precision int8")
        return
    if not uses_explicit_int8(metadata) and request.calib_path is None:
        raise ConfigError("INT8 needs calibration: pass --calib calib.npz, or first make a Q/DQ model with "
                          "edgefas calibrate int8 and build that")
    if uses_explicit_int8(metadata) and request.onnx_path.is_file() and importlib.util.find_spec("onnx"):
        # reading the graph needs the onnx package, which a Jetson may lack (read_model_metadata goes
        # through ONNX Runtime for that reason); without it TensorRT's parser refuses the zero points itself
        from engines.metadata import load_onnx
        from engines.quantize import int8_target_of

        if int8_target_of(load_onnx(request.onnx_path)) == "cpu":
            raise ConfigError(f"'{request.onnx_path}' is the CPU flavour of INT8 (activation zero points), which "
                              f"TensorRT refuses; make the symmetric one with edgefas calibrate int8 --build tensorrt, "
                              f"or build the fp32 file with --precision int8 --calib calib.npz")


def check_precision_support(precision: str, compute_capability: tuple[int, int], fast_fp16: bool,
                            fast_int8: bool, gpu_name: str) -> None:
    """Refuse a precision the GPU has no fast path for, instead of building a slow engine silently."""
    cc = f"{compute_capability[0]}.{compute_capability[1]}"
    if precision == "int8" and (compute_capability < MIN_INT8_CAPABILITY or not fast_int8):
        raise EngineError(f"'{gpu_name}' (compute capability {cc}) has no fast INT8; INT8 needs 6.1 or newer: "
                          f"build with --precision fp16 instead")
    if precision == "fp16" and (compute_capability < MIN_FP16_CAPABILITY or not fast_fp16):
        raise EngineError(f"'{gpu_name}' (compute capability {cc}) has no fast FP16: build with --precision fp32")


def trtexec_command(request: BuildRequest, input_size: int, explicit_int8: bool = False) -> list[str]:
    """The equivalent trtexec invocation (TensorRT 10 trtexec flags)."""
    shapes = profile_shapes(input_size, request.opt_batch, request.max_batch)

    def shape_arg(which: str) -> str:
        return ",".join(f"{n}:{'x'.join(str(d) for d in shapes[n][which])}" for n in INPUT_NAMES)

    cmd = ["trtexec", f"--onnx={request.onnx_path}", f"--saveEngine={request.engine_path}",
           f"--minShapes={shape_arg('min')}", f"--optShapes={shape_arg('opt')}", f"--maxShapes={shape_arg('max')}",
           f"--memPoolSize=workspace:{request.workspace_mib}M", f"--timingCacheFile={request.timing_cache_path}"]
    if request.precision in ("fp16", "int8"):
        cmd.append("--fp16")
    if request.precision == "int8":
        cmd.append("--int8")
        if not explicit_int8:
            cmd.append(f"--calib={request.calibration_cache_path}")  # needs the cache from a Python build
    return cmd


def format_command(cmd: list[str] | tuple[str, ...]) -> str:
    return shlex.join(cmd)


@dataclass(frozen=True)
class Int8Calibration:
    """TensorRT's implicit INT8 calibrator for one build, and the content hash of the data it reads.

    ``calibrator`` is a ``tensorrt.IInt8Calibrator``; it must stay alive until the build ends, which
    :func:`build_engine` ensures by holding this object. ``set_sha256`` goes into the manifest.
    """

    calibrator: object
    set_sha256: str


# Makes the calibrator of one build from its request (``calib_path``, ``calibration_cache_path``,
# ``opt_batch``) and the model's metadata (its preprocessing contract). Calibration data is the
# ``calibration`` package's business, above this one: edgefas's maker is
# ``calibration.trt_calibrator.entropy_calibration``, handed in by the command line.
MakeInt8Calibration = Callable[[BuildRequest, ModelMetadata], Int8Calibration]


@dataclass(frozen=True)
class BuildResult:
    engine_path: Path
    manifest_path: Path
    manifest: EngineManifest
    build_s: float


def read_model_metadata(onnx_path: Path) -> ModelMetadata:
    from engines.metadata import read_metadata

    if not onnx_path.is_file():
        raise ModelError(f"ONNX file '{onnx_path}' does not exist; export one with: edgefas export")
    return read_metadata(onnx_path)


def build_engine(onnx_path: str | Path, precision: str, out_dir: str | Path, calib: str | Path | None = None,
                 workspace_mib: int = DEFAULT_WORKSPACE_MIB, max_batch: int = DEFAULT_MAX_BATCH,
                 accuracy_gate: Mapping[str, object] | None = None,
                 int8_calibration: MakeInt8Calibration | None = None) -> BuildResult:
    """Build and serialise an engine for this machine's GPU, write its manifest, persist the timing cache.

    An INT8 build of an fp32 ONNX calibrates with the set ``calib`` through ``int8_calibration``
    (see :data:`MakeInt8Calibration`); a Q/DQ INT8 model and fp32/fp16 builds need neither.
    """
    request = BuildRequest(Path(onnx_path), precision, Path(out_dir), Path(calib) if calib else None,
                           workspace_mib, max_batch)
    metadata = read_model_metadata(request.onnx_path)
    check_int8_inputs(request, metadata)
    implicit_int8 = precision == "int8" and not uses_explicit_int8(metadata)
    if implicit_int8 and int8_calibration is None:
        raise ValueError("build_engine: an INT8 build of an fp32 ONNX needs int8_calibration, the maker of "
                         "TensorRT's calibrator (edgefas's: entropy_calibration in calibration/trt_calibrator.py)")
    trt = require_tensorrt("building a TensorRT engine")
    gpu = current_gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    check_precision_support(precision, gpu.compute_capability, builder.platform_has_fast_fp16,
                            builder.platform_has_fast_int8, gpu.name)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(request.onnx_path)):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse '{request.onnx_path}' ({errors}); re-export it with: edgefas export")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    flags = []
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # layers INT8 cannot take run in FP16, not FP32
        flags.append("FP16")
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        flags.append("INT8")
    profile = builder.create_optimization_profile()
    shapes = profile_shapes(metadata.input_size, request.opt_batch, request.max_batch)
    for name, s in shapes.items():
        profile.set_shape(name, s["min"], s["opt"], s["max"])
    config.add_optimization_profile(profile)
    calibration_sha = metadata.calibration_sha256
    calibration = None
    if implicit_int8:
        calibration = int8_calibration(request, metadata)
        config.int8_calibrator = calibration.calibrator
        config.set_calibration_profile(profile)
        calibration_sha = calibration.set_sha256
        flags.append("IMPLICIT_INT8_CALIBRATOR")
    request.out_dir.mkdir(parents=True, exist_ok=True)
    cache_bytes = request.timing_cache_path.read_bytes() if request.timing_cache_path.is_file() else b""
    timing_cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(timing_cache, ignore_mismatch=False)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_s = time.perf_counter() - start
    if serialized is None:
        raise EngineError(f"TensorRT could not build '{request.onnx_path}' at {precision} (see the TensorRT log "
                          f"above); try a larger --workspace-mib or another precision")
    request.engine_path.write_bytes(memoryview(serialized))
    request.timing_cache_path.write_bytes(memoryview(config.get_timing_cache().serialize()))
    manifest = EngineManifest(
        engine_file=request.engine_path.name, engine_sha256=file_sha256(request.engine_path),
        tensorrt_version=trt.__version__, gpu_name=gpu.name,
        compute_capability=f"{gpu.compute_capability[0]}.{gpu.compute_capability[1]}",
        precision=precision, input_shapes=shapes, onnx_file=str(request.onnx_path),
        onnx_sha256=file_sha256(request.onnx_path), calibration_sha256=calibration_sha, flags=tuple(flags),
        workspace_mib=workspace_mib, created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        rebuild_command=request.command(), model_metadata=metadata.to_props(), accuracy_gate=accuracy_gate,
    )
    manifest_file = write_manifest(manifest, request.engine_path)
    log.info("engine %s built in %.1f s (%s, TensorRT %s, %s)", request.engine_path, build_s, precision,
             trt.__version__, gpu.name)
    return BuildResult(request.engine_path, manifest_file, manifest, build_s)
