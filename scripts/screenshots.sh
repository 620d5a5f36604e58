#!/usr/bin/env bash
# Screenshots of every tab at 1280x800 and 1920x1080 with a real DICOM open (issue 15): look at them before a
# release. Usage: scripts/screenshots.sh [OUT_DIR]   (offscreen; needs `make setup`)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/medflip-screenshots/tabs}"
mkdir -p "$out"
dicom="../shared/data/dicom/rsna_cr_chest_jpeg_baseline.dcm"
for size in 1280x800 1920x1080; do
    for tab in "Zero-shot" "Mask sampling" "Retrieval" "Tags" "Batch" "Training"; do
        name="$(echo "$tab" | tr 'A-Z ' 'a-z-')-$size.png"
        QT_QPA_PLATFORM=offscreen .venv/bin/medflip-studio --offscreen --size "$size" --tab "$tab" \
            --open "$dicom" --screenshot "$out/$name"
        echo "$out/$name"
    done
done
