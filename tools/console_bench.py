"""Benchmark: the door pipeline's frame rate with 0 and with 2 installer-console viewers, in one run.

One kiosk (the real service, sink and console; no actuator, no API) runs a synthetic source as fast as
this machine allows. The run is cut into blocks of ``--block-frames`` decisions that alternate between
no viewer and two viewers (A B A B ...: a slow spell of a shared machine hits both alike). A viewer is
a separate process that logs in like a browser and fetches the colour and depth pictures the way the
live page does (``/live/<view>.jpg?after=N``, then a pause of 1/max_fps). The first ``--settle``
frames of each block are not timed (viewers start or stop). Reported per mode: the median of the
blocks' fps and of the kiosk process's CPU time per decision (``time.process_time``: the door's work
plus the console's encoding, which other processes on a shared machine hardly disturb), the median
of the paired ratios (each 2-viewer block against the 0-viewer block before it), the pictures
encoded and fetched, and the load average before and after.

    python tools/console_bench.py --blocks 8 --block-frames 60 --model-dir ../shared/data/models [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

PASSWORD = "console benchmark password"


def viewer(port: int, max_fps: float, active, stop, pictures, ready) -> None:
    """Log in, then fetch both views like the live page while ``active`` is set."""
    cookies: dict[str, str] = {}

    def call(method: str, path: str, body: str | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        all_headers = dict(headers or {})
        if cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            cookies[name] = rest.split(";", 1)[0]
        return response, data

    _, html = call("GET", "/login")
    token = re.search(rb'name="csrf" value="([^"]+)"', html).group(1).decode()
    response, _ = call("POST", "/login", urlencode({"csrf": token, "password": PASSWORD}),
                       {"Content-Type": "application/x-www-form-urlencoded"})
    if response.status != 303:
        raise SystemExit(f"viewer login failed: {response.status}")
    with ready.get_lock():
        ready.value += 1
    after = {"colour": -1, "depth": -1}
    while not stop.is_set():
        if not active.is_set():
            time.sleep(0.02)
            continue
        for view in after:
            response, _ = call("GET", f"/live/{view}.jpg?after={after[view]}")
            if response.status == 200:
                after[view] = int(response.getheader("X-Frame-Number"))
                with pictures.get_lock():
                    pictures.value += 1
        time.sleep(1.0 / max_fps)


class Schedule:
    """A sink of the live loop: times every decision and switches the viewers at block boundaries."""

    def __init__(self, blocks: int, block_frames: int, settle: int, active, stop: threading.Event) -> None:
        self.blocks, self.block_frames, self.settle = blocks, block_frames, settle
        self.active, self.stop = active, stop
        self.frames = 0
        self.times: dict[int, list[tuple[float, float]]] = {b: [] for b in range(blocks)}  # (wall s, CPU s)

    def viewers_in(self, block: int) -> int:
        return 2 if block % 2 else 0

    def write(self, event) -> bool:
        block, index = divmod(self.frames, self.block_frames)
        if index == 0:
            (self.active.set if self.viewers_in(block) else self.active.clear)()
        if index >= self.settle:
            self.times[block].append((time.perf_counter(), time.process_time()))
        self.frames += 1
        if self.frames >= self.blocks * self.block_frames:
            self.active.clear()
            return False
        return True

    def close(self, failure=None) -> None:
        self.active.clear()

    def per_block(self) -> list[tuple[int, float, float]]:
        """(viewers, fps, CPU ms per decision) of every block, in order."""
        out = []
        for block, times in self.times.items():
            if len(times) >= 2:
                (wall0, cpu0), (wall1, cpu1) = times[0], times[-1]
                out.append((self.viewers_in(block), (len(times) - 1) / (wall1 - wall0),
                            (cpu1 - cpu0) * 1000.0 / (len(times) - 1)))
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=8, help="blocks, alternating 0 and 2 viewers (default 8)")
    parser.add_argument("--block-frames", type=int, default=60, help="decisions per block (default 60)")
    parser.add_argument("--settle", type=int, default=5, help="untimed frames at each block's start (default 5)")
    parser.add_argument("--source", default="synthetic:live", help="frame source spec (default synthetic:live)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-fps", type=float, default=5.0, help="[console] max_fps (default 5, the default)")
    parser.add_argument("--detector", default="auto")
    parser.add_argument("--model-dir", default=None, help="folder holding the YuNet model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    args = parser.parse_args(argv)
    if args.blocks < 2 or args.block_frames <= args.settle + 2:
        parser.error("--blocks must be at least 2 and --block-frames more than --settle + 2")

    from edge.kiosk.config import load_kiosk_config
    from edge.kiosk.console.health import DoorFacts
    from edge.kiosk.console.password import hash_password
    from edge.kiosk.service import PipelineHealth, build_kiosk_service
    from edge.kiosk.sink import KioskSink
    from edge.live.loop import run_loop
    from edge.live.session import LiveOptions, LiveSession
    from engines.bundled import default_model_path

    spawn = multiprocessing.get_context("spawn")  # no fork of a process that runs threads
    active, stop_viewers = spawn.Event(), spawn.Event()
    pictures, ready = spawn.Value("i", 0), spawn.Value("i", 0)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as folder:
        root = Path(folder)
        key = root / "token.key"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        (root / "kiosk.toml").write_text(f"""
[kiosk]
source = "{args.source}"
model = "{default_model_path()}"
production = false

[api]
enabled = false

[token]
secret_file = "{key}"

[audit]
path = "{root / 'audit.sqlite'}"

[console]
enabled = true
port = {port}
password_hash = "{hash_password(PASSWORD, log2_n=14)}"
max_fps = {args.max_fps}
""")
        config = load_kiosk_config(root / "kiosk.toml")
        options = LiveOptions(spec=args.source, seed=args.seed, detector=args.detector,
                              model_dir=Path(args.model_dir) if args.model_dir else None, policy=config.policy)
        session = LiveSession(options)
        stop = threading.Event()
        schedule = Schedule(args.blocks, args.block_frames, args.settle, active, stop)

        def health() -> PipelineHealth:
            return PipelineHealth(ok=True, camera=session.health_line(), runner=session.runner.backend, policy="-")

        def facts() -> DoorFacts:
            return DoorFacts(session.source.describe(), session.health_line(), str(session.model_path),
                             session.model_sha256, session.runner.backend)

        load_before = os.getloadavg()
        viewers = []
        try:
            with build_kiosk_service(config, health, stop, facts) as service:
                viewers = [spawn.Process(target=viewer, args=(port, args.max_fps, active, stop_viewers, pictures,
                                                                        ready),
                                         daemon=True) for _ in range(2)]
                for process in viewers:
                    process.start()
                deadline = time.monotonic() + 120
                while ready.value < len(viewers):  # logged in before the first timed frame
                    if time.monotonic() > deadline or not all(p.is_alive() for p in viewers):
                        raise SystemExit("the viewers could not log in to the console")
                    time.sleep(0.1)
                sink = KioskSink(service, session.model_sha256, args.source)
                print(f"running {args.blocks} blocks of {args.block_frames} decisions on {args.source} ...",
                      file=sys.stderr)
                run_loop(session, [sink, schedule], stop)
                encodes = service.feed.encodes
        finally:
            stop_viewers.set()
            for process in viewers:
                process.join(timeout=10)
            session.close()
        load_after = os.getloadavg()

    blocks = schedule.per_block()
    fps = {n: [f for v, f, _ in blocks if v == n] for n in (0, 2)}
    cpu = {n: [c for v, _, c in blocks if v == n] for n in (0, 2)}
    pairs = [(b[1] / a[1], b[2] / a[2]) for a, b in zip(blocks[0::2], blocks[1::2])]
    median = {n: statistics.median(v) for n, v in fps.items()}
    cpu_median = {n: statistics.median(v) for n, v in cpu.items()}
    report = {
        "source": args.source, "blocks": args.blocks, "block_frames": args.block_frames, "max_fps": args.max_fps,
        "fps_0_viewers": [round(v, 2) for v in fps[0]], "fps_2_viewers": [round(v, 2) for v in fps[2]],
        "median_fps_0_viewers": round(median[0], 2), "median_fps_2_viewers": round(median[2], 2),
        "median_paired_fps_ratio": round(statistics.median(p[0] for p in pairs), 3),
        "cpu_ms_per_decision_0_viewers": round(cpu_median[0], 1),
        "cpu_ms_per_decision_2_viewers": round(cpu_median[2], 1),
        "median_paired_cpu_ratio": round(statistics.median(p[1] for p in pairs), 3),
        "pictures_encoded": encodes, "pictures_fetched": pictures.value,
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"door fps, median of {len(fps[0])} blocks each: 0 viewers {median[0]:.2f}, 2 viewers {median[2]:.2f} "
              f"(median paired ratio {report['median_paired_fps_ratio']:.3f}); CPU ms per decision "
              f"{cpu_median[0]:.1f} vs {cpu_median[2]:.1f} (paired ratio {report['median_paired_cpu_ratio']:.3f}); "
              f"{encodes} pictures encoded, {pictures.value} fetched; load average {load_before[0]:.2f} -> "
              f"{load_after[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
