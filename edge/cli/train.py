"""``edgefas train``: train a preset on a dataset through the runtime's own preprocessing."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from edge.cli.options import (
    cache_dir_option,
    dataset_spec_option,
    detector_option,
    finite,
    model_dir_option,
    output_file,
    seed_option,
    threads_option,
)
from edge.cli.progress import named_bars
from edge.errors import ConfigError, check_choice
from edge.face.finder import check_detector


def train(
    preset: str | None = typer.Option(None, "--preset", help="Model preset: edge (128 px, real time on a Jetson; the default), edge-wide (128 px, wider, for INT8 on CPU) or paper (256 px)."),
    dataset: str = dataset_spec_option("synthetic:4000", note="Training data: its train split trains the model, "
                                       "its dev split calibrates the score."),
    out: Path = typer.Option(Path("runs/edge"), "--out", file_okay=False,
                             help="Run folder: checkpoints, metrics.csv, TensorBoard logs, model.pt."),
    steps: int = typer.Option(2000, "--steps", min=0,
                              help="Training steps (generator updates). 0, with --init: none; the --init network "
                                   "as it is, with a fresh depth guard warmed up if --depth-guard, its batch-norm "
                                   "statistics and score calibrated on this run's data."),
    time_limit: float | None = typer.Option(None, "--time-limit", min=0.01, max=10080, callback=finite(),
                                            metavar="MINUTES",
                                            help="Stop at the first step after this many minutes of training "
                                                 "(loading the data is not counted), as if --steps had been the "
                                                 "step reached (the learning rate must be constant): for a machine "
                                                 "lent for a fixed time. The step reached is reported."),
    checkpoint_only: bool = typer.Option(False, "--checkpoint-only",
                                         help="Write OUT/last.pt only, not model.pt (no calibration on dev): "
                                              "`edgefas train --resume --steps <the step reached> --out OUT` with "
                                              "the same data ships it later, e.g. on another machine."),
    checkpoint_every: int | None = typer.Option(None, "--checkpoint-every", min=1, metavar="STEPS",
                                                help="Write OUT/last.pt every this many steps (and at the end), so "
                                                     "a stopped run loses at most that many: `--resume` continues "
                                                     "it (default: 100; a resumed run keeps its own unless given)."),
    # at most 1024: a step holds about 35 MiB per edge-preset face (forward and backward, measured on CPU) and
    # four times that at the paper preset's 256 px, so 1024 faces are 35-140 GiB, past any one training
    # machine; a larger batch failed in its first allocation with a traceback
    batch: int | None = typer.Option(None, "--batch", min=2, max=1024, help="Batch size, half live and half attacks (default: 16)."),
    seed: int | None = seed_option(None, help="Seed for weights, batches and synthesis (default: 0)."),
    lr: float = typer.Option(None, "--lr", callback=finite(above=0), help="Learning rate (default: STDN's 6e-5)."),
    lr_schedule: str | None = typer.Option(None, "--lr-schedule",
                                           help="The learning rate over the run: constant (the default) or cosine "
                                                "(half a cosine from --lr at the first step down towards 0 at "
                                                "--steps; not with --time-limit; docs/lr-schedule.md). Kept in "
                                                "checkpoints like --augment: --resume finishes the run's own "
                                                "--steps."),
    augment: str | None = typer.Option(None, "--augment",
                                       help="Camera realism in training: standard (the default), wide (30 % of "
                                            "the augmented faces get blur, JPEG and strong depth noise together; "
                                            "train/augment.py) or glasses (standard, and a quarter of the faces, live "
                                            "and attack alike, wear real eyeglasses; train/eyeglasses.py) or "
                                            "glasses-flat (glasses, and 30 % of the augmented faces, live and "
                                            "attack alike, lit flat and washed out like a studio portrait) or "
                                            "glasses-sensor (glasses, and 40 % of the augmented faces with another "
                                            "stereo camera's depth: smoothed, correlated or terraced) or "
                                            "glasses-flat-sensor (glasses-flat's flat light and glasses-sensor's depth, each drawn "
                                            "on its own) or glasses-flat-sensor-grey (that, and 20 % of the augmented "
                                            "faces, live and attack alike, with most of their colour gone) or "
                                            "glasses-flat-sensor-dark (glasses-flat-sensor, and 20 % of the augmented "
                                            "faces, live and attack alike, exposed 1-2 stops under) or "
                                            "glasses-flat-sensor-level (glasses-flat-sensor, and 60 % of the augmented "
                                            "faces, live and attack alike, scaled to one shared range of brightness "
                                            "first) or glasses-flat-sensor-tone (glasses-flat-sensor, and 50 % of "
                                            "the augmented faces, live and attack alike, with their skin re-toned "
                                            "toward tan, brown or dark: train/skin_tone.py) or glasses-flat-sensor-phototone "
                                            "(the same with 60 %, and only the faces of the worlds built from "
                                            "photographs, photo/photomix/photomorph: the procedural heads' skin "
                                            "spans the range already). Kept in "
                                            "checkpoints: --resume continues the run's own."),
    species_mix: str | None = typer.Option(None, "--species-mix",
                                           help="Attack species per batch: even (the default), or hard: every 50 "
                                                "steps more of the species the network still ranks with live faces "
                                                "(train/species_mix.py); or hard-camera: the same, each species as hard as it is "
                                                "in the worst camera condition --augment trains with (as rendered, "
                                                "lit flat, another camera's depth, skin re-toned); or hard-world: hard, with each world's "
                                                "species on its own share when --dataset joins worlds (the procedural "
                                                "and the photo mask are two kinds); or hard-door: hard-camera's "
                                                "conditions, each species as hard as the share of it that passes "
                                                "where 1 % of live faces are refused (the owner-first point "
                                                "the models ship at); or hard-door-world: hard-door with each world's "
                                                "species on its own share. Kept in checkpoints like --augment."),
    colour_blind: float | None = typer.Option(None, "--colour-blind", min=0.0, max=10.0, callback=finite(),
                                              help="Weight of a colour-blind step (0, the default, = off): each "
                                                   "batch again with grey colour, so the depth stream must find "
                                                   "every attack on its own (1 = the main ESR weight). Kept in "
                                                   "checkpoints like --augment."),
    partial: float | None = typer.Option(None, "--partial", min=0.0, max=1.0, callback=finite(),
                                         help="Share of the synthesised attacks (a real attack's trace moved onto "
                                              "a live face) kept in one region of the face only: an eye band, the "
                                              "mouth, the upper or lower half, one side (0, the default, = off; "
                                              "docs/partial-synthesis.md). Kept in checkpoints like --augment."),
    qat: str | None = typer.Option(None, "--qat",
                                   help="Quantisation-aware fine-tuning for an INT8 build: off (the default), cpu "
                                        "or tensorrt (the --build of edgefas calibrate int8). Every training pass "
                                        "rounds weights and activations as that build will, so that its scores "
                                        "stay those of fp32 (train/qat.py). Kept in checkpoints like --augment."),
    ema: float | None = typer.Option(None, "--ema", min=0.0, max=0.9999, callback=finite(),
                              help="Ship an exponential moving average of the weights with this decay (0.99 "
                                   "averages about the last 100 steps; 0, the default, = the last step's weights). "
                                   "Kept in checkpoints, so --resume continues it."),
    depth_guard: bool | None = typer.Option(None, "--depth-guard/--no-depth-guard",
                                            help="Add a small depth-only network beside the two streams whose "
                                                 "attack call colour cannot overrule: the score is the larger of "
                                                 "the network's and the guard's, placed so that the guard alone "
                                                 "refuses 0.5 % of the dev live faces (docs/depth-guard.md). "
                                                 "Default: off, or as --init's checkpoint. Kept in checkpoints."),
    exposure_mean: float | None = typer.Option(None, "--exposure-mean", min=0.0, max=0.95, callback=finite(),
                                               help="Level each face crop's colour to this mean brightness inside "
                                                    "the network (e.g. 0.45), so that the score cannot read how "
                                                    "bright the camera exposed the face; the ONNX input stays "
                                                    "plain RGB (docs/exposure-normalisation.md). 0 = colour as "
                                                    "captured. Default: 0, or as --init's checkpoint. Kept in "
                                                    "checkpoints."),
    exposure_contrast: float | None = typer.Option(None, "--exposure-contrast", min=0.0, max=0.45, callback=finite(),
                                                   help="With --exposure-mean: also scale each levelled crop's "
                                                        "contrast (its standard deviation) to this (e.g. 0.24), so "
                                                        "that flat light and a washed-out picture read as the same "
                                                        "face (docs/exposure-normalisation.md). 0 = contrast as "
                                                        "captured. Default: 0, or as --init's checkpoint."),
    rgb_only: bool = typer.Option(False, "--rgb-only", help="Ablation: train without the depth stream."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt with its own preset, batch, seed, learning rate and its schedule, average, camera realism, species mix, colour-blind weight, partial share, QAT, depth guard and exposure level (an option given that differs is refused)."),
    init: Path = typer.Option(None, "--init", exists=True, dir_okay=False,
                              help="Start from this checkpoint's weights (fine-tuning, e.g. the bundled "
                                   "engines/models/edge-synthetic.pt): same preset, fresh optimiser, step 0."),
    dev_dataset: str = dataset_spec_option(None, flag="--dev-dataset", note="Dev data for calibration, read at its "
                                           "dev split (default: DATASET's dev split)."),
    detector: str = detector_option(note="Used on full frames."),
    model_dir: Path = model_dir_option(),
    cache_dir: Path = cache_dir_option("samples"),
    threads: int = threads_option("torch CPU threads (default: torch's choice)."),
) -> None:
    """Train the two-stream spoof-trace network; the final model.pt carries its preprocessing and threshold.

    Data-parallel on several GPUs or nodes: start it with torchrun, e.g.
    `torchrun --nproc-per-node 4 -m edge.cli.app train ...` (gloo on CPU, NCCL on GPUs).
    """
    from train.model.presets import PRESETS  # the train package imports torch
    from train.run import AUGMENTS, TrainJob, run_training

    if preset is not None:
        check_choice(preset, PRESETS, "--preset")
    if augment is not None:
        check_choice(augment, AUGMENTS, "--augment")
    if species_mix is not None:
        from train.species_mix import SPECIES_MIX

        check_choice(species_mix, SPECIES_MIX, "--species-mix")
    if qat is not None:
        from train.model.objective import QAT_CHOICES

        check_choice(qat, QAT_CHOICES, "--qat")
    if lr_schedule is not None:
        from train.model.objective import LR_SCHEDULES

        check_choice(lr_schedule, LR_SCHEDULES, "--lr-schedule")
    if init is not None and resume:
        raise ConfigError("give --init (start a new run from a checkpoint) or --resume (continue OUT/last.pt), "
                          "not both")
    if rgb_only and depth_guard:
        raise ConfigError("--depth-guard reads the depth stream: it cannot run with --rgb-only (leave one out)")
    if rgb_only and colour_blind:
        # TrainConfig refuses it too; said here before minutes of preprocessing
        raise ConfigError("--colour-blind trains the depth stream: it cannot run with --rgb-only (leave one out)")
    if checkpoint_only and steps == 0:
        raise ConfigError("--checkpoint-only with --steps 0 trains nothing and so writes no last.pt: give steps, "
                          "or leave --checkpoint-only out to calibrate the --init network")
    check_detector(detector)
    job = TrainJob(preset=preset, dataset=dataset, dev_dataset=dev_dataset, out_dir=out, steps=steps, batch_size=batch,
                   seed=seed, learning_rate=lr, lr_schedule=lr_schedule, ema_decay=ema, augment=augment, species_mix=species_mix, colour_blind_weight=colour_blind,
                   partial_fraction=partial, qat=qat, depth_guard=depth_guard, exposure_mean=exposure_mean,
                   exposure_contrast=exposure_contrast,
                   modalities=("rgb",) if rgb_only else None,
                   resume=resume, init=init, cache_dir=cache_dir, detector=detector, model_dir=model_dir, threads=threads,
                   time_limit_s=None if time_limit is None else 60.0 * time_limit, ship=not checkpoint_only,
                   checkpoint_every=checkpoint_every)
    with named_bars(info=True) as report:
        def on_frame(split: str, i: int, n: int) -> None:
            report(f"preprocess {split}", i, n)

        def on_step(step: int, total: int, losses: dict) -> None:
            report("train", step, total, info=" ".join(f"{k}={v:.3g}" for k, v in list(losses.items())[:3]))

        def on_warmup(step: int, total: int, loss: float) -> None:
            report("depth guard warm-up", step, total, info=f"loss={loss:.3g}")

        summary = run_training(job, on_step=on_step, on_frame=on_frame, on_warmup=on_warmup)
    if checkpoint_only:
        Console().print(f"wrote {summary.checkpoint} at step {summary.steps} in {summary.wall_s / 60:.1f} min, not "
                        f"shipped: `edgefas train --resume --steps {summary.steps} --out {out}` with the same "
                        "--dataset and --dev-dataset writes model.pt")
        return
    r = summary.dev_report
    if not r:  # a non-zero rank of a distributed run: rank 0 reports
        return
    Console().print(
        f"wrote {summary.checkpoint} after {summary.steps} steps in {summary.wall_s / 60:.1f} min "
        f"(peak RSS {summary.peak_rss_mib:.0f} MiB); dev: EER {r['eer']:.2%}, ACER {r['acer']:.2%} at threshold "
        f"{summary.threshold:.4f}, alpha {summary.alpha}")


def average(
    models: list[Path] = typer.Argument(..., exists=True, dir_okay=False, show_default=False, metavar="MODEL.pt",
                                        help="model.pt files of runs fine-tuned from the same weights (one preset, "
                                             "one set of streams). One file alone: its weights calibrated again, "
                                             "e.g. at another --threshold-target."),
    dataset: str = dataset_spec_option(..., note="The runs' training data: its train split gives the average its "
                                       "BatchNorm statistics."),
    dev_dataset: str = dataset_spec_option(..., flag="--dev-dataset", note="Dev data, read at its dev split: alpha "
                                           "and the threshold are chosen on it as at the end of a training run."),
    out: Path = typer.Option(..., "--out", dir_okay=False, callback=output_file,
                             help="model.pt to write (not one of the inputs); OUT's stem + .average.json names "
                                  "the sources."),
    threshold_target: str = typer.Option("eer", "--threshold-target",
                                         help="Operating point, as `edgefas calibrate threshold --target` (default: "
                                              "eer, the rule a training run ends with)."),
    seed: int = seed_option(0, help="Seed of the BatchNorm batches."),
    weight: list[float] | None = typer.Option(None, "--weight", metavar="W",
                                              help="Relative weight of each MODEL.pt, once per model in their order "
                                                   "(default: equal). `A.pt B.pt --weight 2 --weight 1` is two "
                                                   "thirds A: a point between a model and its fine-tune."),
    detector: str = detector_option(note="Used on full frames."),
    model_dir: Path = model_dir_option(),
    cache_dir: Path = cache_dir_option("samples"),
) -> None:
    """Average the weights of several fine-tunes and calibrate the result like a training run.

    The average of runs fine-tuned from one model is often better than each (docs/weight-average.md).

    BatchNorm statistics are recomputed on training faces, alpha and the threshold chosen on dev.
    """
    from train.average import average_checkpoints

    check_detector(detector)  # the target and --out are checked by average_checkpoints before any model is loaded
    with named_bars() as report:
        def on_frame(split: str, i: int, n: int) -> None:
            report(f"preprocess {split}", i, n)

        def on_stage(text: str) -> None:
            report(text, 0, None)

        summary = average_checkpoints(models, dataset, dev_dataset, out, cache_dir, model_dir, detector,
                                      threshold_target, seed, weight, on_frame=on_frame, on_stage=on_stage)
    eer = summary["dev_eer"]
    what = "one model calibrated again" if len(models) == 1 else (
        f"average of {len(models)} models" + ("" if not weight else
                                              " (shares " + ", ".join(f"{x:.3g}" for x in summary["shares"]) + ")"))
    Console().print(f"wrote {out}: {what}; dev: EER "
                    f"{'n/a' if eer is None else f'{eer:.2%}'} at threshold {summary['threshold']:.4f}, "
                    f"alpha {summary['alpha']}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("average")(average)
