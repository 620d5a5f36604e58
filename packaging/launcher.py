"""Entry point of the frozen app: the GUI (app.main), or with --trainer / --medflip as first argument the
trainer and the `medflip` command, which the frozen app starts as processes of this same executable
(medflip_core/processes.py). The dispatch lives here, not in app/: the GUI layer never imports the trainer."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers on spawn platforms re-enter this executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    first = sys.argv[1:2]
    if first == ["--trainer"]:
        from trainer.cli import main

        sys.exit(main(sys.argv[2:]))
    if first == ["--medflip"]:
        from medflip_core.cli import main

        sys.exit(main(sys.argv[2:]))
    from app.main import main

    sys.exit(main())
