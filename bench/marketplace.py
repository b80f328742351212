"""Catalogue and scheduler latency over 100,000 nodes (see apps/marketplace/bench.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.marketplace.bench import main  # noqa: E402

if __name__ == "__main__":
    main()
