"""A small 4-bit bipolar CNN trained for one epoch on CIFAR-10 (full training set).

Run: python examples/cifar10_one_epoch.py
"""

import tf_nvm
from tf_nvm.recipes import Recipe
from tf_nvm.data import prepare_data
from tf_nvm.train import train_model

recipe = Recipe(name="cifar10-4bit-bipolar-1epoch", dataset="cifar10", architecture="cifar_cnn",
                spec="paper-4bit-bipolar", epochs=1, batch_size=128)
split = prepare_data(recipe)
model = tf_nvm.quantize_model(tf_nvm.models.build("cifar_cnn"), recipe.spec, init="device")
print(train_model(model, recipe, split, verbose=2))
