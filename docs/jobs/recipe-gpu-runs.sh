#!/usr/bin/env bash
# The generator runs behind issue 13 (a stronger generator from the same data), as run
# on one GPU: four trainings side by side for the same wall-clock budget, then the
# final (EMA) generators converted to fp16 for evaluation on another machine.
#
#   bash docs/jobs/recipe-gpu-runs.sh DATA.zip OUTDIR MINUTES [BENCH_SECONDS]
#
#   plain64  dcgan64 as the DCGAN paper (batch 128): what longer training alone gives
#   aug64    + DiffAugment color,translation + generator EMA (half-life 10k images)
#   cut64    + DiffAugment color,translation,cutout + EMA
#   hinge64  aug64 + hinge loss + spectral norm in D + TTUR (lr_D 4e-4, lr_G 1e-4)
#   aug128   the dcgan128 preset (DiffAugment color,translation + EMA), batch 64
# First a short speed bench (images/s in fp32, bf16-mixed, bf16-mixed + channels_last).
set -u
DATA=$1; OUT=$2; MIN=$3; BENCH=${4:-80}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
mkdir -p "$OUT" runs/gpu
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"
timeout "$BENCH" python3 bench/bench_train.py --presets dcgan64 dcgan128 --batch-size 128 --batches 40 \
    --epochs 2 --no-plain --modes 32-true bf16-mixed bf16-mixed+cl > runs/gpu/speed.csv 2> runs/gpu/speed.err
cat runs/gpu/speed.csv
# decode the faces once per size, so the four runs do not race to write one cache file
python3 -c "from synthface.generator.data import load_faces as f; import sys; [f(sys.argv[1], s, '/tmp/sfcache', False) for s in (64, 128)]" "$DATA"
common=(--no-progress --max-epochs 100000 train.channels_last=true "train.max_minutes=$MIN"
        train.sample_every=20 train.save_every=20 data.cache_dir=/tmp/sfcache)
aug=(train.diffaugment=color,translation train.ema_halflife_kimg=10)
python3 -m synthface train --data "$DATA" --out runs/gpu/plain64 --batch-size 128 "${common[@]}" > runs/gpu/plain64.log 2>&1 &
python3 -m synthface train --data "$DATA" --out runs/gpu/aug64 --batch-size 128 "${common[@]}" "${aug[@]}" > runs/gpu/aug64.log 2>&1 &
python3 -m synthface train --data "$DATA" --out runs/gpu/cut64 --batch-size 128 "${common[@]}" \
    train.diffaugment=color,translation,cutout train.ema_halflife_kimg=10 > runs/gpu/cut64.log 2>&1 &
python3 -m synthface train --data "$DATA" --out runs/gpu/hinge64 --batch-size 128 "${common[@]}" "${aug[@]}" \
    train.loss=hinge model.spectral_norm=true train.lr_d=0.0004 train.lr_g=0.0001 > runs/gpu/hinge64.log 2>&1 &
python3 -m synthface train --data "$DATA" --out runs/gpu/aug128 --config dcgan128 "${common[@]}" > runs/gpu/aug128.log 2>&1 &
wait
tail -n 3 runs/gpu/*.log
python3 - "$OUT" <<'PY'
import shutil, sys, tempfile
from pathlib import Path
from synthface.generator.weights import load_generator, save_generator
out = Path(sys.argv[1])
def half(src, name):
    g, meta = load_generator(src)
    extra = {k: v for k, v in meta.items() if k not in ("arch", "format")}
    with tempfile.TemporaryDirectory() as tmp:  # only the .safetensors travels: its header holds the JSON
        save_generator(g.half(), meta["arch"], Path(tmp) / f"{name}.safetensors", extra={**extra, "stored_as": "float16"})
        shutil.move(Path(tmp) / f"{name}.safetensors", out / f"{name}.safetensors")
    print(name, "epoch", meta.get("epoch"))
for run in ("plain64", "aug64", "cut64", "hinge64", "aug128"):
    final = Path("runs/gpu") / run / "generator.safetensors"
    if final.is_file():
        half(final, run)
snaps = sorted((Path("runs/gpu/aug64") / "weights").glob("epoch_*.safetensors"))
if len(snaps) >= 2:
    half(snaps[len(snaps) // 2], "aug64_mid")
PY
if [ -f "$OUT/aug128.safetensors" ]; then split -b 15M -d "$OUT/aug128.safetensors" "$OUT/aug128.part"; rm "$OUT/aug128.safetensors"; fi
tail -n 40 runs/gpu/speed.err > runs/gpu/speed.tail; tar czf "$OUT/logs.tgz" runs/gpu/*.log runs/gpu/speed.csv runs/gpu/speed.tail runs/gpu/*/loss.csv runs/gpu/*/config.yaml \
    $(for r in runs/gpu/*/; do ls "$r"samples/*.png 2>/dev/null | tail -1; done)
ls -la "$OUT"
