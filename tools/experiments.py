"""The model experiments: cross-world, leave-one-species-out, RGB-D vs RGB-only, all at one budget.

Each run trains the ``edge`` preset through ``edgefas train``, exports it, and scores held-out test
splits (subjects never seen in training; people never seen, in the photo world) through
``edgefas eval`` with ONNX Runtime, so the numbers are those of the deployable artifact, at the
threshold chosen on the run's own dev split. Results go to ``OUT/results.json`` and ``results.md``.

    python tools/experiments.py --steps 300 --batch 8 --out runs/experiments [--only NAME ...]
        [--train-args "--colour-blind 2 --species-mix hard"] [--parallel N] [--train-only]

Runs: ``both-rgbd`` / ``both-rgb`` (both worlds, RGB-D and RGB-only), the same for ``procedural-*`` and
``photo-*``, and leave-one-species-out for every photo species, on both worlds (``both-loo-SPECIES``) or
on the photo world alone (``photo-loo-SPECIES``, whose control is ``photo-rgbd``).

Runs that already have their results are skipped, and a training stopped part-way continues from its
last checkpoint (``edgefas train --resume``), so the script can be stopped and run again. ``--parallel``
trains that many runs at once (on a GPU machine with many cores; on a 2-core machine one at a time is
as fast): each run's batches are made on the CPU, so more runs than cores/2 slow every one of them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EDGEFAS = [sys.executable, "-m", "edge.cli.app"]
WORLDS = {"procedural": "synthetic", "photo": "photo"}
PROCEDURAL_SPECIES = ("print", "replay", "mask", "cutout")
PHOTO_SPECIES = ("print", "replay", "mask", "cutout", "glasses", "wrapped", "silicone", "mannequin")


def runs(counts: dict[str, str]) -> list[tuple[str, list[str], str, list[str]]]:
    """(name, worlds trained on, train protocol, extra train args)."""
    both = ["procedural", "photo"]
    out = [("both-rgbd", both, "", []), ("both-rgb", both, "", ["--rgb-only"]),
           ("procedural-rgbd", ["procedural"], "", []), ("procedural-rgb", ["procedural"], "", ["--rgb-only"]),
           ("photo-rgbd", ["photo"], "", []), ("photo-rgb", ["photo"], "", ["--rgb-only"])]
    for prefix, worlds in (("both", both), ("photo", ["photo"])):
        out += [(f"{prefix}-loo-{species}", worlds, f"LOO_{species}", []) for species in PHOTO_SPECIES]
    return out


SPECIES_OF = {"procedural": PROCEDURAL_SPECIES, "photo": PHOTO_SPECIES}


def spec(worlds: list[str], counts: dict[str, str], protocol: str) -> str:
    """The joined dataset spec; a leave-one-out protocol goes on the worlds that have that species (the
    others keep their grand test: there is nothing of it to leave out, and their specs refuse it)."""
    def held(world: str) -> bool:
        return bool(protocol) and (not protocol.startswith("LOO_") or protocol[4:] in SPECIES_OF[world])

    return "+".join(f"{WORLDS[w]}:{counts[w]}" + (f"#{protocol}" if held(w) else "") for w in worlds)


def train_command(folder: Path, worlds: list[str], protocol: str, extra: list[str], args: argparse.Namespace,
                  train_counts: dict[str, str], eval_counts: dict[str, str], common: list[str]) -> list[str]:
    """``edgefas train`` for one run: its worlds (with the protocol on train and dev), the shared budget,
    ``--resume`` (a run stopped part-way continues from its last checkpoint), then the run's own
    arguments and ``--train-args``."""
    return (EDGEFAS + ["train", "--preset", "edge", "--dataset", spec(worlds, train_counts, protocol),
                       "--dev-dataset", spec(worlds, eval_counts, protocol), "--out", str(folder),
                       "--steps", str(args.steps), "--batch", str(args.batch), "--lr", str(args.lr),
                       "--threads", str(args.threads), "--resume"]
            + extra + shlex.split(args.train_args) + common)


def run(cmd: list[str], log: Path) -> None:
    with log.open("a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--train-count", default="procedural=4000,photo=3000")
    ap.add_argument("--eval-count", default="procedural=1200,photo=1200")
    ap.add_argument("--cache-dir", default="out/cache")
    ap.add_argument("--model-dir", default="../shared/data/models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/experiments"))
    ap.add_argument("--only", nargs="*", help="run only these names")
    ap.add_argument("--train-args", default="", help="more `edgefas train` options for every run, one string")
    ap.add_argument("--parallel", type=int, default=1, help="train this many runs at once")
    ap.add_argument("--train-only", action="store_true", help="train and export the runs, score nothing")
    args = ap.parse_args()
    if args.parallel < 1:
        ap.error("--parallel must be at least 1")
    train_counts = dict(kv.split("=") for kv in args.train_count.split(","))
    eval_counts = dict(kv.split("=") for kv in args.eval_count.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--cache-dir", args.cache_dir, "--detector", "yunet", "--model-dir", args.model_dir]
    known = runs(train_counts)
    unknown = sorted(set(args.only or ()) - {r[0] for r in known})
    if unknown:
        ap.error(f"--only: no run named {', '.join(unknown)}; the runs are {', '.join(r[0] for r in known)}")
    chosen = [r for r in known if not args.only or r[0] in args.only]

    def train(name: str, worlds: list[str], protocol: str, extra: list[str]) -> None:
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / "log.txt"
        if (folder / "model.onnx").is_file():
            return
        started = time.perf_counter()
        run(train_command(folder, worlds, protocol, extra, args, train_counts, eval_counts, common), log)
        (folder / "train_wall_s.txt").write_text(f"{time.perf_counter() - started:.0f}\n")
        run(EDGEFAS + ["export", "--model", str(folder / "model.pt"), "--out", str(folder / "model.onnx")], log)

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:  # threads only wait on their subprocesses
        for done in [pool.submit(train, *r) for r in chosen]:
            done.result()  # a failed run stops the script with its error (its log.txt says more)
    if args.train_only:
        return
    results: dict[str, dict] = {}
    for name, worlds, protocol, extra in chosen:
        folder = args.out / name
        log = folder / "log.txt"
        results[name] = {}
        species = protocol[4:] if protocol else ""
        for world in ("procedural", "photo"):
            if species and species not in (PHOTO_SPECIES if world == "photo" else PROCEDURAL_SPECIES):
                continue  # the left-out species does not exist in that world
            result_file = folder / f"test-{world}.json"
            if not result_file.is_file():
                run(EDGEFAS + ["eval", "--model", str(folder / "model.onnx"), "--dataset",
                               f"{WORLDS[world]}:{eval_counts[world]}", "--split", "test", "--json", str(result_file)]
                    + (["--protocol", protocol] if protocol else []) + common, log)
            results[name][world] = json.loads(result_file.read_text())
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    lines = [f"Budget per run: {args.steps} steps, batch {args.batch}, lr {args.lr}; test = held-out subjects "
             f"(photo world: people never seen in training), threshold from each run's dev split.", "",
             "| run | test world | ACER | APCER worst | BPCER | EER | AUC | APCER per species |",
             "|---|---|---|---|---|---|---|---|"]
    for name, per_world in results.items():
        for world, r in per_world.items():
            per = ", ".join(f"{k} {v:.1%}" for k, v in sorted(r["apcer"].items()))
            lines.append(f"| {name} | {world} | {r['acer']:.2%} | {r['apcer_max']:.2%} | {r['bpcer']:.2%} | "
                         f"{r['eer']:.2%} | {r['auc']:.3f} | {per} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
