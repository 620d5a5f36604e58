#!/usr/bin/env sh
# Remove the MedFLIP Studio trainer add-on. The app, your models, settings and training runs are kept.
set -eu
APPDIR=${MEDFLIP_INSTALL_DIR:-"$HOME/.local/opt/medflip-studio"}
ADDON=${MEDFLIP_TRAINER_INSTALL_DIR:-"$(dirname "$APPDIR")/medflip-studio-trainer"}
if [ -x "$ADDON/MedFLIPStudio-trainer" ]; then
    rm -rf "$ADDON"
    echo "MedFLIP Studio trainer add-on removed (the app, your models and runs are kept)."
else
    echo "uninstall.sh: no trainer add-on in $ADDON" >&2
    exit 1
fi
