"""Benchmark: time per training step of the NVM model vs the same float model on HAR.

Both models are the `har_signed_cnn` architecture of the HAR recipes, trained
with the same optimizer and batch size on real HAR windows. Each repeat times
``STEPS`` optimizer steps (after warm-up/tracing) for float and NVM alternately,
so machine drift hits both; the ratio uses the medians over repeats.

Run: ``python benchmarks/train_step.py [--preset paper-2bit-unipolar] [--repeats 7]``
Target: NVM/float <= 1.5.
"""

import argparse
import statistics
import time

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tensorflow as tf
import tf_keras as keras
from tf_nvm.data import prepare_data
from tf_nvm.recipes import load as load_recipe


def _time_steps(model, dataset, steps):
    iterator = iter(dataset)
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(iterator)
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="har-2bit-unipolar")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()

    recipe = load_recipe(args.recipe)
    split = prepare_data(recipe, verbose=True)
    dataset = tf.data.Dataset.from_tensor_slices((split.x_train, split.y_train)).shuffle(
        len(split.x_train), seed=0).repeat().batch(recipe.batch_size, drop_remainder=True).prefetch(2)
    keras.utils.set_random_seed(0)
    models = {
        "float": tf_nvm.models.build(recipe.architecture, **recipe.architecture_args),
        "nvm": tf_nvm.quantize_model(tf_nvm.models.build(recipe.architecture, **recipe.architecture_args),
                                     recipe.spec, init=recipe.init),
    }
    for model in models.values():
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        _time_steps(model, dataset, 10)  # trace and warm up
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            times[name].append(_time_steps(model, dataset, args.steps))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"recipe {recipe.name} ({recipe.architecture}, batch {recipe.batch_size}, spec {recipe.spec_name})")
    for name in models:
        spread = ", ".join(f"{t * 1e3:.2f}" for t in times[name])
        print(f"{name:5s} median {medians[name] * 1e3:.2f} ms/step over {args.repeats} repeats x {args.steps} "
              f"steps  [{spread}]")
    ratio = medians["nvm"] / medians["float"]
    print(f"ratio NVM/float time per training step: {ratio:.3f} (target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})")
    return 0 if np.isfinite(ratio) else 1


if __name__ == "__main__":
    raise SystemExit(main())
