"""MedFLIP vs its ablations and baselines at equal wall-clock budget (same as `medflip bench ablation`)."""

import sys

from medflip_core.bench.ablation import main

if __name__ == "__main__":
    sys.exit(main())
