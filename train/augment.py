"""Camera realism for training: what another camera, another room and another distance do to a face crop.

Applied to preprocessed crops (both worlds, both streams), in training only, so the model cannot
lean on one renderer's exact colours, sharpness or depth noise. Each sample draws its own
settings. The ranges, and where each comes from:

- white balance: per-channel gains 0.85-1.15 (auto white balance of webcams and the D435's RGB
  sensor under tungsten vs daylight leaves ~10 % channel error; the renderer draws 0.9-1.1);
- exposure: gain 0.6-1.6 and gamma 0.8-1.25 (auto exposure on a back-lit face is off by about
  one stop either way);
- sensor noise: Gaussian, sigma 0-0.03 of full scale times sqrt(signal) (shot noise; the D435 RGB
  at indoor light measures ~1-2 %);
- blur: Gaussian sigma 0-1.5 px of the 128 px crop (focus and motion at 30 fps);
- JPEG: quality 40-95 (streams and recordings are often compressed; the independent checks use
  compressed photos);
- face size and distance: the crop is zoomed 0.9-1.1 and shifted by up to 4 px (detector jitter
  across cameras), the same for colour and depth, depth with nearest-neighbour;
- depth noise growing with z^2: the D400 white paper's RMS error z^2 * subpixel / (f * baseline)
  is 1 mm at 0.5 m and 4 mm at 1 m; a distance 0.3-1.2 m is drawn and sigma follows it, times
  0.5-2 for other units and settings (in crop units: the window is +-100 mm, so 1 mm = 1/200);
- depth holes: smooth blobs covering 0-12 % of the crop, more where the colour is dark (hair,
  dark clothes: the projector's pattern returns nothing), and a band along the left edge of the
  face (the stereo occlusion shadow, 0-6 px) on some samples.

A *compound* sample (``--augment wide`` trains with 30 % of them) draws every camera effect at once at
the far end of its range: blur sigma 0.8-2 px always, JPEG quality 40-80 always, depth noise 1-2.5x
the z^2 model, holes up to 15 %. Each effect alone is common in the standard draw; all of them
together (a soft, compressed stream from a noisier unit) almost never is, and another camera brings
them together.

A *flat-light* sample (``--augment glasses-flat`` draws 30 % of the perturbed faces so) is lit the way
a studio or a bright, white-walled entrance lights a face: soft and frontal, little shading, colours
washed out. Contrast about the crop's mean 0.55-0.9, saturation 0.45-0.9 and a lift toward white
0-0.2 (veiling glare), drawn after the exposure above. Why: high-key portrait photographs (a white
background, a soft box) are common among real people's photographs, and a live face lit so loses the
contrast and the saturation that the print and screen species lose to their lower gamut; the
sixteenth session found a model refusing exactly such a person (docs/experiments.md). The same share
of attacks is drawn flat, so a washed-out look stops telling live from attack and the depth stream and
the fine texture must. Ranges: soft-box and ring-light portraits measure a luminance spread about half
that of a side-lit face; a lift of 0.2 of full scale is the glare of a light source just outside the
frame.

An *other-sensor* sample (``--augment glasses-sensor`` draws 40 % of the perturbed faces so) has the
depth of a stereo camera that is not the renderer's: one of three, drawn evenly.
- *smoothed*: the z^2 noise, then averaged over valid neighbours (Gaussian sigma 0.7-2 px): a
  camera's own smoothing, harder than librealsense's default spatial and temporal filters (the
  product's chain moved the default's score by at most 0.008 on rendered recordings,
  ``tools/decimation_check.py``). The renderer's pixel noise is gone.
- *correlated*: the z^2 noise blurred over sigma 0.5-1.5 px and rescaled to its RMS. Where: the
  bundled D435 recording (``../shared/data/realsense``), flat 9 x 9 patches at 0.4-1.2 m, has a
  residual of 0.64 mm RMS, correlated 0.49 with the next pixel and 0.20 two pixels away (white noise
  blurred with sigma 0.6-0.8 px). The renderer's noise is independent per pixel.
- *terraced*: depth in the steps of a quantised disparity, z^2 * d / (f * baseline) with d 1/32-1/8
  px. Where: the same recording's depth levels are 2 mm apart at 1 m and 4 mm at 1.5 m (1/32 px); the
  white paper's subpixel 0.08 is about 1/12 px.
A depth stream at half the colour resolution is not drawn: ``tools/robustness.py`` keeps it as a
copy the training has not seen. Why any of this: the twenty-ninth session found the default reading
pixel-noise texture (docs/experiments.md): smoothed depth let 31 % of dev silicone masks through and
correlated noise refused 12 % of dev owners.

A *low-key* sample (``--augment glasses-flat-sensor-dark`` draws 20 % of the perturbed faces so) is
exposed 1-2 stops under (gain 0.25-0.5, after the standard exposure): a face at a door in front of a
bright street or a lit lobby, where auto exposure meters the background. Live faces and attacks alike,
so a dark face stops telling either way and the fine texture and the depth must. Why: the forty-first
session found unseen people's mannequins passing where their paint is dark (15 of 31 dark against 10 of
92 light on photo dev, ``tools/mannequin_paint.py``): the colour input is not normalised per face, so a
dark face reaches the network with little contrast, and the photo world's people, mostly light-skinned,
give it few dark live faces to learn from. Depth holes stay where the surface is dark, not where the
exposure is (the D435 ranges with its infrared projector, whatever the colour camera's exposure).

A *levelled* sample (``--augment glasses-flat-sensor-level`` draws 60 % of the perturbed faces so) has
its colour scaled, before the standard draw, to a mean brightness drawn from 0.3-0.65 (the 5-95 %
range of the photo world's dev live crops, 0.34-0.59, a little wider), live and attack alike. Why: in
both rendered worlds attacks are brighter than live faces (photo dev medians: live 0.45, mannequin
0.49, print 0.56, replay 0.53, cutout 0.53), and the forty-second session found every model scoring a
darker face more live (``tools/exposure_sweep.py``): a cue of the renderer, not of liveness. A
levelled face keeps its own contrast and colour; only the class's brightness is gone.

A *re-toned* sample (``--augment glasses-flat-sensor-tone`` draws 50 % of the perturbed faces so) has
its skin deepened toward tan, brown or dark first, live and attack alike (``train.skin_tone``, where the
ranges and their source are): the photo world's people are very light to tan.

``perturb_arrays`` with a fixed seed is also the perturbed dev set that the score's alpha is
chosen on (``train.run.calibrate_score``).
"""

from __future__ import annotations

import cv2
import numpy as np

from train.skin_tone import draw_tone

DEPTH_WINDOW_MM = 200.0  # the crop's depth window is +-100 mm (edge.face.depth_norm)
SUBPIXEL, BASELINE_M, FOCAL_PX = 0.08, 0.050, 390.0  # D435 at 640x480 (edge.capture.synthetic.sensor)


def _blobs(rng: np.random.Generator, size: int, scale_px: float) -> np.ndarray:
    n = max(2, int(size / scale_px))
    return cv2.resize(rng.random((n, n), dtype=np.float32), (size, size), interpolation=cv2.INTER_LINEAR)


SENSORS = ("smoothed", "correlated", "terraced")  # other-sensor depth, drawn evenly
LOW_KEY_GAIN = (0.25, 0.5)  # a low-key sample's exposure, after the standard draw (module docstring)
LEVEL_MEAN = (0.3, 0.65)  # a levelled sample's mean brightness before the standard draw (module docstring)


def smooth_depth(dep: np.ndarray, sigma_px: float) -> np.ndarray:
    """Depth [S,S] averaged over its valid neighbours (Gaussian ``sigma_px``); invalid pixels stay 0."""
    valid = (dep > 0).astype(np.float32)
    total = cv2.GaussianBlur(dep * valid, (0, 0), sigma_px)
    weight = cv2.GaussianBlur(valid, (0, 0), sigma_px)
    return np.where(valid > 0, total / np.maximum(weight, 1e-6), 0.0).astype(np.float32)


def correlated_noise(rng: np.random.Generator, size: int, sigma_px: float) -> np.ndarray:
    """Unit-RMS noise [S,S] correlated over neighbours: white noise blurred with ``sigma_px``."""
    noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma_px)
    return noise / max(float(noise.std()), 1e-6)


def perturb_sample(rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                   landmarks: np.ndarray | None = None, compound: bool = False, flat: bool = False,
                   sensor: str | None = None, grey: bool = False, dark: bool = False, level: bool = False,
                   tone: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One crop: ``rgb`` [3,S,S] and ``depth`` [1,S,S] float32 in [0, 1] (0 depth = no data).

    ``landmarks`` [5,2] in crop coordinates [0, 1] are moved with the crop's zoom and shift.
    ``compound`` applies blur, JPEG and strong depth noise together, each at the far end of its range.
    ``flat`` lights the face flat and washed out (lower contrast and saturation, a lift toward white).
    ``sensor``, one of :data:`SENSORS`, gives the depth another stereo camera's texture (module docstring).
    ``grey`` takes most of the colour away (saturation 0-0.45, below the flat light's range).
    ``dark`` exposes the face low-key (:data:`LOW_KEY_GAIN`); its depth holes follow the face's own
    colour, not the exposure (the projector sees the surface, not the colour camera's setting).
    ``level`` first scales the face's colour to a mean brightness drawn from :data:`LEVEL_MEAN`, whatever
    the face is (the standard exposure draw follows).
    ``tone`` first re-tones the skin toward tan, brown or dark (:func:`train.skin_tone.draw_tone`); it
    needs ``landmarks`` and is skipped without them.
    """
    if sensor is not None and sensor not in SENSORS:
        raise ValueError(f"unknown sensor {sensor!r}; one of {SENSORS}")
    s = rgb.shape[-1]
    img = rgb.transpose(1, 2, 0).copy()
    dep = depth[0].copy()
    if tone and landmarks is not None:  # the skin's own colour, before any camera draw changes the light
        img = draw_tone(img, landmarks, rng)
    # face size and position: one affine warp for both streams
    zoom = 1.0 + strength * rng.uniform(-0.1, 0.1)
    shift = strength * rng.uniform(-4, 4, 2)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), 0.0, zoom)
    m[:, 2] += shift
    img = cv2.warpAffine(img, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    dep = cv2.warpAffine(dep, m, (s, s), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    moved = None
    if landmarks is not None:
        px = np.asarray(landmarks, np.float64) * s
        moved = ((px @ m[:, :2].T + m[:, 2]) / s).astype(np.float32)
    if level:  # one brightness for every class: the renderer's brightness stops telling live from attack
        img = np.clip(img * (rng.uniform(*LEVEL_MEAN) / max(float(img.mean()), 1e-3)), 0, 1)
    # colour: white balance, exposure, gamma
    wb = 1.0 + strength * rng.uniform(-0.15, 0.15, 3).astype(np.float32)
    gain = float(np.exp(strength * rng.uniform(np.log(0.6), np.log(1.6))))
    gamma = float(np.exp(strength * rng.uniform(np.log(0.8), np.log(1.25))))
    img = np.clip(img * wb[None, None, :] * gain, 0, 1) ** gamma
    key = float(rng.uniform(*LOW_KEY_GAIN)) if dark else 1.0
    img = img * key
    if flat:
        img = flat_light(img, rng.uniform(0.55, 0.9), rng.uniform(0.45, 0.9), rng.uniform(0.0, 0.2))
    if grey:
        img = flat_light(img, 1.0, rng.uniform(0.0, 0.45), 0.0)
    if compound or rng.random() < 0.5 * strength:
        sigma = strength * (rng.uniform(0.8, 2.0) if compound else rng.uniform(0.0, 1.5))
        if sigma > 0.2:
            img = cv2.GaussianBlur(img, (0, 0), sigma)
    noise = strength * rng.uniform(0.0, 0.03)
    img = img + noise * rng.standard_normal(img.shape).astype(np.float32) * np.sqrt(np.clip(img, 0.02, 1))
    img = np.clip(img, 0, 1)
    if compound or rng.random() < 0.4 * strength:
        quality = int(rng.uniform(40, 80) if compound else rng.uniform(40, 95))
        ok, buf = cv2.imencode(".jpg", np.rint(img * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    # depth: noise growing with z^2, holes in blobs, on dark colour, and the occlusion band
    valid = dep > 0
    z = rng.uniform(0.3, 1.2)
    sigma_mm = z * z * SUBPIXEL / (FOCAL_PX * BASELINE_M) * 1000.0 * (rng.uniform(1.0, 2.5) if compound else rng.uniform(0.5, 2.0)) * strength
    noise = (correlated_noise(rng, s, rng.uniform(0.5, 1.5)) if sensor == "correlated"
             else rng.standard_normal(dep.shape).astype(np.float32))
    dep = np.where(valid, dep + noise * sigma_mm / DEPTH_WINDOW_MM, 0)
    if sensor == "smoothed":
        dep = smooth_depth(dep.astype(np.float32), rng.uniform(0.7, 2.0))
    elif sensor == "terraced":
        step = z * z * rng.uniform(1 / 32, 1 / 8) / (FOCAL_PX * BASELINE_M) * 1000.0 / DEPTH_WINDOW_MM
        phase = rng.uniform(0, 1)
        dep = np.where(valid, (np.floor(dep / step + phase) + 0.5 - phase) * step, 0)
    holes = _blobs(rng, s, 10.0) < strength * rng.uniform(0.0, 0.15 if compound else 0.12)
    dark_surface = img.mean(axis=2) / key < 0.12
    holes |= dark_surface & (_blobs(rng, s, 4.0) < strength * rng.uniform(0.0, 0.8))
    if rng.random() < 0.3 * strength:
        band = int(rng.integers(1, 7))
        cols = np.argmax(valid, axis=1)  # first valid column per row: the left silhouette
        for row in np.flatnonzero(valid.any(axis=1)):
            holes[row, cols[row]:cols[row] + band] = True
    dep = np.where(holes, 0.0, np.clip(dep, 1e-4, 1.0) * valid)
    return img.transpose(2, 0, 1).astype(np.float32), dep[None].astype(np.float32), moved


def flat_light(img: np.ndarray, contrast: float, saturation: float, lift: float) -> np.ndarray:
    """An [S,S,3] image in [0, 1] lit flat: grey levels pulled toward the crop's mean by ``contrast``,
    colour toward grey by ``saturation`` (1 = unchanged for both), then ``lift`` of the way to white."""
    grey = img.mean(axis=2, keepdims=True)
    img = grey + saturation * (img - grey)
    img = grey.mean() + contrast * (img - grey.mean())
    return np.clip(img + lift * (1.0 - img), 0, 1).astype(np.float32)


def perturb_arrays(rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                   probability: float = 1.0, landmarks: np.ndarray | None = None, compound_fraction: float = 0.0,
                   flat_fraction: float = 0.0, sensor_fraction: float = 0.0, grey_fraction: float = 0.0,
                   dark_fraction: float = 0.0, level_fraction: float = 0.0, tone_fraction: float = 0.0,
                   toneable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A batch [N,3,S,S] / [N,1,S,S] (and landmarks [N,5,2]): each sample perturbed with ``probability``;
    a perturbed sample is a compound one with ``compound_fraction``, lit flat with ``flat_fraction``, has
    another sensor's depth with ``sensor_fraction``, is nearly grey with ``grey_fraction``, is exposed
    low-key with ``dark_fraction``, has its brightness levelled with ``level_fraction`` and its skin re-toned
    with ``tone_fraction`` (each drawn
    independently of the label, so live faces and attacks are changed alike; a share of 0 draws nothing,
    so older runs' batches stay as they were). ``toneable`` [N] bool, when given, keeps the re-toning to
    the faces it marks; the draw is made for every face, so the stream does not depend on it."""
    out_rgb, out_depth = rgb.copy(), depth.copy()
    out_lm = None if landmarks is None else landmarks.copy()
    for i in range(rgb.shape[0]):
        if rng.random() < probability:
            compound = compound_fraction > 0 and rng.random() < compound_fraction
            flat = flat_fraction > 0 and rng.random() < flat_fraction
            sensor = (SENSORS[int(rng.integers(len(SENSORS)))]
                      if sensor_fraction > 0 and rng.random() < sensor_fraction else None)
            grey = grey_fraction > 0 and rng.random() < grey_fraction
            dark = dark_fraction > 0 and rng.random() < dark_fraction
            level = level_fraction > 0 and rng.random() < level_fraction
            tone = tone_fraction > 0 and rng.random() < tone_fraction and (toneable is None or bool(toneable[i]))
            out_rgb[i], out_depth[i], moved = perturb_sample(rgb[i], depth[i], rng, strength,
                                                             None if landmarks is None else landmarks[i], compound, flat,
                                                             sensor, grey, dark, level, tone)
            if moved is not None:
                out_lm[i] = moved
    return out_rgb, out_depth, out_lm


def perturbed_copy(samples, seed: int = 424242, flat_fraction: float = 0.0, sensor_fraction: float = 0.0,
                   tone_fraction: float = 0.0, toneable: np.ndarray | None = None):
    """A :class:`edge.datasets.sampleset.SampleSet`'s faces through the camera realism at a fixed seed
    (every sample), that share of them lit flat, that share with another stereo camera's depth and that
    share with the skin re-toned (of the faces ``toneable`` marks, when given)."""
    from edge.datasets.sampleset import DEPTH_SCALE, SampleSet

    rgb, depth = samples.arrays(slice(0, len(samples)))
    rgb, depth, landmarks = perturb_arrays(rgb, depth, np.random.default_rng(seed), landmarks=samples.landmarks,
                                           flat_fraction=flat_fraction, sensor_fraction=sensor_fraction,
                                           tone_fraction=tone_fraction, toneable=toneable)
    return SampleSet(np.rint(rgb * 255).astype(np.uint8), np.rint(depth * DEPTH_SCALE).astype(np.uint16),
                     samples.is_attack, samples.pai, samples.subject, samples.gate, dict(samples.provenance), landmarks)


# Mirroring a face swaps its sides: right eye <-> left eye, mouth right <-> mouth left.
MIRROR_ORDER = (1, 0, 2, 4, 3)


def mirror_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """[..., 5, 2] crop-coordinate landmarks of the horizontally mirrored crops."""
    out = landmarks[..., MIRROR_ORDER, :].copy()
    out[..., 0] = 1.0 - out[..., 0]
    return out
