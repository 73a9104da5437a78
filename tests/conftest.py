"""Shared fixtures. Importing tf_nvm first puts TensorFlow in legacy-Keras mode."""

import os

import numpy as np
import pytest

import tf_nvm  # noqa: F401  (before anything imports tensorflow)
from tf_nvm._keras import keras
from tf_nvm.preprocessing import Standardisation

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


PAPER_PRESETS = [name for name in tf_nvm.presets.names() if name.startswith("paper-")]


@pytest.fixture(params=PAPER_PRESETS)
def paper_preset(request):
    """Each of the paper's presets (name), one test per preset."""
    return request.param


@pytest.fixture(scope="session")
def har_standardised():
    """Real HAR windows standardised with the training part's statistics (loaded once per session).

    Returns:
        (x_train, y_train, x_test, y_test, Standardisation); x float32, y int labels.
    """
    (x_train, y_train), (x_test, y_test) = tf_nvm.datasets.load_har(verbose=False)
    standardisation = Standardisation.fit(x_train)
    return (standardisation.apply(x_train), y_train, standardisation.apply(x_test), y_test, standardisation)
