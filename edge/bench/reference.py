"""Reference work for ``edgefas bench``: a MiniFASNetV2-sized network, built here, timed beside ours.

A frame rate says little to someone who knows the field's usual models; "our model takes N times a
MiniFASNetV2's time on this machine, measured in the same run" says more (docs/bench-reference.md). No weights are downloaded: the bench
builds the network's graph itself, with random weights (dense kernels do not look at values, so a
random graph costs what a trained one costs), caches the file and times it model-only, batch 1,
interleaved with the ``edge`` model files under test on sessions opened with the same options.

What the reference is, as facts taken from the public description of MiniFASNetV2 (Minivision's
Silent-Face-Anti-Spoofing, ``src/model_lib/MiniFASNet.py``, channel list ``keep_dict['1.8M_']``;
the input side 80 and the head kernel ``((80 + 15) // 16,) * 2 = 5`` from its ``src/utility.py``
``get_kernel``): a MobileFaceNet-style network on an 80x80 RGB crop. A 3x3 stride-2 convolution to
32 channels and a 3x3 depthwise convolution; three stages, each one stride-2 bottleneck followed by
residual bottlenecks (bottleneck = 1x1 expand, 3x3 depthwise, 1x1 linear projection, BatchNorm
after each, PReLU after the first two); a 1x1 convolution to 512 channels and a 5x5 depthwise
convolution over the whole 5x5 map; a 512 -> 128 embedding with BatchNorm and a 128 -> 3 classifier.
Published figures (a comment beside ``MiniFASNetV2`` in that file): "(80x80) flops: 0.044, params:
0.43" (G and M). The graph built here counts 0.426 M parameters and 40.7 M multiply-adds (one MAC
per multiply-add, ``model_cost.py``'s convention): that "flops" figure is multiply-adds, not two
operations per MAC (which would make ours 81 M).

The graph is written with the ``onnx`` package's helpers, not exported from torch: the runtime
(``edge/``) never imports torch (tests/edge/test_cli_foundation.py), and the graph is what an
eval-mode export produces after BatchNorm folding: Conv with bias, PRelu, Add, Flatten, Gemm.
Without ``onnx`` (the ``train`` extra) the row is skipped with that reason, as the eager row is.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.bench.model_cost import ModelCost, count_onnx_cost
from edge.bench.stages import StageStats, summarise_ms
from edge.errors import ModelError, import_optional

log = logging.getLogger(__name__)

REFERENCE_LABEL = "reference/minifasnetv2-80"
# Bump when the written graph changes for the same config (invalidates cached files).
GRAPH_VERSION = 1
OPSET = 17  # the opset of our own exports (engines/export.py)
# Calls one model gets before the next takes over. Model-only calls keep no state between them, so
# blocks can be short: every row meets the same moments of the machine at a fine grain.
MODEL_ONLY_BLOCK = 8


@dataclass(frozen=True)
class Stage:
    """One resolution: a stride-2 bottleneck to ``channels`` (expanding to ``down_expand``), then
    residual bottlenecks at ``channels``, one per entry of ``residual_expands``."""

    channels: int
    down_expand: int
    residual_expands: tuple[int, ...]


@dataclass(frozen=True)
class ReferenceConfig:
    """The network's shape; the defaults are MiniFASNetV2 at 80x80 (module docstring for the source)."""

    name: str = "minifasnetv2"
    input_side: int = 80
    stem_channels: int = 32
    stages: tuple[Stage, ...] = (
        Stage(64, 103, (13, 13, 13, 13)),
        Stage(128, 231, (231, 52, 26, 77, 26, 26)),
        Stage(128, 308, (26, 26)),
    )
    head_channels: int = 512
    embedding: int = 128
    classes: int = 3
    seed: int = 0  # of the random weights

    @property
    def head_kernel(self) -> int:
        """Side of the last feature map: four stride-2 layers (stem and one per stage) with padding 1."""
        side = self.input_side
        for _ in range(1 + len(self.stages)):
            side = (side - 1) // 2 + 1
        return side

    def key(self) -> str:
        """Names the cached file: everything that shapes the graph, and the builder's version."""
        text = repr((asdict(self), GRAPH_VERSION, OPSET))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


MINIFASNET_V2 = ReferenceConfig()


@dataclass(frozen=True)
class PublishedFigures:
    """What the reference should cost, as published, and where that was read."""

    params: int
    params_tolerance: float  # relative: the counted figure lies within this of the published one
    macs: int
    macs_tolerance: float
    source: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


# The published figures are rounded to two significant digits, and the tool that counted them is
# not named. Parameters: ours leave out BatchNorm scales (folded into the convolutions) and PReLU
# slopes; counted 0.426 M against 0.43 M. Multiply-adds: counted 40.7 M against "0.044" G; as
# FLOPs (two per MAC) ours would be 81 M, so the published "flops" are multiply-adds, and the 8 %
# left is within what counting BatchNorm and activations as operations (as some counters do) adds.
MINIFASNET_V2_PUBLISHED = PublishedFigures(
    params=430_000, params_tolerance=0.05, macs=44_000_000, macs_tolerance=0.10,
    source="github.com/minivision-ai/Silent-Face-Anti-Spoofing src/model_lib/MiniFASNet.py, beside "
           "MiniFASNetV2: '(80x80) flops: 0.044, params: 0.43' (G and M; the flops are multiply-adds)")


class _Graph:
    """Collects nodes and random initialisers; each layer returns the name of its output."""

    def __init__(self, onnx, seed: int) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def _name(self, kind: str) -> str:
        self._count += 1
        return f"{kind}_{self._count}"

    def _const(self, kind: str, array: np.ndarray) -> str:
        name = self._name(kind)
        self.initializers.append(self.onnx.numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv(self, x: str, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             prelu: bool = True, pad: int | None = None) -> str:
        """Convolution with its BatchNorm folded in (a bias), then PReLU unless ``prelu`` is False."""
        fan_in = (c_in // groups) * kernel * kernel
        # He initialisation keeps activations of a deep random stack in range (no overflow or denormals)
        weight = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), (c_out, c_in // groups, kernel, kernel))
        bias = self.rng.normal(0.0, 0.01, c_out)
        pad = kernel // 2 if pad is None else pad
        out = self._name("conv")
        self.nodes.append(self.helper.make_node(
            "Conv", [x, self._const("w", weight), self._const("b", bias)], [out], kernel_shape=[kernel, kernel],
            strides=[stride, stride], pads=[pad] * 4, group=groups))
        if not prelu:
            return out
        slope = self._const("slope", np.full((c_out, 1, 1), 0.25))
        activated = self._name("prelu")
        self.nodes.append(self.helper.make_node("PRelu", [out, slope], [activated]))
        return activated

    def bottleneck(self, x: str, c_in: int, expand: int, c_out: int, stride: int) -> str:
        y = self.conv(x, c_in, expand)
        y = self.conv(y, expand, expand, kernel=3, stride=stride, groups=expand)
        y = self.conv(y, expand, c_out, prelu=False)
        if stride != 1 or c_in != c_out:
            return y
        out = self._name("add")
        self.nodes.append(self.helper.make_node("Add", [x, y], [out]))
        return out

    def flatten(self, x: str) -> str:
        out = self._name("flat")
        self.nodes.append(self.helper.make_node("Flatten", [x], [out], axis=1))
        return out

    def gemm(self, x: str, c_in: int, c_out: int, bias: bool) -> str:
        weight = self.rng.normal(0.0, math.sqrt(1.0 / c_in), (c_out, c_in))
        inputs = [x, self._const("w", weight)] + ([self._const("b", np.zeros(c_out))] if bias else [])
        out = self._name("gemm")
        self.nodes.append(self.helper.make_node("Gemm", inputs, [out], transB=1))
        return out


def build_reference_graph(config: ReferenceConfig = MINIFASNET_V2):
    """The reference as an ``onnx.ModelProto``: input ``rgb`` [N,3,S,S], output ``logits`` [N,classes].

    MissingExtraError without the ``onnx`` package.
    """
    onnx = import_optional("onnx", "train", "building the bench's reference network")
    g = _Graph(onnx, config.seed)
    x = g.conv("rgb", 3, config.stem_channels, kernel=3, stride=2)
    x = g.conv(x, config.stem_channels, config.stem_channels, kernel=3, groups=config.stem_channels)
    channels = config.stem_channels
    for stage in config.stages:
        x = g.bottleneck(x, channels, stage.down_expand, stage.channels, stride=2)
        channels = stage.channels
        for expand in stage.residual_expands:
            x = g.bottleneck(x, channels, expand, channels, stride=1)
    x = g.conv(x, channels, config.head_channels)
    k = config.head_kernel  # a depthwise kernel as large as the map: a learned global pooling
    x = g.conv(x, config.head_channels, config.head_channels, kernel=k, groups=config.head_channels,
               prelu=False, pad=0)
    x = g.gemm(g.flatten(x), config.head_channels, config.embedding, bias=True)  # its BatchNorm folded into a bias
    x = g.gemm(x, config.embedding, config.classes, bias=False)
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["logits"]))
    side = config.input_side
    graph = onnx.helper.make_graph(
        g.nodes, f"{config.name}-{side}",
        [onnx.helper.make_tensor_value_info("rgb", onnx.TensorProto.FLOAT, ["N", 3, side, side])],
        [onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["N", config.classes])],
        g.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   producer_name="edgefas bench reference")
    onnx.checker.check_model(model)
    return model


def reference_path(cache_dir: Path, config: ReferenceConfig = MINIFASNET_V2) -> Path:
    return Path(cache_dir) / f"reference-{config.name}-{config.input_side}-{config.key()}.onnx"


def ensure_reference(cache_dir: Path, config: ReferenceConfig = MINIFASNET_V2) -> Path:
    """The reference's ONNX file under ``cache_dir``, built on first use and reused after.

    Written under a temporary name and renamed when complete, so an interrupted build leaves no
    truncated file behind. MissingExtraError without the ``onnx`` package.
    """
    path = reference_path(cache_dir, config)
    if path.is_file():
        log.info("bench reference: cached %s", path)
        return path
    model = build_reference_graph(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.onnx")  # two benches may build at once
    try:
        partial.write_bytes(model.SerializeToString())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    log.info("bench reference: built %s", path)
    return path


def open_session(path: Path, threads: int):
    """A CPU session with the options of :class:`engines.ort_runner.OrtRunner` (``threads`` intra-op
    threads, one inter-op thread, sequential, every graph optimisation), so a ratio between two
    files compares graphs, not session settings."""
    from engines.ort_session import CPU, load_session, session_options

    return load_session(path, [CPU], session_options(threads))


def batch_one_inputs(session, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 inputs in [0, 1) of batch 1 for every input of ``session`` (a dynamic axis is 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in session.get_inputs():
        if value.type != "tensor(float)":
            raise ModelError(f"model-only timing feeds float inputs; input '{value.name}' is {value.type}")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        feeds[value.name] = rng.random(shape, dtype=np.float32)
    return feeds


@dataclass(frozen=True)
class ModelOnly:
    """One file timed model-only: ``session.run`` on fixed batch-1 inputs."""

    label: str
    model: str
    cost: ModelCost
    timing: StageStats

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "model": self.model, "cost": self.cost.to_json(), "ms": self.timing.to_json()}


@dataclass(frozen=True)
class ReferenceResult:
    """The reference and the models under test, timed model-only in one interleaved run."""

    reference: ModelOnly
    models: list[ModelOnly]
    published: PublishedFigures
    threads: int
    order: list[list] = field(default_factory=list)  # the first [label, timed calls] blocks

    def over_reference(self, model: ModelOnly) -> dict[str, float | None]:
        """``model``'s median ms and MACs over the reference's (above 1: more than the reference)."""
        ref = self.reference

        def over(a: float | None, b: float | None) -> float | None:
            if a is None or b is None or not b or not math.isfinite(a) or not math.isfinite(b):
                return None
            return round(a / b, 3)

        return {"ms_ratio": over(model.timing.median_ms, ref.timing.median_ms),
                "macs_ratio": over(model.cost.macs, ref.cost.macs)}

    def to_json(self) -> dict[str, object]:
        rows = [{**m.to_json(), "over_reference": self.over_reference(m)} for m in self.models]
        return {"label": self.reference.label, "threads": self.threads, "batch": 1,
                "published": self.published.to_json(), "rows": rows + [self.reference.to_json()],
                "ratios": {f"{m.label} vs {self.reference.label}": self.over_reference(m) for m in self.models},
                "order": self.order}


Call = Callable[[], object]


def time_interleaved(calls: Sequence[Call], frames: int, warmup: int, block: int = MODEL_ONLY_BLOCK,
                     clock: Callable[[], float] = time.perf_counter,
                     progress: Callable[[int, int], None] | None = None) -> tuple[list[list[float]], list[int]]:
    """Milliseconds of ``frames`` timed calls per entry of ``calls``, in blocks of ``block`` taking turns.

    ``warmup`` untimed calls each come first. Returns the times per call index and the order of the
    timed calls (indices), so a report can show how they were interleaved.
    """
    if not calls:
        raise ValueError("time_interleaved needs at least one call")
    if frames < 1 or warmup < 0 or block < 1:
        raise ValueError(f"time_interleaved needs frames >= 1, warmup >= 0, block >= 1; got {frames}, {warmup}, {block}")
    for call in calls:
        for _ in range(warmup):
            call()
    times: list[list[float]] = [[] for _ in calls]
    order: list[int] = []
    total, done = frames * len(calls), 0
    while done < total:
        for k, call in enumerate(calls):
            for _ in range(min(block, frames - len(times[k]))):
                started = clock()
                call()
                times[k].append((clock() - started) * 1000.0)
                order.append(k)
                done += 1
                if progress is not None:
                    progress(done, total)
    return times, order


def measure_reference(models: Mapping[str, Path], threads: int, frames: int, warmup: int, cache_dir: Path,
                      config: ReferenceConfig = MINIFASNET_V2, published: PublishedFigures = MINIFASNET_V2_PUBLISHED,
                      progress: Callable[[int, int], None] | None = None,
                      clock: Callable[[], float] = time.perf_counter) -> ReferenceResult:
    """Build (or reuse) the reference, then time it and every ``models`` file (label -> path) model-only.

    MissingExtraError without the ``onnx`` package (the caller records a skipped row).
    """
    path = ensure_reference(cache_dir, config)
    rows = [(label, Path(p)) for label, p in models.items()] + [(REFERENCE_LABEL, path)]
    calls = []
    for _, file in rows:
        session = open_session(file, threads)
        feeds, outputs = batch_one_inputs(session), [o.name for o in session.get_outputs()]
        calls.append(lambda s=session, f=feeds, o=outputs: s.run(o, f))
    times, order = time_interleaved(calls, frames, warmup, progress=progress, clock=clock)
    results = [ModelOnly(label, str(file), count_onnx_cost(file), summarise_ms(t))
               for (label, file), t in zip(rows, times)]
    blocks = [[rows[k][0], len(list(run))] for k, run in itertools.groupby(order)]
    return ReferenceResult(results[-1], results[:-1], published, threads, blocks[: 3 * len(rows)])
