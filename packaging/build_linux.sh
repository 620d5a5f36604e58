#!/usr/bin/env bash
# Build the Linux release: the PyInstaller one-folder bundle (pyinstaller.spec), then
# dist/MedFLIPStudio-<version>-linux-<arch>.tar.gz holding it with install.sh / uninstall.sh and the desktop
# entry. Prints the build time, the bundle's size by component and the archive's size.
# Usage: packaging/build_linux.sh [python]   (make dist passes the project's venv python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
VERSION=$("$PY" -c "import medflip_core; print(medflip_core.__version__)")
ARCH=$(uname -m)
STAGE="MedFLIPStudio-$VERSION-linux-$ARCH"
start=$(date +%s)

rm -rf "build/pyinstaller" "dist/$STAGE" "dist/$STAGE.tar.gz"
mkdir -p "dist/$STAGE"
HF_HUB_OFFLINE=1 "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "dist/$STAGE" --workpath build/pyinstaller pyinstaller.spec
built=$(date +%s)

cp packaging/linux/install.sh packaging/linux/uninstall.sh packaging/linux/medflip-studio.desktop.in \
   packaging/linux/medflip-studio-mime.xml "dist/$STAGE/"
cat > "dist/$STAGE/README.txt" <<TXT
MedFLIP Studio $VERSION for Linux ($ARCH). Research use only, not for diagnosis.

Install for your user (no root needed):   ./install.sh
Then start it from the applications menu, double-click a DICOM/PNG/JPEG file, or run ~/.local/bin/medflip-studio.
Run it without installing:                 ./MedFLIPStudio/MedFLIPStudio
Command line without the GUI:              ./MedFLIPStudio/MedFLIPStudio --medflip --help
Trainer without the GUI:                   ./MedFLIPStudio/MedFLIPStudio --trainer pretrain --help
Remove it:                                 ~/.local/opt/medflip-studio/uninstall.sh

Needs: Linux x86_64 with a glibc at least as new as the build machine's (2.36 here) and an X11 or Wayland desktop (X11 needs the libxcb-icccm4 and
libxcb-keysyms1 packages, present on common desktops). An NVIDIA GPU with a current driver is used for
training when there is one; everything also runs on the CPU.
TXT

if command -v pigz >/dev/null 2>&1; then GZ="pigz"; else GZ="gzip"; fi
tar -C dist -cf - "$STAGE" | $GZ -6 > "dist/$STAGE.tar.gz.partial"
mv "dist/$STAGE.tar.gz.partial" "dist/$STAGE.tar.gz"
done_at=$(date +%s)

"$PY" packaging/bundle_report.py "dist/$STAGE/MedFLIPStudio"
echo "PyInstaller build: $((built - start)) s; archive: $((done_at - built)) s; total $((done_at - start)) s"
echo "archive dist/$STAGE.tar.gz: $(du -h "dist/$STAGE.tar.gz" | cut -f1)"
echo "bundle folder: dist/$STAGE/MedFLIPStudio"
