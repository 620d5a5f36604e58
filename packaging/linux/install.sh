#!/usr/bin/env sh
# Install MedFLIP Studio for the current user (no root): the app goes to ~/.local/opt/medflip-studio
# (MEDFLIP_INSTALL_DIR overrides it), a launcher to ~/.local/bin, and a desktop entry with the icon and the
# DICOM / PNG / JPEG file types, so a double-click starts it and "Open with" offers it.
# Research use only, not for diagnosis.
set -eu

HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
DATA_HOME=${XDG_DATA_HOME:-"$HOME/.local/share"}
BIN_HOME=${MEDFLIP_BIN_DIR:-"$HOME/.local/bin"}
# not $DATA_HOME/medflip-studio: that is the app's user data folder (your models and training runs)
APPDIR=${MEDFLIP_INSTALL_DIR:-"$HOME/.local/opt/medflip-studio"}

if [ ! -x "$HERE/MedFLIPStudio/MedFLIPStudio" ]; then
    echo "install.sh: $HERE/MedFLIPStudio/MedFLIPStudio not found; run this script from the unpacked archive" >&2
    exit 1
fi

echo "Installing MedFLIP Studio into $APPDIR"
mkdir -p "$(dirname "$APPDIR")" "$BIN_HOME" "$DATA_HOME/applications" "$DATA_HOME/mime/packages" \
         "$DATA_HOME/icons/hicolor/256x256/apps" "$DATA_HOME/icons/hicolor/scalable/apps"
# copy next to the old version, then swap, so a failed copy (full disk) leaves the installed app working
rm -rf "$APPDIR.new"
cp -R "$HERE/MedFLIPStudio" "$APPDIR.new"
rm -rf "$APPDIR.old"
if [ -d "$APPDIR" ]; then
    if [ ! -x "$APPDIR/MedFLIPStudio" ]; then
        echo "install.sh: $APPDIR exists and is not a MedFLIP Studio installation; not touching it" >&2
        rm -rf "$APPDIR.new"
        exit 1
    fi
    mv "$APPDIR" "$APPDIR.old"
fi
mv "$APPDIR.new" "$APPDIR"
rm -rf "$APPDIR.old"
cp "$HERE/uninstall.sh" "$APPDIR/uninstall.sh"

ICONS="$APPDIR/_internal/resources/icons"
cp "$ICONS/medflip.png" "$DATA_HOME/icons/hicolor/256x256/apps/medflip-studio.png"
if [ -f "$ICONS/medflip.svg" ]; then cp "$ICONS/medflip.svg" "$DATA_HOME/icons/hicolor/scalable/apps/medflip-studio.svg"; fi
sed "s|@APPDIR@|$APPDIR|g" "$HERE/medflip-studio.desktop.in" > "$DATA_HOME/applications/medflip-studio.desktop"
chmod 644 "$DATA_HOME/applications/medflip-studio.desktop"
cp "$HERE/medflip-studio-mime.xml" "$DATA_HOME/mime/packages/medflip-studio.xml"
ln -sf "$APPDIR/MedFLIPStudio" "$BIN_HOME/medflip-studio"

# refresh the desktop's caches when the tools exist (they do on desktops; harmless to skip elsewhere)
if command -v update-mime-database >/dev/null 2>&1; then update-mime-database "$DATA_HOME/mime" >/dev/null 2>&1 || true; fi
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database "$DATA_HOME/applications" >/dev/null 2>&1 || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" >/dev/null 2>&1 || true; fi

echo "Done. Start it from the applications menu, by double-clicking a DICOM/PNG/JPEG file, or with:"
echo "  $BIN_HOME/medflip-studio"
echo "Remove it with: $APPDIR/uninstall.sh"
