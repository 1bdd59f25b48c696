"""The model experiments of the issue note: RGB-D vs RGB-only at the same budget, and leave-one-out.

Each run trains the ``edge`` preset on the synthetic world through ``edgefas train`` and scores the
held-out test split (subjects never seen in training) through ``edgefas eval`` with ONNX Runtime,
so the numbers are those of the deployable artifact. Results go to a JSON file and a Markdown table.

    python tools/experiments.py --steps 300 --batch 8 --out runs/experiments

Runs that already have a results file are skipped, so the script can be resumed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

EDGEFAS = [sys.executable, "-m", "edge.cli.app"]

RUNS = (
    # name, extra train args, train protocol, test protocol
    ("rgbd-grandtest", [], "", ""),
    ("rgb-only-grandtest", ["--rgb-only"], "", ""),
    ("rgbd-loo-mask", [], "LOO_mask", "LOO_mask"),
    ("rgbd-loo-replay", [], "LOO_replay", "LOO_replay"),
)


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
    ap.add_argument("--train", default="synthetic:4000")
    ap.add_argument("--dev", default="synthetic:1200")
    ap.add_argument("--test", default="synthetic:1200")
    ap.add_argument("--cache-dir", default="out/cache")
    ap.add_argument("--model-dir", default="../shared/data/models")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/experiments"))
    ap.add_argument("--only", nargs="*", help="run only these names")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--cache-dir", args.cache_dir, "--detector", "yunet", "--model-dir", args.model_dir]
    results = {}
    for name, extra, train_protocol, test_protocol in RUNS:
        if args.only and name not in args.only:
            continue
        folder = args.out / name
        result_file = folder / "test.json"
        if not result_file.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            log = folder / "log.txt"
            train_spec = args.train + (f"#{train_protocol}" if train_protocol else "")
            dev_spec = args.dev + (f"#{train_protocol}" if train_protocol else "")
            started = time.perf_counter()
            run(EDGEFAS + ["train", "--preset", "edge", "--dataset", train_spec, "--dev-dataset", dev_spec,
                           "--out", str(folder), "--steps", str(args.steps), "--batch", str(args.batch),
                           "--lr", str(args.lr), "--threads", str(args.threads)] + extra + common, log)
            train_s = time.perf_counter() - started
            run(EDGEFAS + ["export", "--model", str(folder / "model.pt"), "--out", str(folder / "model.onnx")], log)
            run(EDGEFAS + ["eval", "--model", str(folder / "model.onnx"), "--dataset", args.test, "--split", "test",
                           "--json", str(result_file)] + (["--protocol", test_protocol] if test_protocol else [])
                + common, log)
            data = json.loads(result_file.read_text())
            data["train_wall_s"] = train_s
            result_file.write_text(json.dumps(data, indent=2, sort_keys=True))
        results[name] = json.loads(result_file.read_text())
    (args.out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    lines = [f"Budget per run: {args.steps} steps, batch {args.batch}, lr {args.lr}; test = held-out subjects.",
             "", "| run | ACER | ACER print+replay | APCER worst | BPCER | EER | APCER per species |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        species = ", ".join(f"{k} {v:.1%}" for k, v in sorted(r["apcer"].items()))
        flat = [r["apcer"][k] for k in ("print", "replay") if k in r["apcer"]]
        acer_flat = f"{(max(flat) + r['bpcer']) / 2:.2%}" if flat else "-"
        lines.append(f"| {name} | {r['acer']:.2%} | {acer_flat} | {r['apcer_max']:.2%} | {r['bpcer']:.2%} | "
                     f"{r['eer']:.2%} | {species} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
