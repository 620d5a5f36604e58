from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path, monkeypatch):
    """The patient-pseudonym key, label places and embedding caches go to a temporary folder."""
    monkeypatch.setenv("MEDFLIP_DATA_DIR", str(tmp_path / "data"))
