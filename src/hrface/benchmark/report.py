"""The benchmark results as a plain-text table, with ratios against baselines of the same run."""

from __future__ import annotations

from typing import Any

from .max_size import format_max_sizes
from .timing import STAGES

STAGE_LABELS = {
    "preprocess": "pre-processing",
    "detector_forward": "detector forward",
    "decode_nms": "decode + NMS",
    "detector_total": "detector end-to-end",
    "landmark_crop": "landmark crop",
    "landmark_forward_per_face": "landmark forward / face",
    "landmark_decode": "landmark decode",
    "total": "total (detect + landmarks)",
}


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, checked on this run's numbers (None where a figure is missing).

    - detector end-to-end of each backend ÷ YuNet's (target ≤ 1);
    - landmark forward per face of each backend ÷ torch eager's (target ≤ 0.40).
    """
    rows = {row["backend"]: row["ms"] for row in results["pipelines"]}
    yunet = next((p["detector_total"] for p in results["peers"] if p["name"] == "YuNet"), None)
    eager = rows.get("torch", {}).get("landmark_forward_per_face")
    out: dict[str, Any] = {"detector_vs_yunet": {}, "landmark_vs_torch": {}}
    for name, ms in rows.items():
        if yunet and "detector_total" in ms:
            ratio = ms["detector_total"] / yunet
            out["detector_vs_yunet"][name] = {"ratio": round(ratio, 3), "met": ratio <= 1.0}
        if eager and "landmark_forward_per_face" in ms:
            ratio = ms["landmark_forward_per_face"] / eager
            out["landmark_vs_torch"][name] = {"ratio": round(ratio, 3), "met": ratio <= 0.40}
    return out


def format_report(results: dict[str, Any]) -> str:
    """Stage × backend table (ms), peers, FLOPs against peak, training throughput and the targets."""
    m, inp = results["machine"], results["input"]
    lm = results["landmark_model"]
    lines = [
        f"CPU: {m['model']}, {m['cores']} cores, {m['simd']}; peak {m['formula']}",
        f"threads: {results['threads']} (torch intra-op, onnxruntime intra-op, OpenCV); "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        f"input: {inp['images']} images letterboxed to {inp['width']}x{inp['height']}; median of {inp['repeats']} "
        f"runs after warm-up; landmark model {lm.get('name') or 'HRNetV2-W' + str(lm['width'])} at "
        f"{lm['input_size']}x{lm['input_size']}",
        "",
    ]
    rows = results["pipelines"]
    if rows:
        lines += _pipeline_table(rows)
    if results["peers"]:
        lines += ["", "peer detectors (same images, same size, ms):"]
        yunet = next((p["detector_total"] for p in results["peers"] if p["name"] == "YuNet"), None)
        for peer in results["peers"]:
            fwd = f", forward {peer['detector_forward']:.2f}" if "detector_forward" in peer else ""
            rel = f"  ({peer['detector_total'] / yunet:.2f}x YuNet)" if yunet else ""
            lines.append(f"  {peer['name']:<14} end-to-end {peer['detector_total']:.2f}{fwd}{rel}")
    if results.get("max_sizes"):
        lines += ["", "detector time per photo by max_size (end to end, same photos; ratio to the first row):"]
        lines += ["  " + line for line in format_max_sizes(results["max_sizes"])]
    if results["flops"]:
        lines += ["", f"FLOPs (2 x multiply-adds) per forward pass, share of the peak of {results['threads']} core(s):"]
    for f in results["flops"]:
        shares = ", ".join(
            f"{k} {v:.1f} GFLOP/s ({f['peak_fraction'].get(k, 0):.1%})" for k, v in f["gflops_achieved"].items()
        )
        lines.append(f"  {f['model']:<10} {tuple(f['input'])}: {f['gflop']:.3f} GFLOP; {shares}")
    if results["training"]:
        lines += ["", "training throughput (forward + backward + Adam step):"]
    for t in results["training"]:
        side = t["input_size"]
        lines.append(f"  HRNetV2-W{t['width']} {side}x{side} batch {t['batch']}: {t['images_per_s']:.2f} images/s")
    checks = targets(results)
    lines += ["", "targets:"]
    for key, label, bound in (
        ("detector_vs_yunet", "detector end-to-end {} / YuNet", "1"),
        ("landmark_vs_torch", "landmark forward per face {} / torch", "0.40"),
    ):
        for name, v in checks[key].items():
            verdict = "met" if v["met"] else "NOT met"
            lines.append(f"  {label.format(name)} = {v['ratio']:.2f} (≤ {bound}: {verdict})")
    return "\n".join(lines)


def _cell(value: float | None, width: int) -> str:
    return ("—" if value is None else f"{value:.2f}").rjust(width)


def _pipeline_table(rows: list[dict[str, Any]]) -> list[str]:
    """Stage × backend milliseconds, ratios to the first backend, faces found."""
    lines: list[str] = []
    names = [row["backend"] for row in rows]
    col = max([12, *(len(n) + 2 for n in names)])
    lines.append("stage (ms)".ljust(28) + "".join(n.rjust(col) for n in names))
    for stage in STAGES:
        cells = [row["ms"].get(stage) for row in rows]
        lines.append(STAGE_LABELS[stage].ljust(28) + "".join(_cell(c, col) for c in cells))
    base = rows[0]["ms"] if rows else {}
    for stage in ("detector_total", "landmark_forward_per_face", "total"):
        if stage in base:
            ratios = [row["ms"].get(stage, float("nan")) / base[stage] for row in rows]
            label = f"÷ {names[0]}: {STAGE_LABELS[stage].split(' (')[0]}"
            lines.append(label[:27].ljust(28) + "".join(f"{r:.2f}x".rjust(col) for r in ratios))
    lines.append("faces found: " + ", ".join(f"{r['backend']} {r['faces']}" for r in rows))
    if any(r["faces"] == 0 for r in rows):
        lines.append("no faces found, so the landmark stages were not timed: use a larger --size or other images")
    return lines
