"""Entry point of the trainer add-on (MedFLIPStudio-trainer, pyinstaller.spec's trainer flavour): torch, no Qt.
`--trainer ARGS` runs the trainer (`python -m trainer ARGS`), `--medflip ARGS` the `medflip` command with torch
(export of a checkpoint); the light app starts it for those (medflip_core/processes.py). Without a flag the
arguments go to the trainer."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers on spawn platforms re-enter this executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if sys.argv[1:2] == ["--medflip"]:
        from medflip_core.cli import main

        sys.exit(main(sys.argv[2:]))
    from trainer.cli import main

    sys.exit(main(sys.argv[2:] if sys.argv[1:2] == ["--trainer"] else sys.argv[1:]))
