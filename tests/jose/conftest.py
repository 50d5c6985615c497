"""Shared fixtures for the JOSE layer tests: one cast of keys per session (see ``jarmor.jose.testing``)."""

from __future__ import annotations

import pytest

from jarmor.jose.testing import KeyRing, keyring


@pytest.fixture(scope="session")
def ring() -> KeyRing:
    return keyring()
