"""Shared fixtures.

``shared_data`` is the folder of real files (``../shared/data`` from the project root, or
``$CRYODIAG_SHARED_DATA``); tests that need it skip with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRYODIAG_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def pytest_configure(config):
    # Figures are built without a display by the core; widgets use the Qt backend explicitly.
    import matplotlib

    matplotlib.use("Agg", force=True)
