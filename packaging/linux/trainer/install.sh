#!/usr/bin/env sh
# Install the MedFLIP Studio trainer add-on (PyTorch) for the current user, beside the app: the app lives in
# ~/.local/opt/medflip-studio (MEDFLIP_INSTALL_DIR), the add-on goes to ~/.local/opt/medflip-studio-trainer
# (MEDFLIP_TRAINER_INSTALL_DIR overrides it; the app then needs MEDFLIP_TRAINER=<dir>/MedFLIPStudio-trainer).
# The app looks for it at each training job: no reinstall, no restart. Research use only, not for diagnosis.
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
APPDIR=${MEDFLIP_INSTALL_DIR:-"$HOME/.local/opt/medflip-studio"}
ADDON=${MEDFLIP_TRAINER_INSTALL_DIR:-"$(dirname "$APPDIR")/medflip-studio-trainer"}

if [ ! -x "$HERE/MedFLIPStudio-trainer/MedFLIPStudio-trainer" ]; then
    echo "install.sh: $HERE/MedFLIPStudio-trainer/MedFLIPStudio-trainer not found; run this script from the unpacked archive" >&2
    exit 1
fi
if [ ! -x "$APPDIR/MedFLIPStudio" ]; then
    echo "install.sh: note: MedFLIP Studio is not installed in $APPDIR yet; install it too (its own install.sh)."
fi

echo "Installing the MedFLIP Studio trainer add-on into $ADDON"
mkdir -p "$(dirname "$ADDON")"
# copy next to the old version, then swap, so a failed copy (full disk) leaves the installed add-on working
rm -rf "$ADDON.new"
cp -R "$HERE/MedFLIPStudio-trainer" "$ADDON.new"
rm -rf "$ADDON.old"
if [ -d "$ADDON" ]; then
    if [ ! -x "$ADDON/MedFLIPStudio-trainer" ]; then
        echo "install.sh: $ADDON exists and is not a MedFLIP Studio trainer add-on; not touching it" >&2
        rm -rf "$ADDON.new"
        exit 1
    fi
    mv "$ADDON" "$ADDON.old"
fi
mv "$ADDON.new" "$ADDON"
rm -rf "$ADDON.old"
cp "$HERE/uninstall.sh" "$ADDON/uninstall.sh"
echo "Done. Pre-training and partial/full fine-tuning in MedFLIP Studio now use it (no restart needed)."
echo "Remove it with: $ADDON/uninstall.sh"
