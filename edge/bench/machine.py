"""Facts about the machine a benchmark ran on, recorded beside its numbers.

A latency without the machine is not a result: the report carries the CPU model, the cores this
process may use, the load when the run started and ended (a shared machine shows there), the
versions of every library on the measured path, and on a Jetson the power mode and clocks
(``nvpmodel -q`` and the cpufreq/devfreq files), since an Orin in a 7 W mode runs at a fraction of
its 15 W speed. Versions come from package metadata, never by importing (importing torch to ask its
version would cost a second and break the promise that the runtime does not need it).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

# Distributions on the measured path (PyPI names); absent ones are recorded as absent.
LIBRARIES = ("edgefas", "numpy", "opencv-python-headless", "opencv-python", "onnxruntime",
             "onnxruntime-gpu", "pyrealsense2", "torch", "onnx")
TEGRA_RELEASE = Path("/etc/nv_tegra_release")  # present on every L4T/JetPack image
CPUFREQ = Path("/sys/devices/system/cpu")
DEVFREQ = Path("/sys/class/devfreq")  # Jetson GPU (e.g. 17000000.ga10b on Orin) and EMC clocks
NVPMODEL_TIMEOUT_S = 5.0
# Instruction-set extensions that decide which MLAS kernels run: AVX2/FMA and AVX-512 for fp32,
# VNNI (avx512_vnni, avx_vnni) for fast INT8 dot products on x86; asimddp/i8mm for INT8 on ARM.
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm")


@dataclass(frozen=True)
class JetsonState:
    l4t_release: str
    nvpmodel: str  # `nvpmodel -q` output, one line per line; "" where the tool is missing
    devfreq_hz: dict[str, int] = field(default_factory=dict)  # device -> current frequency


@dataclass(frozen=True)
class MachineFacts:
    cpu_model: str
    machine: str  # platform.machine(): x86_64, aarch64
    cores_logical: int
    cores_usable: int  # this process's CPU affinity (containers and taskset narrow it)
    memory_total_mb: int | None
    os: str
    python: str
    libraries: dict[str, str]
    simd: tuple[str, ...]
    cpu_governor: str
    cpu_cur_mhz: tuple[int, ...]
    load_avg_start: tuple[float, float, float]
    jetson: JetsonState | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "cpu_model": self.cpu_model, "machine": self.machine, "cores_logical": self.cores_logical,
            "cores_usable": self.cores_usable, "simd": list(self.simd), "memory_total_mb": self.memory_total_mb,
            "os": self.os,
            "python": self.python, "libraries": dict(self.libraries), "cpu_governor": self.cpu_governor,
            "cpu_cur_mhz": list(self.cpu_cur_mhz), "load_avg_start": list(self.load_avg_start),
        }
        if self.jetson is not None:
            out["jetson"] = {"l4t_release": self.jetson.l4t_release, "nvpmodel": self.jetson.nvpmodel,
                             "devfreq_hz": dict(self.jetson.devfreq_hz)}
        return out


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def read_cpu_model() -> str:
    """``model name`` (x86) or the device-tree model (Jetson and other ARM boards) or platform's guess."""
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    tree = _read(Path("/proc/device-tree/model")).rstrip("\x00")
    return tree or platform.processor() or platform.machine()


def read_simd_flags() -> tuple[str, ...]:
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            present = set(value.split())
            return tuple(flag for flag in SIMD_FLAGS if flag in present)
    return ()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def read_jetson_state() -> JetsonState | None:
    release = _read(TEGRA_RELEASE)
    if not release:
        return None
    nvpmodel = ""
    tool = shutil.which("nvpmodel")
    if tool is not None:
        try:
            done = subprocess.run([tool, "-q"], capture_output=True, text=True, timeout=NVPMODEL_TIMEOUT_S, check=False)
            nvpmodel = (done.stdout or done.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            nvpmodel = f"nvpmodel -q failed: {exc}"
    clocks = {}
    if DEVFREQ.is_dir():
        for device in sorted(DEVFREQ.iterdir()):
            text = _read(device / "cur_freq")
            if text.isdigit():
                clocks[device.name] = int(text)
    return JetsonState(release.splitlines()[0], nvpmodel, clocks)


def read_machine_facts() -> MachineFacts:
    cores = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cores
    memory = None
    for line in _read(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) // 1024
    freqs = []
    for cpu in sorted(CPUFREQ.glob("cpu[0-9]*")):
        text = _read(cpu / "cpufreq" / "scaling_cur_freq")
        if text.isdigit():
            freqs.append(int(text) // 1000)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return MachineFacts(
        cpu_model=read_cpu_model(), machine=platform.machine(), cores_logical=cores, cores_usable=usable,
        simd=read_simd_flags(), memory_total_mb=memory, os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        libraries=library_versions(), cpu_governor=_read(CPUFREQ / "cpu0" / "cpufreq" / "scaling_governor"),
        cpu_cur_mhz=tuple(freqs), load_avg_start=tuple(round(v, 2) for v in load), jetson=read_jetson_state(),
    )


def load_average() -> tuple[float, float, float]:
    return tuple(round(v, 2) for v in os.getloadavg()) if hasattr(os, "getloadavg") else (float("nan"),) * 3
