"""CIFAR-10 through ``tf-nvm simulate`` and through Python: the same mapping, the same test images, one number.

Trains a small 4-bit bipolar `cifar_cnn` (16/32/64 filters) for one epoch on the first ``--train`` training
images (standardised by `tf_nvm.experiments.data.prepare_data`, in stored pixel units), exports its crossbar mapping with
that standardisation, then scores the ideal chip on the first ``--examples`` test images:

* Python: `tf_nvm.simulator.monte_carlo` on the split's standardised test images;
* the CLI: ``tf-nvm simulate MAPPING --dataset cifar10 --examples N --chips 1`` (this checkout);
* with ``--old-checkout DIR``: the same command of another checkout (``--data cifar10``, the old spelling),
  to show what it printed before.

Needs the CIFAR-10 data (``$TF_NVM_DATA_DIR`` / internet).

Run: ``PYTHONPATH=. python3 benchmarks/cli_vs_python_cifar10.py --out /tmp/cifar_cli [--old-checkout ../main]``
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import warnings

import tf_nvm  # first: legacy-Keras mode
from tf_nvm.experiments import recipes
from tf_nvm.keras.backend import keras
from tf_nvm.experiments.data import prepare_data
from tf_nvm.simulator import monte_carlo
from tf_nvm.experiments.train import train_model
from tflite_export import export_crossbar


def _cli(checkout, argv):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
    done = subprocess.run([sys.executable, "-m", "tf_nvm.cli", *argv], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: tf-nvm {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--train", type=int, default=10000, help="training images used (default 10000)")
    parser.add_argument("--examples", type=int, default=1000, help="test images scored (default 1000)")
    parser.add_argument("--old-checkout", help="another checkout whose CLI is run too (old spelling --data cifar10)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    recipe = dataclasses.replace(recipes.load("cifar10-4bit-bipolar"), epochs=1, batch_size=128)
    split = prepare_data(recipe, verbose=True)
    split = dataclasses.replace(split, x_train=split.x_train[:args.train], y_train=split.y_train[:args.train])
    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(tf_nvm.models.build("cifar_cnn", filters=(16, 32, 64)), recipe.spec,
                                      init="device")
    keras_accuracy = train_model(model, recipe, split, verbose=2)["test_accuracy"]
    prefix = os.path.join(os.path.abspath(args.out), "mapping")
    mapping = export_crossbar(model, prefix, preprocessing=split.standardisation)
    n = args.examples
    python = monte_carlo(mapping, split.x_test[:n], split.y_test[:n], chips=1)
    rows = {"keras_test_accuracy_all": keras_accuracy, "python_ideal_accuracy": python.ideal_accuracy,
            "examples": n, "train_images": args.train}
    argv = ["simulate", prefix, "--examples", str(n), "--chips", "1"]
    _cli(".", argv + ["--dataset", "cifar10", "--out", os.path.join(args.out, "cli")])
    cli = json.load(open(os.path.join(args.out, "cli", "results.json"), encoding="utf-8"))
    rows["cli_ideal_accuracy"] = cli["summary"]["ideal_accuracy"]
    if args.old_checkout:
        _cli(args.old_checkout, argv + ["--data", "cifar10", "--out", os.path.join(args.out, "old_cli")])
        old = json.load(open(os.path.join(args.out, "old_cli", "results.json"), encoding="utf-8"))
        rows["old_cli_ideal_accuracy"] = old["summary"]["ideal_accuracy"]
    print(json.dumps(rows, indent=2))
    with open(os.path.join(args.out, "numbers.json"), "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
