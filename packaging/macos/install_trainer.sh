#!/usr/bin/env sh
# Install the MedFLIP Studio trainer add-on (PyTorch; CPU/MPS on macOS) for the current user, where the app looks
# for it on macOS: ~/Library/Application Support/medflip-studio/trainer (medflip_core/processes.py; inside the
# .app bundle it would break the app's signature). The app finds it at the next job: no reinstall, no restart.
# UNTESTED: this project has no macOS machine. Research use only, not for diagnosis.
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
DEST=${MEDFLIP_DATA_DIR:-"$HOME/Library/Application Support/medflip-studio"}/trainer

if [ ! -x "$HERE/MedFLIPStudio-trainer/MedFLIPStudio-trainer" ]; then
    echo "install_trainer.sh: $HERE/MedFLIPStudio-trainer/MedFLIPStudio-trainer not found; run it from the unpacked zip" >&2
    exit 1
fi
if [ -e "$DEST" ] && [ ! -x "$DEST/MedFLIPStudio-trainer" ]; then
    echo "install_trainer.sh: $DEST exists and is not a MedFLIP Studio trainer add-on; not touching it" >&2
    exit 1
fi
echo "Installing the MedFLIP Studio trainer add-on into $DEST"
mkdir -p "$(dirname "$DEST")"
# copy beside the old version, then swap: a failed copy (full disk) leaves the installed add-on working
rm -rf "$DEST.new" "$DEST.old"
cp -R "$HERE/MedFLIPStudio-trainer" "$DEST.new"
# a zip from a browser marks every file it unpacks as quarantined: Gatekeeper would then refuse the add-on's
# unsigned libraries one by one when the app starts a job. The user ran this script on purpose: lift the mark.
if command -v xattr >/dev/null 2>&1; then xattr -dr com.apple.quarantine "$DEST.new" 2>/dev/null || true; fi
if [ -d "$DEST" ]; then mv "$DEST" "$DEST.old"; fi
mv "$DEST.new" "$DEST"
rm -rf "$DEST.old"
echo "Done. Pre-training and partial/full fine-tuning in MedFLIP Studio now use it. Remove it: rm -rf \"$DEST\""
