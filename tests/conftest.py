import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # for notebook_tools


@pytest.fixture(scope="session")
def adrenal_path():
    """The real AdrenalMNIST3D (28^3) file from the data root (VTLIB_DATA or data/)."""
    from vtlib.data import ensure_file

    return ensure_file("adrenal", 28, download=False)
