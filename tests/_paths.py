"""Where the real datasets the tests read live: ``../shared/data`` beside the checkout (or ``$SEMID_SHARED_DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEMID_SHARED_DATA", REPO.parent / "shared" / "data"))
