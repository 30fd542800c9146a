#!/usr/bin/env bash
# The GPU check of issue 10, as one prepared run on a lent GPU machine (device tool, ~15 min):
#   A. at the same time (none of them is timed): the tests that need CUDA (tests/test_cuda.py:
#      predict --device cuda with the forecaster in the writer process, training on the GPU);
#      training a yolo11n (the architecture, from scratch: no weights can be downloaded there) on
#      our synthetic scenes at 640 for DET_TIME_H hours, so that the benchmark's detector is
#      yolo11n-sized AND finds the people (random weights find few, which would leave the tracker
#      and the forecaster idle and flatter the pipeline); the 768x576 benchmark video;
#   B. bench_training.py alone: training windows/s at batch 8192 (goal >= 200k on an H100);
#   C. bench_pipeline.py alone, fp16, fp32 and fp32 with the forecaster on the CPU: pipeline fps /
#      bare YOLO.track fps (goal >= 0.9).
# Results go to $OUT (the device tool brings them back; at most 8 files) or runs/gpu_check;
# scratch to $WORK.
#
# The GPU image has torch, opencv and numpy but not ultralytics or lap: carry them as wheels
# (see the device tool's README), from the repository root on this machine:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     ultralytics ultralytics-thop lap motmetrics
# (not polars: its 54 MB wheel does not fit the 64 MB the tool carries; train_detector.py does
# without it) and call the device tool with carry [".whl"] and `bash scripts/gpu_check.sh`.
# A dry run on a CPU: DEVICE=cpu FRAMES=20 DET_IMAGES=40 DET_EPOCHS=1 DET_IMGSZ=160
#   WINDOWS=20000 bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu_check}"
work="${WORK:-/tmp/gpu_check}"
device="${DEVICE:-cuda}"
mkdir -p "$out" "$work"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
else
    export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1
start=$SECONDS
stamp() { echo "== [$((SECONDS - start)) s] $*"; }
if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
fi
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and \
torch.cuda.get_device_name(0))" | tee -a "$out/gpu.txt"
nproc | sed 's/^/cpu cores: /' | tee -a "$out/gpu.txt"

stamp "A. CUDA tests, yolo11n on synthetic scenes, benchmark video (side by side)"
video="$work/synth768/video.mp4"
[ -f "$video" ] || timeout 120 python3 -m trajpred synth --out "$work/synth768" --seed 3 \
    --duration 30 --fps 25 --width 768 --height 576 --set n_agents=20 > "$work/synth.log" 2>&1 &
synth_pid=$!
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py > "$out/tests.log" 2>&1 &
tests_pid=$!
weights="$work/yolo11n_synth.pt"
timeout 300 python3 scripts/train_detector.py --model yolo11n.yaml --device "$device" \
    --imgsz "${DET_IMGSZ:-640}" --images "${DET_IMAGES:-1500}" --epochs "${DET_EPOCHS:-40}" \
    --time-h "${DET_TIME_H:-0.03}" --batch 32 --workers 8 --work "$work/detector" \
    --out "$weights" > "$work/detector.log" 2>&1
echo "detector training: exit $?"; tail -n 25 "$work/detector.log"
cp "$work/yolo11n_synth.json" "$out/detector.json" 2>/dev/null
if [ ! -f "$weights" ]; then
    echo "detector training failed: falling back to yolo11n with random weights (few detections)"
    weights="$work/yolo11n_random.pt"
    python3 -c "import sys; from ultralytics import YOLO; YOLO('yolo11n.yaml').save(sys.argv[1])" \
        "$weights"
fi
wait "$synth_pid"; echo "synthetic video: exit $?"
wait "$tests_pid"; echo "CUDA tests: exit $?"; tail -n 5 "$out/tests.log"

stamp "B. training throughput (alone)"
timeout 150 python3 scripts/bench_training.py --device "$device" --batch-size 8192 \
    --windows "${WINDOWS:-400000}" --out "$out/bench_training.json" 2>&1 | tail -n 8

# fp32_cpufc: the writer's forecaster on the CPU (forecast.device=cpu), so that only the
# detector's process uses the GPU (two processes on one GPU take turns on it).
for arm in fp16 fp32 fp32_cpufc; do
    stamp "C. pipeline vs bare YOLO.track, $arm (alone)"
    extra=""
    [ "$arm" = fp16 ] && extra="--half"
    [ "$arm" = fp32_cpufc ] && extra="--forecast-device cpu"
    timeout 200 python3 scripts/bench_pipeline.py "$video" --weights "$weights" --imgsz 640 \
        --device "$device" --max-frames "${FRAMES:-300}" $extra \
        --out "$out/bench_$arm.json" 2>&1 | tail -n 12
done
stamp "done"
