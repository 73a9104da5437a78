"""Shared fixtures. Importing tf_nvm first puts TensorFlow in legacy-Keras mode."""

import os

import numpy as np
import pytest

import tf_nvm  # noqa: F401  (before anything imports tensorflow)
from tf_nvm._keras import keras

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test writes caches under tmp_path, never the user's home."""
    monkeypatch.setenv("TF_NVM_CACHE_DIR", str(tmp_path / "cache"))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def seeded():
    keras.utils.set_random_seed(0)
    yield
