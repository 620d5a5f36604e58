"""Training throughput at mask ratios 0 / 0.5 / 0.75 (same as `medflip bench throughput`)."""

import sys

from medflip_core.bench.throughput import main

if __name__ == "__main__":
    sys.exit(main())
