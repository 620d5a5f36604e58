"""Labeler vs the IU reports' MeSH major tags (same as `medflip bench labeler`).

    .venv/bin/python benchmarks/labeler_agreement.py [--reports PATH] [--json]
"""

import sys

from medflip_core.labeler.agreement import main

if __name__ == "__main__":
    sys.exit(main())
