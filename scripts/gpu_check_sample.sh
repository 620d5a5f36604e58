#!/usr/bin/env bash
# Prepare the folder scripts/gpu_check.sh reads on a GPU machine, which reaches no network: a small real data sample
# (Kermany NORMAL/PNEUMONIA films, TBX11K films as images without labels) and, with --wheels, the project's
# packages for Python 3.12 that the machine may lack. Writes gpu-check/ (ignored by git; carry it to the machine).
#   bash scripts/gpu_check_sample.sh [--wheels]
set -eu
cd "$(dirname "$0")/.."
DATA=${MEDFLIP_SHARED_DATA:-../shared/data}
OUT=${GPU_CHECK_SAMPLE:-gpu-check}
rm -rf "$OUT"
mkdir -p "$OUT/kermany/NORMAL" "$OUT/kermany/PNEUMONIA" "$OUT/tbx11k"
ls "$DATA/cxr-pneumonia-kermany/train/NORMAL" | sort | head -160 | while read -r f; do
    cp "$DATA/cxr-pneumonia-kermany/train/NORMAL/$f" "$OUT/kermany/NORMAL/"; done
ls "$DATA/cxr-pneumonia-kermany/train/PNEUMONIA" | sort | head -160 | while read -r f; do
    cp "$DATA/cxr-pneumonia-kermany/train/PNEUMONIA/$f" "$OUT/kermany/PNEUMONIA/"; done
ls "$DATA/cxr-tb-tbx11k/images" | sort | head -64 | while read -r f; do cp "$DATA/cxr-tb-tbx11k/images/$f" "$OUT/tbx11k/"; done
if [ "${1:-}" = "--wheels" ]; then  # pure-Python or small wheels only: onnxruntime-gpu (~250 MB) does not fit
    python3 -m pip download --quiet --dest "$OUT/wheels" --only-binary=:all: --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        -c constraints.txt pydicom platformdirs pyyaml safetensors onnx
fi
du -sh "$OUT"
