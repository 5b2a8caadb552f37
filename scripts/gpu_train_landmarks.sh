#!/usr/bin/env bash
# Train a landmark config from a face pack on a CUDA machine, as one command, and copy the run's
# results to $OUT (or ./gpu_out).  The machine needs python3 with torch (CUDA), opencv, safetensors,
# pyyaml, scipy and tqdm; hrface runs from src/ without installing.  The working tree that travels
# needs the pack named in the config (about 30 MB for the 300W faces, ignored by git).
#
#   bash scripts/gpu_train_landmarks.sh [CONFIG] [--resume]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/hrnet_w18_300w_256_gpu.yaml}
shift || true
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m hrface.cli.main train-landmarks "$config" --device cuda -q "$@" 2>&1 | tee "$out/train.log"
run=$(python3 -c "from hrface.training.landmarks import load_config; print(load_config('$config').output_dir)")
python3 -m hrface.cli.main plot-training "$run" -o "$out/training.png"
cp "$run/metrics.csv" "$run/model.safetensors" "$out/"
