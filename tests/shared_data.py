"""Where the tests' real data lie.

``SEED``: the seed samples (``22_Heart``, ``6_Pancreas``: the paper's PNG + ``info.json`` layout).
By default the small subset shipped in the repository under ``tests/data/seed-samples`` (see
``tests/data/README.md``), so the suite passes on a fresh clone. ``$SAMBENCH_SHARED`` is an opt-in
for the project's larger shared folder (``$SAMBENCH_SHARED/data/seed-samples``, all 30 images);
when it is unset or does not exist, the shipped subset is used. Tests derive their expected counts
from the files (never from a fixed number of images), so they hold on both.

``REFERENCE``: the paper's tables (Tables 2-8 as CSV). They ship inside the package
(``sambench/report/reference``, identical to the shared ``reference`` folder), so tests read them
from there.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEST_DATA = HERE / "data"
_shared = os.environ.get("SAMBENCH_SHARED")
_shared_seed = Path(_shared) / "data" / "seed-samples" if _shared else None
#: The seed samples the tests read: ``$SAMBENCH_SHARED/data/seed-samples`` when that exists,
#: else the subset in ``tests/data/seed-samples``.
SEED = (
    _shared_seed
    if _shared_seed is not None and _shared_seed.is_dir()
    else TEST_DATA / "seed-samples"
)
#: The paper's tables, as shipped in the package.
REFERENCE = HERE.parent / "src" / "sambench" / "report" / "reference"
