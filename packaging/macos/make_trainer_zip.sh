#!/usr/bin/env bash
# Zip the trainer add-on (dist/trainer/MedFLIPStudio-trainer, built with MEDFLIP_FLAVOUR=trainer) with its
# install_trainer.sh into dist/MedFLIPStudio-trainer-<version>-macos.zip. UNTESTED (no macOS build machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=$(.venv/bin/python -c "import medflip_core; print(medflip_core.__version__)")
STAGE=$(mktemp -d)/MedFLIPStudio-trainer-$VERSION-macos
mkdir -p "$STAGE"
cp -R dist/trainer/MedFLIPStudio-trainer "$STAGE/"
cp packaging/macos/install_trainer.sh "$STAGE/"
(cd "$(dirname "$STAGE")" && ditto -c -k --keepParent "$(basename "$STAGE")" \
    "$OLDPWD/dist/MedFLIPStudio-trainer-$VERSION-macos.zip")
rm -rf "$(dirname "$STAGE")"
