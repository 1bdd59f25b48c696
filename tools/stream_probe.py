"""Which stream carries an attack species' cue on unseen people? A small CNN per input, live vs one species.

A probe, not a product model: a four-block CNN (16-64 channels, about 47 k weights) is trained on the
train split's live faces and one attack species, on the depth crop alone, the colour crop alone, or
both stacked as four channels, with the training's camera realism (``train.augment``) unless
``--no-augment``; then read on the test split (people never seen in training), clean and as
``tools/robustness.py``'s copies (``--copies``, default depth and combined). Its AUC beside the bundled model's
on the same faces says whether a cue is in a stream at all, and whether the full model uses it. Each copy
is also read at the **clean line**, the score that refuses 1 % of the clean test owners: the share of the
copy's owners refused and of its attacks passing there. With ``--copies skin-brown,skin-dark`` that says
whether a probe's cue is skin colour (it would refuse darker owners at a line drawn on light ones). With ``--unseen``
the probe trains on live faces against every *other* species and is read on the named one: does a
stream's cue for it carry from the species it has seen (leave one species out)?

    python tools/stream_probe.py --species silicone --streams depth,rgb,both --steps 600 --seeds 0,1 \\
        --train photo:3000 --test photo:1200 --cache-dir out/cache --model-dir ../shared/data/models
    python tools/stream_probe.py --species mannequin --streams rgb --seeds 0 --copies depth,combined,skin-brown,skin-dark
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.metrics import area_under_curve, equal_error_rate, scored_set  # noqa: E402

STREAMS = ("depth", "rgb", "both")
CLEAN_LINE_BPCER = 0.01  # the clean line refuses this share of the clean test owners


def parse_copies(text: str, kinds: tuple[str, ...]) -> tuple[str, ...]:
    """``--copies``: comma-separated copies of ``tools/robustness.py`` (``kinds``), read after the clean split."""
    asked = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in asked if k not in kinds]
    if bad:
        raise SystemExit(f"--copies {text}: {', '.join(bad)} is not a copy; use some of {', '.join(kinds)}")
    return ("clean", *dict.fromkeys(k for k in asked if k != "clean"))


def clean_line(clean_scores: np.ndarray, clean_y: np.ndarray) -> float:
    """The score that refuses :data:`CLEAN_LINE_BPCER` of the clean owners (higher scores are attacks)."""
    return float(np.quantile(clean_scores[clean_y == 0], 1.0 - CLEAN_LINE_BPCER))


def species_arrays(samples, species: str, others: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour [N,3,S,S], depth [N,1,S,S] (float32) and labels (1 = attack) of the live faces and that
    species of ``samples``; with ``others``, the live faces and every attack species but that one."""
    if not (samples.pai == species).any():
        raise SystemExit(f"--species {species}: no such attack in this set (has: "
                         f"{', '.join(sorted(set(samples.pai[samples.is_attack == 1].tolist())))})")
    attack = (samples.pai != "") & (samples.pai != species) if others else samples.pai == species
    if not attack.any():
        raise SystemExit(f"--species {species} --unseen: this set has no other attack species to train against")
    keep = (samples.pai == "") | attack
    rgb, depth = samples.arrays(np.flatnonzero(keep))
    return rgb, depth, attack[keep].astype(np.float32)


def select(rgb: np.ndarray, depth: np.ndarray, stream: str) -> np.ndarray:
    """The probe's input: one stream, or both stacked as four channels."""
    return {"depth": depth, "rgb": rgb, "both": np.concatenate([rgb, depth], axis=1)}[stream]


def make_net(channels: int):
    import torch.nn as nn

    widths = [channels, 16, 32, 48, 64]
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.head = nn.Linear(widths[-1], 1)

        def forward(self, x):
            return self.head(self.features(x).mean((2, 3))).squeeze(1)

    return Probe()


def train_probe(rgb: np.ndarray, depth: np.ndarray, y: np.ndarray, stream: str, steps: int, seed: int,
                augment: bool, batch: int = 32):
    """A probe trained on balanced batches (half ``y`` = 1); with ``augment`` each batch gets the
    training's camera realism on both streams together (dark colour makes depth holes), then the
    probe's stream is kept."""
    import torch

    from train.augment import perturb_arrays
    from train.run import AUGMENT_PROBABILITY

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = make_net(select(rgb[:1], depth[:1], stream).shape[1])
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    for _ in range(steps):
        idx = np.concatenate([rng.choice(pos, batch // 2), rng.choice(neg, batch - batch // 2)])
        rb, db = rgb[idx], depth[idx]
        if augment:
            rb, db, _ = perturb_arrays(rb, db, rng, probability=AUGMENT_PROBABILITY)
        xt = torch.from_numpy(np.ascontiguousarray(select(rb, db, stream)))
        if rng.random() < 0.5:
            xt = xt.flip(3)
        loss = loss_fn(net(xt), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return net


def probe_scores(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.cat([net(torch.from_numpy(x[i:i + 256])) for i in range(0, len(x), 256)]).numpy()


def separation(scores: np.ndarray, y: np.ndarray, species: str, line: float | None = None) -> dict[str, float]:
    """AUC and EER of live (``y`` 0) against the species (1); with ``line``, the owners refused
    (score >= line) and the attacks passing (score < line) there."""
    data = scored_set(scores, y.astype(bool), np.where(y == 1, species, ""))
    out = {"auc": area_under_curve(data), "eer": equal_error_rate(data).eer}
    if line is not None:
        out["owners_refused"] = float(np.mean(scores[y == 0] >= line))
        out["attacks_passing"] = float(np.mean(scores[y == 1] < line))
    return out


def read_copies(scores: dict[str, np.ndarray], labels: dict[str, np.ndarray], species: str) -> dict[str, dict]:
    """Each copy's separation, and its owners and attacks at the clean copy's line."""
    line = clean_line(scores["clean"], labels["clean"])
    return {name: separation(scores[name], labels[name], species, line) for name in scores}


def _row(row: dict[str, dict]) -> str:
    return ", ".join(f"{k} {v['auc']:.3f} / {v['eer']:.1%} (clean line: owners {v['owners_refused']:.1%}, "
                     f"passing {v['attacks_passing']:.1%})" for k, v in row.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--species", required=True, help="attack species against live faces (e.g. silicone)")
    ap.add_argument("--streams", default="depth,rgb,both", help=f"comma-separated: {', '.join(STREAMS)}")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--no-augment", action="store_true", help="train on the crops as rendered")
    ap.add_argument("--unseen", action="store_true",
                    help="train against every other species, read on --species (left out of training)")
    ap.add_argument("--train", default="photo:3000", help="dataset spec read at its train split")
    ap.add_argument("--test", default="photo:1200", help="dataset spec read at its test split")
    ap.add_argument("--model", type=Path, default=None,
                    help="also score the same faces with this ONNX model (default: the bundled one)")
    ap.add_argument("--copies", default="depth,combined",
                    help="comma-separated copies of tools/robustness.py read beside the clean split "
                         "(e.g. skin-brown,skin-dark)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=Path("out/cache"))
    ap.add_argument("--model-dir", type=Path, default=Path("../shared/data/models"))
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    bad = [s for s in streams if s not in STREAMS]
    if bad or not streams:
        raise SystemExit(f"--streams {args.streams}: use some of {', '.join(STREAMS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds {args.seeds}: comma-separated integers") from None

    import torch

    from calibration.scoring import score_samples
    from edge.datasets.sampleset import prepare_samples
    from edge.face.preprocess import PreprocessConfig
    from engines.bundled import default_model_path
    from engines.runner import open_runner
    from robustness import KINDS, perturb

    names = parse_copies(args.copies, KINDS)
    torch.set_num_threads(args.threads)
    runner = open_runner(args.model or default_model_path())
    config = PreprocessConfig.from_metadata(runner.contract)
    train = prepare_samples(args.train, "train", config, "yunet", args.model_dir, args.cache_dir)
    test = prepare_samples(args.test, "test", config, "yunet", args.model_dir, args.cache_dir)
    copies = {name: perturb(test, name) for name in names}
    keep = (test.pai == "") | (test.pai == args.species)
    labels = {name: (copy.pai[keep] == args.species).astype(np.float32) for name, copy in copies.items()}
    results: dict[str, dict] = {"model": read_copies(
        {name: score_samples(runner, copy.subset(keep)).scores for name, copy in copies.items()}, labels, args.species)}
    runner.close()
    print(f"{args.species} vs live, test split of {args.test}: AUC / EER")
    print(f"  {runner.path.name} (the full model): {_row(results['model'])}", flush=True)
    rgb, depth, y = species_arrays(train, args.species, others=args.unseen)
    if args.unseen:
        seen = sorted(set(train.pai[train.pai != ""].tolist()) - {args.species})
        print(f"  probes train on live faces against {', '.join(seen)} ({int(y.sum())} attacks, "
              f"{int((y == 0).sum())} live); {args.species} is unseen", flush=True)
    held = {name: species_arrays(copy, args.species) for name, copy in copies.items()}
    for stream in streams:
        runs = []
        for seed in seeds:
            started = time.perf_counter()
            net = train_probe(rgb, depth, y, stream, args.steps, seed, not args.no_augment)
            row = read_copies({name: probe_scores(net, select(trgb, tdepth, stream))
                               for name, (trgb, tdepth, _) in held.items()},
                              {name: ty for name, (_, _, ty) in held.items()}, args.species)
            runs.append(row)
            print(f"  probe {stream}, seed {seed} ({time.perf_counter() - started:.0f} s): {_row(row)}", flush=True)
        results[stream] = runs
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
