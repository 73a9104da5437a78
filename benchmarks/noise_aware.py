"""Noise-aware training on HAR: PCM-like chips at 1 hour and 1 day, plain vs noise-aware models.

For each run folder (``tf-nvm train``; its recipe, its selected plain NVM model),
the same recipe is trained once more (seed 0) with
`tf_nvm.noise.training.NoiseAwareTraining` (PCM-like devices, t_inference
1 hour), then both models are mapped and simulated on the HAR test set over
``--chips`` PCM-like chips at 1 hour and 1 day (global drift compensation).

``--prog-noise-scale K`` multiplies the PCM programming noise by K, in training and
in simulation alike (a harsher device than aihwkit's published one, where the
published constants cost these models too little to show an effect).

Run: ``python benchmarks/noise_aware.py runs/har-2bit-unipolar runs/har-4bit-bipolar [--chips 25]
[--prog-noise-scale 1] [--out DIR]``
"""

import argparse
import os

import tf_nvm  # first: legacy-Keras mode
from tf_nvm import noise, recipes
from tf_nvm._keras import keras
from tf_nvm.atomic import write_json_atomic
from tf_nvm.data import prepare_data
from tf_nvm.noise.training import NoiseAwareTraining
from tf_nvm.runs import read_run
from tf_nvm.simulator import DeviceConfig, SimulationConfig, monte_carlo
from tf_nvm.tables import write_table
from tf_nvm.train import train_model
from tflite_export import build_mapping

TIMES = {"1 h": 3600.0, "1 day": 86400.0}


def main(argv=None):
    import pandas as pd  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--chips", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prog-noise-scale", type=float, default=1.0,
                        help="multiplies aihwkit's PCM programming noise (training and simulation)")
    parser.add_argument("--out", default="runs/noise_aware")
    args = parser.parse_args(argv)
    device = noise.PCMLikeNoise(prog_noise_scale=args.prog_noise_scale)
    rows = []
    for run in args.runs:
        folder = read_run(run)
        recipe = recipes.from_dict(folder.recipe)
        split = prepare_data(recipe, verbose=False)
        keras.utils.set_random_seed(args.seed)
        aware = tf_nvm.quantize_model(tf_nvm.models.build(recipe.architecture, **recipe.architecture_args),
                                      recipe.spec, init=recipe.init)
        trained = train_model(aware, recipe, split, verbose=0, callbacks=[NoiseAwareTraining(device, 3600.0)])
        print(f"{recipe.name}: noise-aware model trained, ideal test accuracy {trained['test_accuracy']:.4f}",
              flush=True)
        for label, model in (("plain", folder.model), ("noise-aware", aware)):
            mapping = build_mapping(model, preprocessing=split.standardisation)
            row = {"recipe": recipe.name, "prog_noise_scale": args.prog_noise_scale, "training": label}
            for time_label, seconds in TIMES.items():
                config = SimulationConfig(device=DeviceConfig(noise=device, t_inference=seconds), batch_size=512)
                result = monte_carlo(mapping, split.x_test, split.y_test, config, chips=args.chips)
                row["ideal"] = result.ideal_accuracy
                row[f"{time_label} mean"], row[f"{time_label} std"] = result.mean, result.std
                row[f"{time_label} loss"] = result.ideal_accuracy - result.mean
                print(f"  {label}: PCM-like at {time_label}: {100 * result.mean:.2f} % ± {100 * result.std:.2f} "
                      f"(ideal {100 * result.ideal_accuracy:.2f} %)", flush=True)
            rows.append(row)
    os.makedirs(args.out, exist_ok=True)
    write_table(pd.DataFrame(rows), os.path.join(args.out, "noise_aware"))
    write_json_atomic(os.path.join(args.out, "noise_aware.json"), rows)
    print(f"written {args.out}/noise_aware.{{csv,md,json}}")


if __name__ == "__main__":
    main()
