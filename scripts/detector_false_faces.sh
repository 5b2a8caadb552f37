#!/usr/bin/env bash
# Issue 34's measurements of a detector against v3, v2 and the published checkpoint, all at their defaults:
#   bash scripts/detector_false_faces.sh OUT_DIR MODEL [MODEL ...]
# MODEL: names or weight files (v2 from the git history:
#   git show 6257a5f:src/hrface/weights/hrface_retinaface_mnet025_300w_v2.onnx > runs/det_v4/v2.onnx).
# Needs runs/face_free (scripts/face_free_set.py, in an environment with scikit-image) and the photo split
# runs/hrnet_w18_300w_split.json (written by the landmark or detector trainer: hrface train-landmarks
# configs/hrnet_w18_300w_v3.yaml --max-steps 0).  Writes OUT_DIR/{face_free,val,small_faces,small_faces_bg,wider}.{txt,json}:
#   face_free       false faces on the 46 face-free images (every detection is one), by score
#   val             the 212 held-out photos: AP, recall, precision, false faces against the published checkpoint
#                   (score >= 0.3), recall / precision by score
#   small_faces     the 100-mosaic small-face test (seed 0), recall by face size, by score
#   small_faces_bg  the same mosaics laid on the face-free images, false faces against the published checkpoint
#   wider           the 3 WIDER FACE training samples (58 faces, boxes only)
set -euo pipefail
cd "$(dirname "$0")/.."
hrface=${HRFACE:-.venv/bin/hrface}
out=$1; shift
models=(); for m in "$@"; do models+=(--model "$m"); done
published=../shared/weights/retinaface_mobilenet0.25_Final.pth
pts=(--pts-dir ../shared/data/300w/afw ../shared/data/300w/helen_train --split-file runs/hrnet_w18_300w_split.json)
mkdir -p "$out"
$hrface eval-detector "${models[@]}" --face-free runs/face_free --threshold 0.3 --json "$out/face_free.json" > "$out/face_free.txt"
$hrface eval-detector "${models[@]}" "${pts[@]}" --reference $published --by-threshold --threshold 0.5 \
    --json "$out/val.json" > "$out/val.txt"
$hrface eval-detector "${models[@]}" "${pts[@]}" --small-faces 100 --seed 0 --by-threshold \
    --json "$out/small_faces.json" > "$out/small_faces.txt"
$hrface eval-detector "${models[@]}" "${pts[@]}" --small-faces 100 --seed 0 --backgrounds runs/face_free \
    --reference $published --json "$out/small_faces_bg.json" > "$out/small_faces_bg.txt"
$hrface eval-detector "${models[@]}" --by-threshold \
    --wider-gt ../shared/data/widerface/train_samples/wider_face_train_bbx_gt_samples.txt \
    --json "$out/wider.json" > "$out/wider.txt"
