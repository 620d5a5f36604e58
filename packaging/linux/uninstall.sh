#!/usr/bin/env sh
# Remove MedFLIP Studio installed by install.sh. Your models, settings and training runs (in the user data
# and config folders the app shows under Settings) are kept.
set -eu
DATA_HOME=${XDG_DATA_HOME:-"$HOME/.local/share"}
BIN_HOME=${MEDFLIP_BIN_DIR:-"$HOME/.local/bin"}
# not $DATA_HOME/medflip-studio: that is the app's user data folder (your models and training runs)
APPDIR=${MEDFLIP_INSTALL_DIR:-"$HOME/.local/opt/medflip-studio"}

rm -f "$DATA_HOME/applications/medflip-studio.desktop" "$DATA_HOME/mime/packages/medflip-studio.xml" \
      "$DATA_HOME/icons/hicolor/256x256/apps/medflip-studio.png" \
      "$DATA_HOME/icons/hicolor/scalable/apps/medflip-studio.svg"
if [ -L "$BIN_HOME/medflip-studio" ]; then rm -f "$BIN_HOME/medflip-studio"; fi
if [ -x "$APPDIR/MedFLIPStudio" ]; then rm -rf "$APPDIR"; else echo "uninstall.sh: no installation in $APPDIR" >&2; fi
if command -v update-mime-database >/dev/null 2>&1; then update-mime-database "$DATA_HOME/mime" >/dev/null 2>&1 || true; fi
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database "$DATA_HOME/applications" >/dev/null 2>&1 || true; fi
echo "MedFLIP Studio removed (your models and runs are kept)."
