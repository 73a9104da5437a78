"""A small 4-bit bipolar CNN trained for one epoch on CIFAR-10 (full training set).

Needs the CIFAR-10 images: a folder ``$TF_NVM_DATA_DIR/cifar10/{train,test}/<class>/*.jpg`` (e.g.
``TF_NVM_DATA_DIR=../shared/data`` for a development copy), or internet access for
``keras.datasets.cifar10`` (downloaded once, about 170 MB).

Run: python examples/cifar10_one_epoch.py
"""

import sys

import tf_nvm
from tf_nvm.experiments.recipes import Recipe
from tf_nvm.experiments.data import prepare_data
from tf_nvm.experiments.train import train_model

recipe = Recipe(name="cifar10-4bit-bipolar-1epoch", dataset="cifar10", architecture="cifar_cnn",
                spec="paper-4bit-bipolar", epochs=1, batch_size=128)
try:
    split = prepare_data(recipe)
except tf_nvm.DatasetNotFoundError as err:
    sys.exit(f"examples/cifar10_one_epoch.py needs the CIFAR-10 images (see the docstring):\n{err}")
model = tf_nvm.quantize_model(tf_nvm.models.build("cifar_cnn"), recipe.spec, init="device")
print(train_model(model, recipe, split, verbose=2))
