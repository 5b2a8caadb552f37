#!/usr/bin/env bash
# Train a config from a pack on a CUDA machine, as one command, and copy the run's results to $OUT
# (or ./gpu_out).  The machine needs python3 with torch (CUDA), opencv, safetensors, pyyaml, scipy
# and tqdm; hrface runs from src/ without installing.  The working tree that travels needs the pack
# named in the config (ignored by git, so name it in the device tool's carry):
#   landmarks: hrface pack-faces configs/hrnet_w18_300w_v2.yaml runs/pack_300w_v2          (~30 MB)
#   detector:  hrface pack-detection configs/retinaface_mnet025_v2.yaml runs/pack_det_300w --set data.teacher=null  (~34 MB)
#
#   bash scripts/gpu_train.sh landmarks|detector [CONFIG] [--resume | --max-steps N | --set KEY=VALUE ...]
set -euo pipefail
cd "$(dirname "$0")/.."
task=${1:?landmarks or detector}
shift
case $task in
  landmarks) command=train-landmarks default=configs/hrnet_w18_300w_256_gpu.yaml
             loader="from hrface.training.landmarks import load_config as load" ;;
  detector) command=train-detector default=configs/retinaface_mnet025_v2_gpu.yaml
            loader="from hrface.training.detection.config import load_detection_config as load" ;;
  *) echo "usage: bash scripts/gpu_train.sh landmarks|detector [CONFIG] [options]" >&2; exit 2 ;;
esac
config=$default
if [[ $# -gt 0 && $1 != -* ]]; then config=$1; shift; fi
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONPATH=src PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python3 -m hrface.cli.main $command "$config" --device cuda -q "$@" 2>&1 | tee "$out/train.log"
run=$(python3 -c "$loader; print(load('$config').output_dir)")
python3 -m hrface.cli.main plot-training "$run" -o "$out/training.png"
cp "$run/metrics.csv" "$run/model.safetensors" "$out/"
