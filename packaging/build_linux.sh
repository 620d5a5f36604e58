#!/usr/bin/env bash
# Build one flavour of the Linux release (pyinstaller.spec): the one-folder bundle, then
# dist/<NAME>-<version>-linux-<arch>.tar.gz holding it with its install.sh / uninstall.sh (and, for the app, the
# desktop entry). Prints the build time, the bundle's size by component and the archive's size.
#   light    MedFLIPStudio: the app without torch; PYTHON must be a venv without torch (make dist: build/light-venv)
#   trainer  MedFLIPStudio-trainer: the trainer add-on (torch), installed beside the app; PYTHON = the project venv
# Usage: packaging/build_linux.sh light|trainer [python]   (make dist builds both)
set -euo pipefail
cd "$(dirname "$0")/.."
FLAVOUR=${1:?usage: packaging/build_linux.sh light|trainer [python]}
PY=${2:-.venv/bin/python}
case "$FLAVOUR" in
    light) NAME=MedFLIPStudio ;;
    trainer) NAME=MedFLIPStudio-trainer ;;
    *) echo "build_linux.sh: flavour must be light or trainer, not $FLAVOUR" >&2; exit 2 ;;
esac
VERSION=$("$PY" -c "import medflip_core; print(medflip_core.__version__)")
ARCH=$(uname -m)
STAGE="$NAME-$VERSION-linux-$ARCH"
start=$(date +%s)

rm -rf "build/pyinstaller-$FLAVOUR" "dist/$STAGE" "dist/$STAGE.tar.gz"
mkdir -p "dist/$STAGE"
MEDFLIP_FLAVOUR=$FLAVOUR HF_HUB_OFFLINE=1 "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "dist/$STAGE" --workpath "build/pyinstaller-$FLAVOUR" pyinstaller.spec
built=$(date +%s)

if [ "$FLAVOUR" = light ]; then
    cp packaging/linux/install.sh packaging/linux/uninstall.sh packaging/linux/medflip-studio.desktop.in \
       packaging/linux/medflip-studio-mime.xml "dist/$STAGE/"
    cat > "dist/$STAGE/README.txt" <<TXT
MedFLIP Studio $VERSION for Linux ($ARCH). Research use only, not for diagnosis.

Install for your user (no root needed):   ./install.sh
Then start it from the applications menu, double-click a DICOM/PNG/JPEG file, or run ~/.local/bin/medflip-studio.
Run it without installing:                 ./MedFLIPStudio/MedFLIPStudio
Command line without the GUI:              ./MedFLIPStudio/MedFLIPStudio --medflip --help
Remove it:                                 ~/.local/opt/medflip-studio/uninstall.sh   (your models and runs are kept)

This is the light app: viewing, zero-shot scoring, retrieval, batch scoring and the probe fine-tune run on the
CPU (ONNX Runtime). Pre-training and partial/full fine-tuning need the trainer add-on (PyTorch, ~4 GB):
unpack MedFLIPStudio-trainer-$VERSION-linux-$ARCH.tar.gz and run its ./install.sh; the app finds it at the next
job, without reinstalling. The add-on also carries the CUDA runtime that moves the app's inference to an NVIDIA
GPU (with the system's NVIDIA driver) from the next model the app loads. Where inference runs, and why:
the status bar, or ./MedFLIPStudio/MedFLIPStudio --medflip gpu

Needs: Linux x86_64 with a glibc at least as new as the build machine's (2.36 here) and an X11 or Wayland desktop
(X11 needs the libxcb-icccm4 and libxcb-keysyms1 packages, present on common desktops).
TXT
else
    cp packaging/linux/trainer/install.sh packaging/linux/trainer/uninstall.sh "dist/$STAGE/"
    cat > "dist/$STAGE/README.txt" <<TXT
MedFLIP Studio trainer add-on $VERSION for Linux ($ARCH): PyTorch (CUDA) for pre-training and partial/full
fine-tuning in MedFLIP Studio. Research use only, not for diagnosis.

Install it after the app, for your user (no root needed):   ./install.sh
It goes beside the app (~/.local/opt/medflip-studio-trainer, or next to \$MEDFLIP_INSTALL_DIR); the app finds it at
its next job, without reinstalling. Remove it: ~/.local/opt/medflip-studio-trainer/uninstall.sh (the app, your
models and runs are kept).
Without the app:   ./MedFLIPStudio-trainer/MedFLIPStudio-trainer --trainer pretrain --help
An NVIDIA GPU with a current driver is used when there is one; everything also runs on the CPU. Its CUDA
libraries also serve the app's inference (zero-shot, retrieval, batch scoring), from the next model it loads.
TXT
fi

if command -v pigz >/dev/null 2>&1; then GZ="pigz"; else GZ="gzip"; fi
tar -C dist -cf - "$STAGE" | $GZ -6 > "dist/$STAGE.tar.gz.partial"
mv "dist/$STAGE.tar.gz.partial" "dist/$STAGE.tar.gz"
done_at=$(date +%s)

"$PY" packaging/bundle_report.py "dist/$STAGE/$NAME"
echo "$FLAVOUR: PyInstaller build: $((built - start)) s; archive: $((done_at - built)) s; total $((done_at - start)) s"
echo "archive dist/$STAGE.tar.gz: $(du -h "dist/$STAGE.tar.gz" | cut -f1) ($(stat -c %s "dist/$STAGE.tar.gz") bytes)"
echo "bundle folder dist/$STAGE/$NAME: $(du -sh "dist/$STAGE/$NAME" | cut -f1)"
