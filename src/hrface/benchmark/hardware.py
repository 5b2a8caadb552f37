"""This CPU's theoretical float32 peak, from ``/proc/cpuinfo``.

peak FLOP/s = cores × clock × FMA units per core × lanes per FMA (vector bits / 32) × 2 (an FMA is a
multiply and an add). The clock is the one ``/proc/cpuinfo`` reports (the nominal clock on a VM; boost
clocks are not visible there). FMA units per core are not visible either and come from the vendor's
documentation: 2 × 256-bit on AMD Zen 2–4 (Zen 4 executes AVX-512 as two 256-bit halves, so 512-bit
code has the same peak) and Intel AVX2 cores; 2 × 512-bit on Intel server cores with AVX-512.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class CpuInfo:
    """CPU model, cores, clock (MHz) and float32 peak (GFLOP/s) with the numbers that give it."""

    model: str
    cores: int
    mhz: float
    simd: str  # widest FMA instruction set: 'avx512', 'avx2' or 'none'
    fma_units: int  # FMA pipes per core
    lanes: int  # float32 lanes per FMA pipe
    peak_gflops: float
    formula: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_info(cpuinfo: str | None = None, cores: int | None = None) -> CpuInfo:
    """Read ``/proc/cpuinfo`` (or the given text) and compute the float32 peak (see the module doc)."""
    text = cpuinfo if cpuinfo is not None else _read("/proc/cpuinfo")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    vendor = fields.get("vendor_id", "")
    n = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    mhz = float(fields.get("cpu MHz", "0") or 0)
    simd = "avx512" if "avx512f" in flags else "avx2" if {"avx2", "fma"} <= flags else "none"
    if simd == "avx512" and vendor != "AuthenticAMD":
        fma_units, lanes = 2, 16
    elif simd in ("avx512", "avx2"):
        fma_units, lanes = 2, 8
    else:
        fma_units, lanes = 1, 4  # SSE: no FMA; 4 lanes, mul and add on separate pipes
    peak = n * mhz * 1e-3 * fma_units * lanes * 2
    formula = f"{n} cores × {mhz / 1e3:.2f} GHz × {fma_units} FMA × {lanes} fp32 lanes × 2 = {peak:.0f} GFLOP/s"
    model = fields.get("model name", "unknown CPU")
    return CpuInfo(model, n, mhz, simd, fma_units, lanes, round(peak, 1), formula)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
