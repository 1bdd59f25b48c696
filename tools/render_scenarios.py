"""Render one sample per synthetic scenario, colour and depth side by side, for the README.

    python tools/render_scenarios.py --out docs/img/scenarios.png [--seed 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edge.capture.synthetic import SyntheticWorld

SHOWN = ("live", "print", "replay", "mask", "cutout", "empty")


def depth_picture(depth_raw: np.ndarray, near_mm: float = 300.0, far_mm: float = 2500.0) -> np.ndarray:
    """Colour-mapped depth (near = warm), holes (0) drawn black so they stand out."""
    scaled = np.clip((far_mm - depth_raw.astype(np.float32)) / (far_mm - near_mm), 0, 1)
    img = cv2.applyColorMap((scaled * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[depth_raw == 0] = 0
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/scenarios.png"))
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.5)
    args = parser.parse_args()
    tiles = []
    for scenario in SHOWN:
        frame = SyntheticWorld(scenario, args.seed, distance_m=0.55 if scenario != "empty" else None).frame(0)
        pair = np.hstack([frame.color_bgr, depth_picture(frame.depth_raw)])
        pair = cv2.resize(pair, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
        cv2.putText(pair, scenario, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(pair)
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
