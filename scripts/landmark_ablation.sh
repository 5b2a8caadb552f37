#!/usr/bin/env bash
# The landmark recipe ablation of issue 10, one lever at a time, on the CPU.  Every row trains
# HRNetV2-W18 at 128x128 from scratch for 12 epochs (Adam 1e-3, x0.1 after epochs 8 and 11) on the
# corrected AFW + HELEN training faces of the 20 % split and is scored on its held-out faces:
# validation NME from the cached detector boxes (metrics.csv), then end to end on the photos rotated
# by -30 and +30 degrees with --align.  (Fine-tuning the v1 model for 4 epochs was tried first and
# made every row worse than v1 itself, so it could not rank the levers.)  A row that was stopped
# resumes from its last.pt.
#
#   bash scripts/landmark_ablation.sh ROW [ROW ...]     # rows: base awing rot45 shift appearance all
#   PRECISION=fp32 bash scripts/landmark_ablation.sh …  # default bf16 (bfloat16 autocast, 0.57x the step time)
# Results: runs/ablation/ROW/{metrics.csv,model.safetensors,rot30.json}.
set -euo pipefail
cd "$(dirname "$0")/.."
hrface=${HRFACE:-.venv/bin/hrface}
config=configs/hrnet_w18_300w_v2.yaml
schedule=(--set schedule.epochs=12 --set "schedule.lr_steps=[8, 11]" --set optimizer.lr=1e-3
          --set model.weights=null --set precise_bn=0 --set "precision=${PRECISION:-bf16}")
# The reference recipe: every lever of the config switched off (the row "all" keeps the config's levers).
reference=(--set loss=mse --set augmentation.rotation=30 --set augmentation.rotation_prob=0.6
           --set augmentation.box_shift=0 --set augmentation.color=0 --set augmentation.blur_prob=0
           --set augmentation.jpeg_prob=0 --set augmentation.occlusion_prob=0)
for row in "$@"; do
  base=("${reference[@]}")
  case $row in
    base) extra=() ;;
    awing) extra=(--set loss=awing) ;;
    rot45) extra=(--set augmentation.rotation=45 --set augmentation.rotation_prob=0.7) ;;
    shift) extra=(--set augmentation.box_shift=0.05) ;;
    appearance) extra=(--set augmentation.color=0.3 --set augmentation.blur_prob=0.2
                       --set augmentation.jpeg_prob=0.2 --set augmentation.occlusion_prob=0.3) ;;
    all) base=() extra=() ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  out=runs/ablation/$row
  resume=(); [[ -f $out/last.pt ]] && resume=(--resume)
  $hrface train-landmarks $config -q --output-dir "$out" "${schedule[@]}" "${base[@]}" "${extra[@]}" "${resume[@]}"
  $hrface eval-landmarks $config --model "$out/model.safetensors" --boxes detector --align \
      --rotate -30 --rotate 30 -o "$out/rot30.json" > "$out/rot30.txt"
done
