"""Where the project's shared data lie: ``../shared`` next to the checkout (CI has it), or
``$SAMBENCH_SHARED``. Tests that need them skip with a reason when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("SAMBENCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SEED = SHARED / "data" / "seed-samples"
REFERENCE = SHARED / "reference"
