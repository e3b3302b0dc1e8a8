#!/usr/bin/env bash
# Ultralytics reads a synthface dataset unchanged: make one, then train YOLOv8n-pose on its
# data.yaml with Ultralytics' own CLI, from a yaml model (no weights to download).
#
# Ultralytics needs torchvision, and PyPI's torchvision does not match this project's CPU
# torch pin, so it lives in a virtualenv of its own with a matching pair, e.g.
#   python3 -m venv ../ultra && ../ultra/bin/pip install torch==2.14.1 torchvision==0.29.1 ultralytics
# Usage: bench/check_ultralytics.sh ULTRA_VENV [N_FACES] [EPOCHS] [IMGSZ] [YOLO_ARG ...]   (log: bench/results/)
#   MAKE_ARGS="--box points" in the environment adds make-dataset options; YOLO_ARGs (e.g. mosaic=0)
#   go to `yolo pose train`.
set -euo pipefail
venv=${1:?usage: bench/check_ultralytics.sh ULTRA_VENV [N_FACES] [EPOCHS] [IMGSZ] [YOLO_ARG ...]}
n=${2:-2000}
epochs=${3:-10}
imgsz=${4:-64}
shift $(( $# < 4 ? $# : 4 ))
extra=("$@")
make_args=(${MAKE_ARGS:-})
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
# KEEP=DIR in the environment keeps the dataset and the run there (for bench/yolo_pose_nme.py)
trap 'if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp -r "$work"/. "$KEEP"/; fi; rm -rf "$work"' EXIT
suffix=$( ((imgsz == 64)) || echo "_s$imgsz")$( ((${#extra[@]} + ${#make_args[@]} == 0)) || echo _tuned)
log="$root/bench/results/ultralytics_n${n}_e${epochs}${suffix}.log"
mkdir -p "$root/bench/results"
{
  echo "# $(date -u +%FT%TZ) $("$venv/bin/pip" list 2>/dev/null | grep -E '^(ultralytics|torch|torchvision) ' | tr -s ' ' | tr '\n' ';')"
  "$root/.venv/bin/synthface" make-dataset -n "$n" --landmarks --out "$work/faces" --no-progress "${make_args[@]}"
  cat "$work/faces/data.yaml"
  cd "$work"
  echo "+ make-dataset options: ${make_args[*]}"
  echo "+ yolo pose train data=$work/faces/data.yaml model=yolov8n-pose.yaml epochs=$epochs imgsz=$imgsz batch=64 device=cpu plots=False ${extra[*]}"
  "$venv/bin/yolo" pose train data="$work/faces/data.yaml" model=yolov8n-pose.yaml epochs="$epochs" imgsz="$imgsz" \
    batch=64 device=cpu workers=2 plots=False project="$work/runs" name=check exist_ok=True "${extra[@]}" 2>&1 \
    | tr '\r' '\n' | grep -v -E '[0-9]+/[0-9]+ +[0-9.]+(it/s|s/it)' || true
  echo "+ results.csv"
  cat "$work/runs/check/results.csv"
} 2>&1 | tee "$log"
