"""Shared fixtures. Importing tf_nvm first puts TensorFlow in legacy-Keras mode."""

import os

import numpy as np
import pytest

import tf_nvm  # noqa: F401  (before anything imports tensorflow)
from tf_nvm.keras.backend import keras
from tf_nvm.core.preprocessing import Standardization

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


PAPER_PRESETS = [name for name in tf_nvm.core.presets.names() if name.startswith("paper-")]


@pytest.fixture(params=PAPER_PRESETS)
def paper_preset(request):
    """Each of the paper's presets (name), one test per preset."""
    return request.param


@pytest.fixture(scope="session")
def har_standardised():
    """Real HAR windows standardised with the training part's statistics (loaded once per session).

    Returns:
        (x_train, y_train, x_test, y_test, Standardization); x float32, y int labels.
    """
    (x_train, y_train), (x_test, y_test) = tf_nvm.datasets.load_har(verbose=False)
    standardisation = Standardization.fit(x_train)
    return (standardisation.apply(x_train), y_train, standardisation.apply(x_test), y_test, standardisation)


def synthetic_cifar_folder(root, per_class=200, test_per_class=40):
    """A learnable stand-in for CIFAR-10 in its folder layout: one colour and stripe pattern per class, noise."""
    from tf_nvm.keras.backend import tf  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label, name in enumerate(tf_nvm.datasets.CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            base = np.zeros((32, 32, 3), np.float32)
            base[..., label % 3] = 60 + 18 * label
            base[:, (label * 3) % 32::8, (label + 1) % 3] = 200
            for i in range(count):
                image = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
                (folder / f"{i:04d}.jpg").write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())
    return root
