#!/usr/bin/env bash
# The GPU check of issue 10, as one prepared run on a lent GPU machine (device tool, ~15 min):
#   1. the tests that need CUDA (tests/test_cuda.py: predict --device cuda with the forecaster
#      in the writer process, training on the GPU);
#   2. bench_pipeline.py with a yolo11n-sized detector at 640 on a 768x576 synthetic video,
#      fp32 and fp16: pipeline fps / bare YOLO.track fps (goal >= 0.9 on an H100);
#   3. bench_training.py: training windows/s at batch 8192 (goal >= 200k on an H100).
# Everything goes to $OUT (the device tool brings it back) or runs/gpu_check.
#
# The GPU image has torch, opencv and numpy but not ultralytics or lap: carry them as wheels
# (see the device tool's README), from the repository root on this machine:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl ultralytics ultralytics-thop lap polars \
#     polars-runtime-32 motmetrics py-cpuinfo
# and call the device tool with carry [".whl"] and the command `bash scripts/gpu_check.sh`.
# yolo11n.pt cannot be downloaded there (no network): without WEIGHTS the detector is YOLO11n's
# architecture with random weights, the same compute per frame, which is what speed measures
# (it finds few objects, so the tracker and forecaster see less work than on real footage).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu_check}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" \
    | tee -a "$out/gpu.txt"

echo "== 1. tests that need CUDA"
python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$out/tests.log"

echo "== 2. pipeline vs bare YOLO.track"
video="$out/synth768/video.mp4"
[ -f "$video" ] || python3 -m trajpred synth --out "$out/synth768" --seed 3 --duration 30 \
    --fps 25 --width 768 --height 576 --set n_agents=20 > /dev/null
weights="${WEIGHTS:-$out/yolo11n_random.pt}"
if [ ! -f "$weights" ]; then
    python3 - "$weights" <<'PY'
import sys
from ultralytics import YOLO
model = YOLO("yolo11n.yaml")  # the architecture, random weights: no download
model.save(sys.argv[1])
PY
fi
for precision in fp32 fp16; do
    half=""; [ "$precision" = fp16 ] && half="--half"
    python3 scripts/bench_pipeline.py "$video" --weights "$weights" --imgsz 640 --device cuda \
        --max-frames 600 $half --out "$out/bench_$precision.json" 2>&1 | tail -5
done

echo "== 3. training throughput"
python3 scripts/bench_training.py --device cuda --batch-size 8192 --windows 400000 \
    --out "$out/bench_training.json"
