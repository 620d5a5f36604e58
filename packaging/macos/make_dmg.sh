#!/usr/bin/env bash
# Wrap the light app dist/light/MedFLIPStudio.app (MEDFLIP_FLAVOUR=light) into a compressed disk image with an Applications shortcut. UNTESTED (no macOS
# build machine); needs hdiutil, which ships with macOS.
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(build/light-venv/bin/python -c "import medflip_core; print(medflip_core.__version__)")
STAGE=$(mktemp -d)
cp -R dist/light/MedFLIPStudio.app "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "MedFLIP Studio $VERSION" -srcfolder "$STAGE" -ov -format UDZO \
    "dist/MedFLIPStudio-$VERSION.dmg"
rm -rf "$STAGE"
