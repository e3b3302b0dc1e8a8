#!/usr/bin/env bash
# The CelebA generator as run on one GPU (the CPU run is docs/jobs/celeba-generator.sh):
# two dcgan64 trainings side by side for the same wall-clock budget, their final (EMA)
# generators stored as float16 in OUTDIR, with their logs. Run from the repository's root.
#
#   bash docs/jobs/celeba-gpu-runs.sh DATA.zip OUTDIR MINUTES
#
# DATA.zip: the faces `synthface align ... --size 128` made, resized once to 64 px and
# stored as WebP q80 (45,328 faces in 49 MB, small enough to send to a rented GPU).
#   cut64  the bundled generator's recipe: DiffAugment color,translation,cutout + EMA
#   aug64  DiffAugment color,translation + EMA (no cutout: 45k faces, 5x utkface-crop)
set -u
DATA=$1; OUT=$2; MIN=$3
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
# a GPU machine with torch and Lightning but without synthface installed: the source tree
# as the package (cli/ and configs/ install as synthface.cli and synthface.configs)
python3 -c "import synthface.cli" 2>/dev/null || { ln -sfn ../cli synthface/cli; ln -sfn ../configs synthface/configs; }
mkdir -p "$OUT" runs/gpu
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
python3 -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"
# decode the faces once, so the two runs do not race to write one cache file
python3 -c "from synthface.core.imagefiles import load_faces as f; import sys; print(f(sys.argv[1], 64, '/tmp/sfcache', False).shape)" "$DATA"
common=(--no-progress --max-epochs 100000 --batch-size 128 train.channels_last=true "train.max_minutes=$MIN"
        train.sample_every=5 train.save_every=5 data.cache_dir=/tmp/sfcache train.ema_halflife_kimg=10)
python3 -m synthface train --data "$DATA" --out runs/gpu/cut64 "${common[@]}" \
    train.diffaugment=color,translation,cutout > runs/gpu/cut64.log 2>&1 &
python3 -m synthface train --data "$DATA" --out runs/gpu/aug64 "${common[@]}" \
    train.diffaugment=color,translation > runs/gpu/aug64.log 2>&1 &
wait
tail -n 3 runs/gpu/*.log
python3 - "$OUT" <<'PY'
import shutil, sys, tempfile
from pathlib import Path
from synthface.generator.weights import load_generator, save_generator
out = Path(sys.argv[1])
for run in ("cut64", "aug64"):
    final = Path("runs/gpu") / run / "generator.safetensors"
    if not final.is_file():
        continue
    g, meta = load_generator(final)
    extra = {k: v for k, v in meta.items() if k not in ("arch", "format")}
    with tempfile.TemporaryDirectory() as tmp:  # only the .safetensors travels: its header holds the JSON
        save_generator(g.half(), meta["arch"], Path(tmp) / f"{run}.safetensors", extra={**extra, "stored_as": "float16"})
        shutil.move(Path(tmp) / f"{run}.safetensors", out / f"{run}.safetensors")
    print(run, "epoch", meta.get("epoch"))
PY
tar czf "$OUT/logs.tgz" runs/gpu/*.log runs/gpu/*/loss.csv runs/gpu/*/config.yaml \
    $(for r in runs/gpu/*/; do ls "$r"samples/*.png 2>/dev/null | tail -1; done)
ls -la "$OUT"
