"""Write tiny fixtures in the published layouts of CASIA-SURF, CeFA, WMCA and HQ-WMCA.

The real sets cannot be redistributed (each needs a signed licence agreement), so the readers in
``edge/datasets/`` are tested on a handful of small images and HDF5 files laid out exactly as
docs/datasets.md describes each release. Every writer returns a manifest: what each frame *is*
(label, species, original code, subject, split), declared here by hand, so a test compares a
reader's output against the truth the fixture was built from rather than against a past run.

Usage::

    python tools/make_dataset_fixtures.py OUT_DIR     # writes OUT_DIR/{casia-surf,cefa,wmca,hqwmca}

Tests import this file and call the ``write_*`` functions on a temporary folder.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CROP_SIDE = 16  # pixels: small enough to write in milliseconds, big enough to be a real JPEG


@dataclass(frozen=True)
class FixtureFrame:
    """The truth about one frame a fixture wrote."""

    split: str  # train, dev, test
    label: str  # live, spoof
    pai: str  # our species, "" for live
    pai_code: str  # the dataset's own code, "" for live or where the layout hides it
    subject: str  # "" where the layout hides it


def _image(seed: int, channels: int, side: int = CROP_SIDE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (side, side, channels) if channels > 1 else (side, side)
    return rng.integers(30, 220, size=shape, dtype=np.uint8)


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _write_rgbd_jpegs(root: Path, color_rel: str, depth_rel: str, ir_rel: str, seed: int,
                      depth_side: int = CROP_SIDE) -> None:
    _write_image(root / color_rel, _image(seed, 3))
    # The sets store depth and IR as 3-channel gray JPEGs; depth crops need not match colour's size.
    _write_image(root / depth_rel, cv2.cvtColor(_image(seed + 1, 1, depth_side), cv2.COLOR_GRAY2BGR))
    _write_image(root / ir_rel, cv2.cvtColor(_image(seed + 2, 1), cv2.COLOR_GRAY2BGR))


# --------------------------------------------------------------------------------------------- CASIA-SURF

def write_casia_surf(root: Path, *, real_label: str = "1") -> list[FixtureFrame]:
    """CASIA-SURF challenge layout; ``real_label`` other than "1" writes a list with swapped polarity."""
    fake_label = "0" if real_label == "1" else "1"
    frames: list[FixtureFrame] = []
    train: list[str] = []
    seed = 0
    # (part, subject, video folder, frames, truth)
    videos = [
        ("real_part", "CLKJ_AS0137", "real.rssdk", 2, ("live", "", "")),
        ("fake_part", "CLKJ_AS0005", "04_en_b.rssdk", 2, ("spoof", "cutout", "04_en_b")),
        ("fake_part", "CLKJ_AS0005", "06_enm_b.rssdk", 1, ("spoof", "cutout", "06_enm_b")),
        ("real_part", "CLKJ_CS0110", "real.rssdk", 1, ("live", "", "")),
    ]
    for part, subject, folder, count, (label, pai, code) in videos:
        for index in range(count):
            base = f"Training/{part}/{subject}/{folder}"
            color, depth, ir = (f"{base}/{m}/{index + 1}.jpg" for m in ("color", "depth", "ir"))
            _write_rgbd_jpegs(root, color, depth, ir, seed, depth_side=CROP_SIDE - 2)
            seed += 3
            train.append(f"{color} {depth} {ir} {real_label if label == 'live' else fake_label}")
            frames.append(FixtureFrame("train", label, pai, code, subject))
    (root / "train_list.txt").write_text("\n".join(train) + "\n")

    for split, folder, list_name, labels in (("dev", "Val", "val_private_list.txt", ("live", "spoof", "spoof")),
                                             ("test", "Testing", "test_private_list.txt", ("spoof", "live"))):
        lines = []
        for index, label in enumerate(labels):
            stem = f"{folder}/{index:04d}/{index:06d}"
            color, depth, ir = f"{stem}-color.jpg", f"{stem}-depth.jpg", f"{stem}-ir.jpg"
            _write_rgbd_jpegs(root, color, depth, ir, seed)
            seed += 3
            lines.append(f"{color} {depth} {ir} {real_label if label == 'live' else fake_label}")
            frames.append(FixtureFrame(split, label, "cutout" if label == "spoof" else "", "", ""))
        (root / list_name).write_text("\n".join(lines) + "\n")
    # The unlabelled list the challenge published before the labels (3 columns).
    public = [" ".join(line.split()[:3]) for line in (root / "val_private_list.txt").read_text().splitlines()]
    (root / "val_public_list.txt").write_text("\n".join(public) + "\n")
    return frames


# --------------------------------------------------------------------------------------------------- CeFA

CEFA_PROTOCOL = "4@1"


def write_cefa(root: Path, *, live_label: str = "1") -> list[FixtureFrame]:
    """CeFA challenge layout for protocol 4@1; ``live_label`` picks the release's polarity."""
    spoof_label = "0" if live_label == "1" else "1"
    frames: list[FixtureFrame] = []
    seed = 100
    train: list[str] = []
    # Race_ID_Device_Session_PAI folders: PAI 1 real, 2 cloth, 3 photo, 4 screen.
    videos = [("1_000_1_1_1", 2, ("live", "", "")), ("1_000_1_1_4", 2, ("spoof", "replay", "4")),
              ("1_001_1_2_1", 1, ("live", "", "")), ("1_001_1_1_3", 1, ("spoof", "print", "3"))]
    for video, count, (label, pai, code) in videos:
        for index in range(count):
            base = f"train/{video}"
            profile, depth, ir = (f"{base}/{m}/{index + 1:04d}.jpg" for m in ("profile", "depth", "ir"))
            _write_rgbd_jpegs(root, profile, depth, ir, seed)
            seed += 3
            train.append(f"{profile} {live_label if label == 'live' else spoof_label}")
            race, ident = video.split("_")[:2]
            frames.append(FixtureFrame("train", label, pai, code, f"{race}_{ident}"))
    (root / f"{CEFA_PROTOCOL}_train.txt").write_text("\n".join(train) + "\n")

    dev_lines, dev_res = [], []
    # Anonymised dev videos; protocol 4 dev attacks are screen replays by the protocol's definition.
    for video, count, label in (("dev/003000", 2, "live"), ("dev/003001", 3, "spoof")):
        for index in range(count):
            profile, depth, ir = (f"{video}/{m}/{index + 1:04d}.jpg" for m in ("profile", "depth", "ir"))
            _write_rgbd_jpegs(root, profile, depth, ir, seed)
            seed += 3
            frames.append(FixtureFrame("dev", label, "replay" if label == "spoof" else "", "", ""))
        dev_lines.append(f"{video} {live_label if label == 'live' else spoof_label}")
        dev_res.append(video)
    (root / f"{CEFA_PROTOCOL}_dev_ref.txt").write_text("\n".join(dev_lines) + "\n")
    (root / f"{CEFA_PROTOCOL}_dev_res.txt").write_text("\n".join(dev_res) + "\n")
    # Phase 2 published the test videos without labels.
    profile, depth, ir = (f"test/000001/{m}/0001.jpg" for m in ("profile", "depth", "ir"))
    _write_rgbd_jpegs(root, profile, depth, ir, seed)
    (root / f"{CEFA_PROTOCOL}_test_res.txt").write_text("test/000001\n")
    return frames


# --------------------------------------------------------------------------------------------- WMCA family

# Plane values written into every frame, so a test can tell which plane became colour and depth.
WMCA_PLANES = {"gray": 11, "depth": 22, "infrared": 33, "thermal": 44}  # CDIT order
HQWMCA_PLANES = {"R": 55, "G": 66, "B": 77, "depth": 88}  # RGBD order
FRAMES_PER_VIDEO = 2


def _write_frame_container(path: Path, planes: list[int]) -> None:
    """A Bob FrameContainer: Frame_<k>/array (C x H x W) per frame plus FrameIndexes."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5file:
        indexes = h5file.create_group("FrameIndexes")
        for k in range(FRAMES_PER_VIDEO):
            array = np.stack([np.full((CROP_SIDE, CROP_SIDE), value + k, dtype=np.uint8) for value in planes])
            h5file.create_group(f"Frame_{k}").create_dataset("array", data=array)
            indexes[str(k)] = f"Frame_{k}"


def _write_protocol(root: Path, protocol: str, groups: dict[str, list[tuple[str, str, str]]],
                    planes: list[int], suffix: str) -> None:
    for group, videos in groups.items():
        real = [f"{file} {client}" for file, client, attack in videos if not attack]
        attack_lines = [f"{file} {client} {attack}" for file, client, attack in videos if attack]
        group_dir = root / "protocols" / protocol / group
        group_dir.mkdir(parents=True, exist_ok=True)
        (group_dir / "for_real.lst").write_text("".join(line + "\n" for line in real))
        (group_dir / "for_attack.lst").write_text("".join(line + "\n" for line in attack_lines))
        for file, _client, _attack in videos:
            target = root / (file + suffix)
            if not target.exists():
                _write_frame_container(target, planes)


def _frames_of(groups: dict[str, list[tuple[str, str, str]]], species: dict[str, str]) -> list[FixtureFrame]:
    split_of = {"train": "train", "dev": "dev", "eval": "test"}
    frames = []
    for group, videos in groups.items():
        for _file, client, attack in videos:
            name = attack.split("/")[-1] if attack else ""
            truth = FixtureFrame(split_of[group], "spoof" if attack else "live", species.get(name.lower(), ""),
                                 name, client)
            frames.extend([truth] * FRAMES_PER_VIDEO)
    return frames


def write_wmca(root: Path) -> list[FixtureFrame]:
    """WMCA ``grandtest`` lists (Bob PAD file lists) over CDIT face-crop FrameContainers."""
    folder = "face-station/26.09.18"
    groups = {
        "train": [(f"{folder}/001_01_000_0_00", "001", ""), (f"{folder}/002_01_000_0_01", "002", ""),
                  (f"{folder}/501_01_001_3_05", "501", "prints"), (f"{folder}/502_01_002_2_11", "502", "fakehead"),
                  (f"{folder}/503_01_000_4_02", "503", "attack/2D/replay")],
        "dev": [(f"{folder}/003_02_000_0_00", "003", ""), (f"{folder}/504_02_003_3_06", "504", "prints"),
                (f"{folder}/505_02_003_2_12", "505", "attack/3D/fakehead")],
        "eval": [(f"{folder}/004_03_000_0_00", "004", ""), (f"{folder}/506_03_004_3_07", "506", "prints"),
                 (f"{folder}/507_03_004_2_13", "507", "fakehead"), (f"{folder}/508_03_000_4_03", "508", "replay")],
    }
    _write_protocol(root, "grandtest", groups, list(WMCA_PLANES.values()), ".hdf5")
    return _frames_of(groups, {"prints": "print", "replay": "replay", "fakehead": "mask"})


def write_hqwmca(root: Path) -> list[FixtureFrame]:
    """HQ-WMCA ``grand_test`` lists over RGB-D face-crop FrameContainers (``.h5`` files)."""
    folder = "01.03.19"
    groups = {
        "train": [(f"{folder}/1_01_0001_0000_00_00_000-241b2419", "0001", ""),
                  (f"{folder}/1_01_0501_0001_5_01_012-a1b2c3d4", "0501", "Mannequin")],
        "dev": [(f"{folder}/1_02_0002_0000_00_00_000-0f0e0d0c", "0002", ""),
                (f"{folder}/1_02_0502_0002_3_00_020-deadbeef", "0502", "Print")],
        "eval": [(f"{folder}/1_03_0003_0000_00_00_000-01020304", "0003", ""),
                 (f"{folder}/1_03_0503_0003_5_01_013-0a0b0c0d", "0503", "Mannequin")],
    }
    _write_protocol(root, "grand_test", groups, list(HQWMCA_PLANES.values()), ".h5")
    return _frames_of(groups, {"mannequin": "mask", "print": "print"})


def write_all(out: Path) -> dict[str, Path]:
    """Every fixture under ``out``; returns the folder of each dataset kind."""
    folders = {"casia-surf": out / "casia-surf", "cefa": out / "cefa", "wmca": out / "wmca", "hqwmca": out / "hqwmca"}
    write_casia_surf(folders["casia-surf"])
    write_cefa(folders["cefa"])
    write_wmca(folders["wmca"])
    write_hqwmca(folders["hqwmca"])
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the fixtures into")
    args = parser.parse_args()
    folders = write_all(args.out)
    print(f"casia-surf:{folders['casia-surf']}#train")
    print(f"cefa:{folders['cefa']}#{CEFA_PROTOCOL}")
    print(f"wmca:{folders['wmca']}#grandtest")
    print(f"wmca:{folders['hqwmca']}#grand_test")


if __name__ == "__main__":
    main()
