"""The live window's picture: face box, state, score against threshold, stage timings, spoof map.

Drawing is separate from showing, so the picture is testable without a display.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.live.pipeline import FrameResult

STATE_BGR = {"live": (60, 200, 60), "spoof": (40, 40, 230), "unknown": (0, 190, 230)}


def draw_overlay(color_bgr: np.ndarray, result: FrameResult, fps: float, show_map: bool,
                 key_hints: bool = True) -> np.ndarray:
    """A copy of ``color_bgr`` annotated with ``result``; the spoof map is blended over the face box.
    ``key_hints``: the desktop window's keys (a browser view has none)."""
    img = color_bgr.copy()
    d = result.decision
    colour = STATE_BGR.get(d.state, (200, 200, 200))
    if result.face is not None:
        f = result.face
        x0, y0, x1, y1 = (int(round(v)) for v in (f.x0, f.y0, f.x1, f.y1))
        if show_map and result.spoof_map is not None and x1 > x0 and y1 > y0:
            heat = np.clip(result.spoof_map, 0.0, 1.0)
            heat = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x1, img.shape[1]), min(y1, img.shape[0])
            if xb > xa and yb > ya:
                heat = cv2.resize(heat, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
                patch = heat[ya - y0:yb - y0, xa - x0:xb - x0]
                img[ya:yb, xa:xb] = cv2.addWeighted(img[ya:yb, xa:xb], 0.5, patch, 0.5, 0)
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
        for x, y in f.landmarks_xy:
            cv2.circle(img, (int(x), int(y)), 2, colour, -1)
    score = "-" if result.score is None else f"{result.score:.3f}"
    lines = [f"{d.state.upper()}  {d.code}", f"score {score} / threshold {d.threshold:.3f}",
             f"{fps:.1f} fps  " + " ".join(f"{k} {v:.1f}" for k, v in result.stage_ms.items())]
    if key_hints:
        lines.append("[m] spoof map  [q] quit")
    for i, text in enumerate(lines):
        y = 22 + 20 * i
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour if i == 0 else (255, 255, 255), 1,
                    cv2.LINE_AA)
    return img
