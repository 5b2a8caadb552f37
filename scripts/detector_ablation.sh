#!/usr/bin/env bash
# The detector ablation of issue 11, one lever at a time, on the CPU.  Every row trains
# configs/retinaface_mnet025_v2.yaml (300W AFW + HELEN train, ImageNet backbone, SGD, 80 epochs at 320 px)
# with some levers switched off, then scores the kept weights at max_size 480, 640, 960 and 1280 (to choose
# the default max_size from recall against time, see hrface bench --max-sizes): the held-out photos (large
# faces), the 100-image small-face test made from them, and the 3 WIDER FACE training samples.
#
#   bash scripts/detector_ablation.sh ROW [ROW ...]
#     base      the shipped recipe on the corrected data (no mosaic, no teacher)
#     mosaic    + mosaics and zoom-outs (detector v2)
#     teacher   + the teacher's unannotated faces (box only)
#     both      + both (= configs/retinaface_mnet025_v2.yaml)
#     mosaic640 mosaic (the shipped recipe) at 640 px (batch 8 as at 320: 4x the pixels per step)
#               Edit this file only by writing a new file and renaming it over this one: bash reads a
#               running script as it goes, and an edit in place derails the rows still running.
#     long      mosaic, 160 epochs (lr steps at the same fractions of the run): the shipped detector v3
#     ft        v2 fine-tuned with its own recipe: 16 epochs at lr 1e-4, 1e-5 after 12 (v2's weights from
#               the git history: git show 6257a5f:src/hrface/weights/hrface_retinaface_mnet025_300w_v2.onnx
#               > ${HRFACE_HOME:-~/.cache/hrface}/hrface_retinaface_mnet025_300w_v2.onnx)
#     ft_kp4    the same with the keypoint loss weighted 4 instead of 1 (loss.landm_weight)
# Results: runs/det_ablation/ROW/{metrics.csv,model.safetensors,val.json,small_faces.json,wider.json}; val.json
# holds the false faces against the published checkpoint (eval-detector --reference) at every size.
set -euo pipefail
cd "$(dirname "$0")/.."
hrface=${HRFACE:-.venv/bin/hrface}
config=configs/retinaface_mnet025_v2.yaml
no_mosaic=(--set augmentation.mosaic_prob=0 --set augmentation.zoom_out_prob=0)
no_teacher=(--set data.teacher=null)
sizes=(--max-size 480 640 960 1280 --threads 1)
finetune=(--set model.backbone_weights=null --set "model.weights=${HRFACE_HOME:-$HOME/.cache/hrface}/hrface_retinaface_mnet025_300w_v2.onnx"
          --set optimizer.lr=1e-4 --set schedule.epochs=16 --set "schedule.lr_steps=[12]")
pts=(--pts-dir ../shared/data/300w/afw ../shared/data/300w/helen_train --split-file runs/hrnet_w18_300w_split.json)
for row in "$@"; do
  case $row in
    base) extra=("${no_mosaic[@]}" "${no_teacher[@]}") ;;
    mosaic) extra=("${no_teacher[@]}") ;;
    teacher) extra=("${no_mosaic[@]}") ;;
    both) extra=() ;;
    mosaic640) extra=("${no_teacher[@]}" --set image_size=640 --set threads=0) ;;  # 2 threads: 1.17 s/step, 1: 1.95
    long) extra=("${no_teacher[@]}" --set schedule.epochs=160 --set "schedule.lr_steps=[122, 140]") ;;
    ft) extra=("${no_teacher[@]}" "${finetune[@]}") ;;
    ft_kp4) extra=("${no_teacher[@]}" "${finetune[@]}" --set loss.landm_weight=4) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  out=runs/det_ablation/$row
  resume=(); [[ -f $out/last.pt ]] && resume=(--resume)
  $hrface train-detector $config -q --output-dir "$out" "${extra[@]}" "${resume[@]}"
  model=$out/model.safetensors
  $hrface eval-detector --model "$model" "${pts[@]}" "${sizes[@]}" --json "$out/val.json" \
      --reference ../shared/weights/retinaface_mobilenet0.25_Final.pth > "$out/val.txt"
  $hrface eval-detector --model "$model" "${pts[@]}" --small-faces 100 --seed 0 "${sizes[@]}" \
      --json "$out/small_faces.json" > "$out/small_faces.txt"
  $hrface eval-detector --model "$model" "${sizes[@]}" \
      --wider-gt ../shared/data/widerface/train_samples/wider_face_train_bbx_gt_samples.txt \
      --json "$out/wider.json" > "$out/wider.txt"
done
