"""Entry point of the frozen app: the GUI, or with --trainer / --medflip the trainer and the CLI (app.main)."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers on spawn platforms re-enter this executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from app.main import main

    sys.exit(main())
