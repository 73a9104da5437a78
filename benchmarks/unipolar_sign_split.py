"""Benchmark: ResNet-8 2-bit unipolar with ``quantize_model(sign_split="auto")`` vs its hand-written [x, -x] form.

Checks, then measures:

1. The same network: ``quantize_model(resnet8(), sign_split="auto")`` and
   ``quantize_model(resnet8(sign_split=True))`` have the same layers (name, class, weight shapes); with the
   hand model's spec (its shared weight scale) and weights copied into the auto model (by layer name), both
   give identical outputs.
2. Training (real CIFAR-10, ``--train`` images from the training set, 1,000 further ones for validation,
   the 10,000 test images): ``--epochs`` epochs of `tf_nvm.experiments.train.train_model` (Adam, cosine schedule,
   batch 128, learning rate 0.002, init="device", seed 0) for each of: ``auto`` (sign_split="auto"),
   ``hand`` (resnet8(sign_split=True)) and ``none`` (the plain ResNet-8 under the unipolar spec, the
   network the warning is about). Prints validation and test accuracy per variant.

Run (reads the development copy of CIFAR-10 through an explicit path)::

    PYTHONPATH=. python3 benchmarks/unipolar_sign_split.py --data /work/shared/data/cifar10 --train 10000 --epochs 1

Measured (Dec 2026, 2 shared cores, seed 0, one run each): same layers (49, 155,642 parameters) and identical
outputs with copied weights. Test accuracy after 1 epoch: auto 23.4 %, hand 21.5 %, none 10.4 %; after 5
epochs: auto 43.8 %, hand 40.8 %, none 12.9 % (auto and hand differ only in their random start).
"""

import argparse
import json
import re
import time
import warnings

import numpy as np

import tf_nvm  # first: legacy-Keras mode
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.data import Split
from tf_nvm.datasets.cifar10 import load_cifar10
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.experiments.recipes import Recipe
from tf_nvm.experiments.train import train_model

PRESET = "paper-2bit-unipolar"


def _quantize(model, spec=PRESET, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
        return tf_nvm.quantize_model(model, spec, init="device", **kwargs)


def build(variant, seed=0, spec=PRESET):
    """The NVM ResNet-8 of ``variant`` (its shared scale calibrated on its own float start unless ``spec`` fixes it)."""
    keras.utils.set_random_seed(seed)
    if variant == "auto":
        return _quantize(tf_nvm.models.build("resnet8"), spec, sign_split="auto")
    if variant == "hand":
        return _quantize(tf_nvm.models.build("resnet8", sign_split=True), spec)
    return _quantize(tf_nvm.models.build("resnet8"), spec)


def _name(layer):
    """The layer name, without the model-wide counter Keras appends to the input quantizer's name."""
    return re.sub(r"^quantize_layer(_\d+)?$", "quantize_layer", layer.name)


def same_network(x):
    hand = build("hand")
    auto = build("auto", spec=tf_nvm.model_spec(hand))  # one shared weight scale for both (copied weights)
    signature = lambda m: sorted((_name(l), type(l).__name__, tuple(tuple(w.shape) for w in l.weights))  # noqa: E731
                                 for l in m.layers)
    same_layers = signature(auto) == signature(hand)
    by_name = {_name(layer): layer for layer in auto.layers}
    for layer in hand.layers:
        by_name[_name(layer)].set_weights(layer.get_weights())
    identical = bool(np.array_equal(auto.predict(x, verbose=0), hand.predict(x, verbose=0)))
    return {"layers": len(auto.layers), "parameters": auto.count_params(), "same_layers": same_layers,
            "identical_outputs_with_copied_weights": identical}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 folder (<path>/{train,test}/<class>/*.jpg)")
    parser.add_argument("--train", type=int, default=10000, help="training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--variants", default="auto,hand,none")
    args = parser.parse_args()
    (x_tr, y_tr), (x_te, y_te) = load_cifar10(path=args.data)
    x_tr, x_val = x_tr[:args.train].astype(np.float32), x_tr[args.train:args.train + 1000].astype(np.float32)
    y_tr, y_val = y_tr[:args.train], y_tr[args.train:args.train + 1000]
    std = Standardization.fit(x_tr)
    split = Split(std.apply(x_tr), y_tr, std.apply(x_val), y_val, std.apply(x_te.astype(np.float32)), y_te, std,
                  args.data)
    print(json.dumps({"same_network": same_network(split.x_test[:100])}), flush=True)
    recipe = Recipe(name="resnet8-unipolar", dataset="cifar10", architecture="resnet8", spec=PRESET,
                    epochs=args.epochs, batch_size=128, learning_rate=0.002, init="device")
    for variant in args.variants.split(","):
        model = build(variant)
        start = time.perf_counter()
        result = train_model(model, recipe, split, verbose=2)
        print(json.dumps({"variant": variant, "train_images": args.train, "epochs": args.epochs,
                          "val_accuracy": round(result["val_accuracy"], 4),
                          "test_accuracy": round(result["test_accuracy"], 4),
                          "seconds": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
