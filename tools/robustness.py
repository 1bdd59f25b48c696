"""Camera-variation table: a model's errors at its stored threshold on perturbed copies of a test split.

The copies are made from the preprocessed crops (the runtime's own preprocessing, cached by
``edgefas eval``), each perturbation with a fixed seed, so two models see the same faces:

- ``colour``: white balance +-15 % per channel, gain 0.7-1.4, gamma 0.85-1.2 per face;
- ``blur``: Gaussian, sigma 1.5 px of the 128 px crop;
- ``depth``: noise sigma 4 mm on every valid depth pixel, and blob holes over ~10 % of the crop;
- ``combined``: all three, then JPEG quality 70;
- ``glasses``: real eyeglasses on every face but the paper-glasses attack (``train.eyeglasses``, the
  drawing ``--augment glasses`` trains with, so a model trained with it has seen this kind of face:
  read the line as "does the model refuse people for wearing glasses", not as an unseen condition);
- ``flat``: every face, live and attack, lit flat and washed out like a studio portrait (contrast
  0.65, saturation 0.6, a lift of 0.12 toward white: ``train.augment.flat_light``, inside the range
  ``--augment glasses-flat`` trains with; read it as "does the model refuse a flat-lit owner");
- ``depth-smooth``: the depth averaged over valid neighbours (Gaussian sigma 1.5 px), harder smoothing
  than librealsense's default spatial and temporal filters: the renderer's pixel noise is gone;
- ``depth-correlated``: noise of 2 mm RMS correlated over neighbours (white noise blurred over 1 px), as
  the real D435 recording's is (``train.augment``'s docstring has the measurement); since procedural
  version 3 and photo version 7 the worlds' own depth error is of that kind, so on them this copy
  is a rougher camera of the same kind;
- ``depth-halfres``: the depth at half the crop's resolution and up again (nearest neighbour), as a
  424 x 240 depth stream beside a 640 x 480 colour one. No ``--augment`` draws it.
  ``--augment glasses-sensor`` trains with the first two inside its ranges: read them, for such a
  model, as "has it stopped reading our sensor's texture";
- ``grey``: every face with 30 % of its colour (saturation 0.3, contrast and brightness kept), as a
  camera in dim or mixed light gives it, or a washed-out photograph: below the flat light's range, so
  a model trained without ``--augment glasses-flat-sensor-grey`` has not seen it ("does the model
  refuse an owner for a grey picture");
- ``low-contrast``: the flat copy's contrast alone (0.65 about the crop's mean, colour kept): the part
  of the flat light that lets mannequins through (docs/experiments.md, thirty-third session);
- ``low-key``: every face exposed 1.5 stops under (colour times 0.35), as at a door in front of a bright
  street; inside the range ``--augment glasses-flat-sensor-dark`` trains with, below the standard
  exposure's ("does the model refuse an owner in a dim entrance, and does a dark face pass");
- ``dim``, ``stop-under`` and ``bright``: every face's colour times 0.8, 0.5 and 1.25 (a third of a
  stop under, a stop under, a third of a stop over), the steps at which the forty-second session found
  the default's threshold moving with the exposure ("does a site a little darker or brighter than the
  renderer keep the door's operating point"; docs/exposure-normalisation.md);
- ``skin-brown`` and ``skin-dark``: every face, live and attack, with its skin re-toned to L* 40 and 32
  (a* and b* x 1.15: ITA about -28 and -43 degrees at b* 19, the brown and dark classes; ``train.skin_tone``), the
  people the photo world does not hold ("does the model refuse a darker-skinned owner, and does a
  darker head pass"). ``--augment glasses-flat-sensor-tone`` trains with this re-toning at drawn
  values, so for such a model read the copies as inside its training draw.

These are fixed settings, not the training augmentation's random ranges (``train.augment``), so
the table is not the training distribution measured on itself.

    python tools/robustness.py --model engines/models/edge-synthetic.onnx --dataset synthetic:1200 \\
        --cache-dir out/cache --model-dir ../shared/data/models --json out/robust.json
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.metrics import area_under_curve, pad_report, scored_set  # noqa: E402
from calibration.scoring import score_samples  # noqa: E402
from edge.datasets.sampleset import DEPTH_SCALE, SampleSet, prepare_samples  # noqa: E402
from edge.errors import EdgefasError  # noqa: E402
from edge.face.preprocess import PreprocessConfig  # noqa: E402
from engines.runner import open_runner  # noqa: E402
from train.evaluate import bpcer_by_subject  # noqa: E402
from train.augment import correlated_noise, flat_light, smooth_depth  # noqa: E402
from train.eyeglasses import add_eyeglasses  # noqa: E402
from train.skin_tone import deepen_skin  # noqa: E402

KINDS = ("clean", "colour", "blur", "depth", "combined", "glasses", "flat",  # new kinds go last: seeds by index
         "depth-smooth", "depth-correlated", "depth-halfres", "grey", "low-contrast", "low-key",
         "dim", "stop-under", "bright", "skin-brown", "skin-dark")
SENSOR_KINDS = ("depth-smooth", "depth-correlated", "depth-halfres")
LOW_KEY_COPY = 0.35  # the low-key copy's exposure: 1.5 stops under, inside the training draw's range
# the exposure copies: each face's colour times one gain (the low-key copy is the darkest of them)
EXPOSURE_COPIES = {"low-key": LOW_KEY_COPY, "stop-under": 0.5, "dim": 0.8, "bright": 1.25}
# the skin copies: every face's skin re-toned to one L* (CIE Lab), a* and b* x 1.15 (train.skin_tone)
SKIN_COPIES = {"skin-brown": 40.0, "skin-dark": 32.0}
LANDMARK_KINDS = ("glasses", *SKIN_COPIES)  # the copies drawn at the faces' landmarks


def _colour(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    wb = 1.0 + rng.uniform(-0.15, 0.15, 3).astype(np.float32)
    return np.clip(img * wb * rng.uniform(0.7, 1.4), 0, 1) ** rng.uniform(0.85, 1.2)


def _depth(dep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    valid = dep > 0
    noisy = dep + rng.standard_normal(dep.shape).astype(np.float32) * (4.0 / 200.0)  # 4 mm in a +-100 mm window
    s = dep.shape[0]
    holes = cv2.resize(rng.random((s // 10, s // 10), dtype=np.float32), (s, s)) < 0.10
    return np.where(valid & ~holes, np.clip(noisy, 1e-4, 1.0), 0.0).astype(np.float32)


def _sensor(dep: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Another stereo camera's depth texture on one crop's depth (the ``depth-*`` copies)."""
    valid = dep > 0
    s = dep.shape[0]
    if kind == "depth-smooth":
        return smooth_depth(dep, 1.5)
    if kind == "depth-correlated":
        out = dep + correlated_noise(rng, s, 1.0) * (2.0 / 200.0)  # 2 mm in a +-100 mm window
        return np.where(valid, np.clip(out, 1e-4, 1.0), 0.0).astype(np.float32)
    small = cv2.resize(dep, (s // 2, s // 2), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, (s, s), interpolation=cv2.INTER_NEAREST)


def perturb(samples: SampleSet, kind: str, seed: int = 7) -> SampleSet:
    if kind == "clean":
        return samples
    if kind in EXPOSURE_COPIES:  # one gain, no random draw: made from the stored crops directly
        return exposed(samples, EXPOSURE_COPIES[kind])
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    rgb, depth = samples.arrays(slice(0, len(samples)))
    if kind in LANDMARK_KINDS and samples.landmarks is None:
        raise SystemExit(f"the {kind} copy needs the faces' landmarks; rebuild the cache with this edgefas")
    if kind in SKIN_COPIES:  # one tone, no random draw
        for i in range(len(samples)):
            rgb[i] = deepen_skin(rgb[i].transpose(1, 2, 0), samples.landmarks[i], SKIN_COPIES[kind],
                                 1.15).transpose(2, 0, 1)
        return _repacked(samples, rgb, depth)
    if kind == "glasses":
        rgb, depth, _ = add_eyeglasses(rgb, depth, samples.landmarks, samples.pai, rng, 1.0)
        return _repacked(samples, rgb, depth)
    if kind in SENSOR_KINDS:
        for i in range(len(samples)):
            depth[i, 0] = _sensor(depth[i, 0], kind, rng)
        return _repacked(samples, rgb, depth)
    for i in range(len(samples)):
        img = rgb[i].transpose(1, 2, 0)
        if kind == "flat":
            img = flat_light(img, 0.65, 0.6, 0.12)
        if kind == "grey":
            img = flat_light(img, 1.0, 0.3, 0.0)
        if kind == "low-contrast":
            img = flat_light(img, 0.65, 1.0, 0.0)
        if kind in ("colour", "combined"):
            img = _colour(img, rng)
        if kind in ("blur", "combined"):
            img = cv2.GaussianBlur(img, (0, 0), 1.5)
        if kind == "combined":
            ok, buf = cv2.imencode(".jpg", np.rint(img * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 70])
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
        rgb[i] = img.transpose(2, 0, 1)
        if kind in ("depth", "combined"):
            depth[i, 0] = _depth(depth[i, 0], rng)
    return _repacked(samples, rgb, depth)


def exposed(samples: SampleSet, gain: float) -> SampleSet:
    """``samples`` with every face's colour times ``gain`` (clipped to the 8-bit range), depth and labels kept:
    the exposure copies (:data:`EXPOSURE_COPIES`), and each step of ``tools/exposure_sweep.py``."""
    return _repacked(samples, samples.rgb.astype(np.float32) / 255 * gain, samples.depth.astype(np.float32) / DEPTH_SCALE)


def _repacked(samples: SampleSet, rgb: np.ndarray, depth: np.ndarray) -> SampleSet:
    return SampleSet(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8), np.rint(depth * DEPTH_SCALE).astype(np.uint16),
                     samples.is_attack, samples.pai, samples.subject, samples.gate, samples.provenance, samples.landmarks)


def stored_threshold_report(runner, samples: SampleSet) -> dict:
    """ISO/IEC 30107-3 report of ``samples`` at the model's stored threshold, with AUC and per-person BPCER."""
    scores = score_samples(runner, samples).scores
    attack = samples.is_attack.astype(bool)
    report = pad_report(scores, attack, float(runner.threshold), samples.pai).to_json()
    report["auc_attack_high"] = area_under_curve(scored_set(scores, attack, samples.pai))
    people = bpcer_by_subject(samples, scores, float(runner.threshold))
    report["bpcer_by_subject"] = people
    report["bpcer_worst_person"] = max((p["bpcer"] for p in people.values()), default=0.0)
    return report


@contextmanager
def judged_samples(model: Path, dataset: str, split: str, cache_dir: Path, model_dir: Path | None, what: str):
    """``model``'s runner (closed afterwards) and its faces of ``dataset``'s ``split``, for reads at the stored
    threshold: a model without one is a one-line error naming ``what`` would have been read (as
    tools/contact_sheet.py)."""
    runner = open_runner(model)
    try:
        if runner.threshold is None:
            raise EdgefasError(f"--model {model} has no stored threshold to read {what} at; give it one with "
                               "`edgefas calibrate threshold` first")
        config = PreprocessConfig.from_metadata(runner.contract)
        yield runner, prepare_samples(dataset, split, config, "yunet", model_dir, cache_dir)
    finally:
        runner.close()


def table(model: Path, dataset: str, split: str, cache_dir: Path, model_dir: Path | None,
          kinds: tuple[str, ...] = KINDS) -> dict[str, dict]:
    with judged_samples(model, dataset, split, cache_dir, model_dir, "the copies") as (runner, samples):
        return {kind: stored_threshold_report(runner, perturb(samples, kind)) for kind in kinds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--dataset", default="synthetic:1200")
    ap.add_argument("--split", default="test")
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="the copies to read (default: all)")
    args = ap.parse_args()
    try:
        result = table(args.model, args.dataset, args.split, args.cache_dir, args.model_dir, tuple(args.kinds))
    except EdgefasError as exc:  # a missing model file, a bad dataset spec: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.model.name} on {args.dataset} {args.split}, stored threshold")
    print("| copy | ACER | APCER (worst) | BPCER | BPCER worst person | AUC |")
    print("|---|---|---|---|---|---|")
    for kind, r in result.items():
        print(f"| {kind} | {r['acer']:.2%} | {r['apcer_max']:.2%} | {r['bpcer']:.2%} | {r['bpcer_worst_person']:.2%} "
              f"| {r['auc_attack_high']:.3f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
