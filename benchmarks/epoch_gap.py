"""Benchmark: wall time a training spends between two Keras epochs, and where the main thread is then.

The full CIFAR-10 recipe's float models took 38.4 minutes for 30 epochs that sum to 31.2 (README,
"CIFAR-10, full mode"). This benchmark trains the recipe network (``cifar_vgg`` of the
``cifar10-2bit-bipolar`` recipe, float) with ``tf_nvm.experiments.train.train_model`` (its tf.data pipeline with
crops and flips and its per-epoch progress folder) on SYNTHETIC random images (45,000 training,
5,000 validation: a timing benchmark, the values do not matter), or on the real CIFAR-10 given
explicitly with ``--data`` (read by `tf_nvm.experiments.data.prepare_data`, split as the recipe says), and records, per epoch, the time
inside the epoch (``on_epoch_begin`` to ``on_epoch_end``, validation included) and the gap after it
(``on_epoch_end`` to the next ``on_epoch_begin``). While a gap lasts, a thread samples the main
thread's Python stack every 0.2 s; the most frequent innermost frames are printed.

Run::

    PYTHONPATH=. python3 benchmarks/epoch_gap.py             # 3 epochs: about 4 min on 2 cores
    PYTHONPATH=. python3 benchmarks/epoch_gap.py --data ../shared/data/cifar10   # the real images
"""

import argparse
import collections
import dataclasses
import sys
import tempfile
import threading
import time
import traceback
import types

import numpy as np

import tf_nvm  # noqa: F401  first: puts TensorFlow in legacy-Keras (tf_keras) mode
from tf_nvm.experiments import models, recipes
from tf_nvm.experiments.data import prepare_data
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.train import train_model


class GapTimer(keras.callbacks.Callback):
    """Epoch and between-epoch wall times (s), and the main thread's stacks sampled during the gaps."""

    def __init__(self, period=0.2, depth=4):
        super().__init__()
        self.period, self.depth = period, depth
        self.inside, self.gaps, self.stacks = [], [], collections.Counter()
        self._began = self._ended = None
        self._sampling = threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        now = time.perf_counter()
        self._sampling.clear()
        if self._ended is not None:
            self.gaps.append(now - self._ended)
        self._began = now

    def on_epoch_end(self, epoch, logs=None):
        self._ended = time.perf_counter()
        self.inside.append(self._ended - self._began)
        self._sampling.set()
        threading.Thread(target=self._sample, args=(threading.get_ident(),), daemon=True).start()

    def on_train_end(self, logs=None):
        self._sampling.clear()

    def _sample(self, main):
        while self._sampling.is_set():
            frame = sys._current_frames().get(main)
            if frame is not None:
                frames = traceback.extract_stack(frame)[-self.depth:]
                self.stacks[" <- ".join(f"{f.name} ({f.filename.rsplit('/', 1)[-1]}:{f.lineno})"
                                        for f in reversed(frames))] += 1
            time.sleep(self.period)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to train (>= 2; default 3)")
    parser.add_argument("--data", default=None,
                        help="CIFAR-10 source (folder or file) for tf_nvm.experiments.data.prepare_data; default: synthetic images")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error(f"--epochs must be at least 2 to see a gap between epochs, got {args.epochs}")
    recipe = dataclasses.replace(recipes.load("cifar10-2bit-bipolar"), epochs=args.epochs)
    if args.data:
        split = prepare_data(recipe, data_path=args.data, verbose=False)
    else:
        rng = np.random.default_rng(0)
        images = rng.normal(size=(50000, 32, 32, 3)).astype("float32")
        labels = rng.integers(0, 10, 50000).astype("int64")
        split = types.SimpleNamespace(x_train=images[:45000], y_train=labels[:45000], x_val=images[45000:],
                                      y_val=labels[45000:], x_test=images[45000:], y_test=labels[45000:])
    keras.utils.set_random_seed(0)
    model = models.build(recipe.architecture, **recipe.architecture_args)
    timer = GapTimer()
    with tempfile.TemporaryDirectory() as progress:
        train_model(model, recipe, split, verbose=0, callbacks=[timer],
                    progress=(progress, {"kind": "float", "seed": 0}))
    print("data:", args.data or "synthetic", f"({len(split.x_train)} training images)")
    print("epoch s (inside):", [round(t, 2) for t in timer.inside])
    print("gap s (after each epoch but the last):", [round(t, 2) for t in timer.gaps])
    print(f"median gap {np.median(timer.gaps):.2f} s, median epoch {np.median(timer.inside):.2f} s, "
          f"gap / epoch {np.median(timer.gaps) / np.median(timer.inside):.3f}")
    print("main thread during the gaps (samples every 0.2 s, innermost frame first):")
    for stack, count in timer.stacks.most_common(3):
        print(f"  {count:4d}  {stack}")


if __name__ == "__main__":
    main()
