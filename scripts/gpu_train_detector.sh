#!/usr/bin/env bash
# Train a detector config from a detection pack on a CUDA machine, as one command, and copy the run's
# results to $OUT (or ./gpu_out).  The machine needs python3 with torch (CUDA), opencv, safetensors,
# pyyaml, scipy and tqdm; hrface runs from src/ without installing.  The working tree that travels needs
# the pack named in the config (hrface pack-detection; ignored by git, so name it in the tool's carry).
#
#   bash scripts/gpu_train_detector.sh [CONFIG] [--resume | --max-steps N | --set KEY=VALUE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/retinaface_mnet025_v2_gpu.yaml}
shift || true
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m hrface.cli.main train-detector "$config" --device cuda -q "$@" 2>&1 | tee "$out/train.log"
run=$(python3 -c "from hrface.training.detection.config import load_detection_config as l; print(l('$config').output_dir)")
python3 -m hrface.cli.main plot-training "$run" -o "$out/training.png"
cp "$run/metrics.csv" "$run/model.safetensors" "$out/"
