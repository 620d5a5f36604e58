"""Entry point of the frozen app: the GUI (app.main), or with --trainer / --medflip as first argument the
trainer and the `medflip` command, which the frozen app starts as processes of this same executable
(medflip_core/processes.py). The dispatch lives here, not in app/: the GUI layer never imports the trainer.
The light app has no torch: --trainer runs the trainer add-on when it is installed, else says how to get it."""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # DataLoader workers on spawn platforms re-enter this executable
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    first = sys.argv[1:2]
    if first == ["--trainer"]:
        from medflip_core.processes import TrainerMissing, trainer_command

        try:
            program, args = trainer_command(sys.argv[2:])
        except TrainerMissing as exc:
            print(f"MedFLIPStudio: {exc}", file=sys.stderr)
            sys.exit(2)
        if program == sys.executable:  # this build carries torch: the trainer runs in this process
            from trainer.cli import main

            sys.exit(main(sys.argv[2:]))
        os.execv(program, [program, *args])  # the add-on, in place of this process (signals reach it)
    if first == ["--medflip"]:
        from medflip_core.cli import main

        sys.exit(main(sys.argv[2:]))
    from app.main import main

    sys.exit(main())
