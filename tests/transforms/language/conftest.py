"""Every language test shares the langdetect profiles (see ``langdetect_profiles_once``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_langdetect_factory(langdetect_profiles_once):
    """Autouse, so a test that builds a detector (directly or in a pipeline) reuses the profiles."""
    return langdetect_profiles_once
