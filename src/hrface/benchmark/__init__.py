"""Speed benchmark of the pipeline per stage and backend, against peer detectors (``hrface bench``)."""

from .report import format_report, targets
from .run import BENCH_BACKENDS, BenchConfig, run_benchmark

__all__ = ["BENCH_BACKENDS", "BenchConfig", "format_report", "run_benchmark", "targets"]
