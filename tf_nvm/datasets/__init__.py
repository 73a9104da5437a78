"""Data-set loaders of tf_nvm: UCI HAR windows and CIFAR-10.

Both loaders look for local copies first (an explicit ``path``, then
``$TF_NVM_DATA_DIR``; nothing else: a development copy such as
``../shared/data`` is read only through one of these two settings), then for
a cache (``$TF_NVM_CACHE_DIR`` or ``~/.cache/tf_nvm``), and only then for
package or network sources. Each load prints one line naming the source used (pass
``verbose=False`` to silence it). When nothing can be found they raise
:class:`tf_nvm.core.errors.DatasetNotFoundError`, whose message lists every source
tried and how to fix it; a source whose contents are wrong raises
:class:`tf_nvm.core.errors.CorruptDatasetError` naming the file and what was
expected. Importing this module does not import TensorFlow.

`DATASETS` names the loaders a recipe's ``dataset`` field may name.
"""

from tf_nvm.datasets.cifar10 import CIFAR10_CLASSES, CIFAR10_SOURCES, load_cifar10
from tf_nvm.datasets.har import (HAR_ACTIVITIES, HAR_CHANNELS, HAR_SOURCES, HAR_TEST_SUBJECTS, HARData, load_har,
                                 load_har_dataset)
from tf_nvm.datasets.user import load_npz_dataset
from tf_nvm.core.registry import Registry

__all__ = [
    "DATASETS",
    "load_har",
    "load_har_dataset",
    "HARData",
    "HAR_ACTIVITIES",
    "HAR_CHANNELS",
    "HAR_TEST_SUBJECTS",
    "HAR_SOURCES",
    "load_cifar10",
    "CIFAR10_CLASSES",
    "CIFAR10_SOURCES",
    "load_npz_dataset",
]

DATASETS = Registry("data set", fix="use a registered data set, or register a loader with "
                                    "tf_nvm.datasets.DATASETS.register(name, loader)")
"""Data-set name -> loader (keyword arguments ``path`` and ``verbose``)."""
DATASETS.register("har", load_har_dataset,
                  description="UCI HAR windows (N, 128, 9), 6 activities, with the volunteer of each training window")
DATASETS.register("cifar10", load_cifar10, description="CIFAR-10 images (N, 32, 32, 3) uint8, 10 classes")
DATASETS.register("npz", load_npz_dataset, description="a user's .npz (path required): x_train, y_train, x_test, "
                                                       "y_test (tf_nvm.datasets.user)")
