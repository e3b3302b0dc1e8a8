#!/usr/bin/env bash
# A generator trained on CelebA (more turned faces than UTKFace), from scratch:
#
#   bash docs/jobs/celeba-generator.sh WORKDIR [MINUTES]
#
# 1. The photos: 46,715 aligned CelebA photos (178x218 JPEG, 5 for each of 9,343 people,
#    391 MB) from the public repository ShaharKSegal/CelebA_Samples, folder
#    celeba_identity_samples/. CelebA is for non-commercial research only; keep the
#    photos and everything made from them out of any repository you publish.
# 2. `synthface align` at 128 px (FFHQ's alignment): about 9.5 minutes on 2 CPU cores
#    (83 photos/s), 45,328 faces from 46,715 photos (1,461 without a face HOG finds),
#    1.5 GB of PNG.
# 3. `synthface train` with the data-efficient recipe (DiffAugment + generator EMA) for
#    MINUTES (default 105), then its latent directions (`synthface directions`), which
#    steering (--yaw, --pitch, --pose-mix) needs.
set -euo pipefail
W=${1:?usage: celeba-generator.sh WORKDIR [MINUTES]}
MIN=${2:-105}
COMMIT=2a68dac53f1a175a4716f615d7f096c8a6122482
mkdir -p "$W"
if [ ! -d "$W/CelebA_Samples" ]; then
    git clone --no-checkout https://github.com/ShaharKSegal/CelebA_Samples "$W/CelebA_Samples"
    git -C "$W/CelebA_Samples" checkout "$COMMIT" -- celeba_identity_samples identity_CelebA.txt
fi
# resumable: run the script again after an interruption
resume=(); [ -d "$W/celeba128" ] && resume=(--resume)
synthface align "$W/CelebA_Samples/celeba_identity_samples" "$W/celeba128" --size 128 "${resume[@]}"
synthface train --data "$W/celeba128" --out "$W/celeba64" --max-epochs 1000 \
    train.diffaugment=color,translation,cutout train.ema_halflife_kimg=10 "train.max_minutes=$MIN" \
    train.save_every=1 train.sample_every=1
synthface directions --checkpoint "$W/celeba64/generator.safetensors"
echo "generator: $W/celeba64/generator.safetensors (make-dataset --checkpoint ...)"
