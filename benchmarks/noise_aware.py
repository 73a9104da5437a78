"""Noise-aware training on HAR: plain vs noise-aware variants on a harsh device, over time (an ablation).

For each recipe, variant and training seed, the recipe's NVM model is trained (`tf_nvm.experiments.train.train_model`,
the recipe's own schedule) with the variant's ``noise_aware`` settings (`VARIANTS`; ``plain``: none), then
mapped (`tflite_export.build_mapping`) and simulated on the test split over ``--chips`` chips of the target
device (``--device``, a `tf_nvm.noise.PRESETS` name; the simulator's defaults: global drift compensation,
per-read noise) at each of ``--times``. Every finished (recipe, variant, seed) cell is kept in ``OUT/cells/`` and
reused by a later invocation, so the table can be built in pieces (one training at a time on a shared
machine).

The table (``OUT/noise_aware.{csv,md}``, stamped with the tf_nvm commit and the date) has, per recipe and
variant: the seeds, the ideal-chip test accuracy (mean and spread over seeds), the mean over seeds of each
time's chip mean, the spread over seeds of those means, the mean spread over chips, the loss at
1 day (ideal minus 1 day, of the same models) and, against the plain rows of the same recipe, the
*recovery* ``(variant 1 day - plain 1 day) / (plain ideal - plain 1 day)`` and the *ideal cost*
``plain ideal - variant ideal`` (acceptance: recovery >= 0.5 and cost <= 0.003), both of the means over seeds;
and, paired by seed (each seed's model against the plain model of the same seed), the recovery per seed with
its mean and spread, and the ideal cost per seed in points.

Run (one cell at a time; ``nice``)::

    nice -n 5 python benchmarks/noise_aware.py --data /work/shared/data/har/har_uci_style.npz \\
        --recipes har-2bit-unipolar har-4bit-bipolar --variants plain aware-1x --seeds 0 1 2 \\
        --device pcm-prog-x12 --chips 25 --out docs/results/noise-aware
"""

import argparse
import datetime
import json
import os
import statistics

import tf_nvm  # first: legacy-Keras mode
from tf_nvm.experiments import recipes
from tf_nvm.keras.backend import keras
from tf_nvm.core.atomic import write_bytes_atomic, write_json_atomic
from tf_nvm.experiments.data import prepare_data
from tf_nvm.core.provenance import git_commit
from tf_nvm.simulator import DeviceConfig, SimulationConfig, monte_carlo
from tf_nvm.core.tables import write_table
from tf_nvm.experiments.train import noise_aware_callbacks, train_model
from tflite_export import build_mapping

TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0, "1 month": 30 * 86400.0}

VARIANTS = {
    "plain": None,
    # tf_nvm <= 0.x's noise-aware training: the device's noise from the first step, noise-free validation selects
    "device": {"kind": "device", "scale": 1.0},
    # only the selection: plain training (scale 0: no noise), the epoch chosen on 5 simulated validation chips
    "select": {"kind": "device", "scale": 0.0, "select_chips": 5},
    # device noise x1.5, clean warm-up of a third of the epochs, noise-free selection
    "device-warmup": {"kind": "device", "scale": 1.5, "warmup_epochs": 10},
    # the full recipe: device noise x1.5, warm-up, selection on 5 simulated validation chips
    "aware": {"kind": "device", "scale": 1.5, "warmup_epochs": 10, "select_chips": 5},
    # the full recipe at the device's own noise (x12 programming noise is already about 1.5 levels of a 2-bit device)
    "aware-1x": {"kind": "device", "scale": 1.0, "warmup_epochs": 10, "select_chips": 5},
    # aihwkit's generic recipe: Gaussian noise 5 % of each kernel's largest code, warm-up, chip selection
    "relative": {"kind": "relative", "relative_std": 0.05, "warmup_epochs": 10, "select_chips": 5},
}
"""Variant name -> a recipe's ``noise_aware`` settings without the device (``--device``, ``--t-train``)."""


def _cell(recipe, variant, seed, split, args, cell):
    """Trains (or reloads from ``--models``) one model and simulates it at every time ``cell`` lacks."""
    settings = VARIANTS[variant]
    if settings is not None:
        settings = {**settings, "noise": args.device, "t_inference": args.t_train}
    recipe = recipe.replace(noise_aware=settings)
    keras.utils.set_random_seed(seed)
    model = tf_nvm.quantize_model(tf_nvm.models.build(recipe.architecture, **recipe.architecture_args),
                                  recipe.spec, init=recipe.init, sign_split=recipe.sign_split)
    weights = os.path.join(args.models, f"{recipe.name}--{variant}--{args.device}--seed{seed}.weights.h5")
    if cell is None:
        history = []
        record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: history.append(
            {key: round(float(value), 4) for key, value in logs.items() if key.startswith("val_")}))
        trained = train_model(model, recipe, split, verbose=0,
                              callbacks=[*noise_aware_callbacks(recipe, split, seed), record])
        os.makedirs(args.models, exist_ok=True)
        model.save_weights(weights)
        cell = {"recipe": recipe.name, "variant": variant, "seed": seed, "device": args.device, "chips": args.chips,
                "noise_aware": settings, "training": trained, "history": history, "times": {}}
        print(f"  {recipe.name} {variant} seed {seed}: trained in {trained['seconds']:.0f} s, best epoch "
              f"{trained['best_epoch']}, ideal test accuracy {100 * trained['test_accuracy']:.2f} %", flush=True)
    else:
        model.load_weights(weights)
    mapping = build_mapping(model, preprocessing=split.standardisation)
    for label in args.times:
        if label in cell["times"]:
            continue
        config = SimulationConfig(device=DeviceConfig(noise=args.device, t_inference=TIMES[label]),
                                  batch_size=512, seed=1000 + seed)
        result = monte_carlo(mapping, split.x_test, split.y_test, config, chips=args.chips)
        cell["ideal"] = result.ideal_accuracy
        cell["times"][label] = {"mean": result.mean, "std": result.std, "chips": [float(a) for a in result.scores]}
        print(f"  {recipe.name} {variant} seed {seed}: {args.device} at {label}: {100 * result.mean:.2f} % "
              f"± {100 * result.std:.2f} (ideal {100 * result.ideal_accuracy:.2f} %; {result.seconds:.0f} s)",
              flush=True)
        yield cell


def _table(cells, times):
    rows = []
    plain = {}
    plain_cells = {}
    for (name, variant) in sorted({(c["recipe"], c["variant"]) for c in cells},
                                  key=lambda k: (k[0], list(VARIANTS).index(k[1]))):
        group = sorted((c for c in cells if (c["recipe"], c["variant"]) == (name, variant)), key=lambda c: c["seed"])
        ideal = [c["ideal"] for c in group]
        row = {"recipe": name, "variant": variant, "seeds": len(group),
               "best epoch": " ".join(str(c["training"]["best_epoch"]) for c in group),
               "ideal": statistics.fmean(ideal), "ideal spread": statistics.pstdev(ideal)}
        for label in times:
            means = [c["times"][label]["mean"] for c in group if label in c["times"]]
            if len(means) != len(group):
                continue
            row[f"{label}"] = statistics.fmean(means)
            row[f"{label} seed spread"] = statistics.pstdev(means)
            row[f"{label} chip spread"] = statistics.fmean(c["times"][label]["std"] for c in group)
        if "1 day" in row:
            row["1 day loss"] = row["ideal"] - row["1 day"]
        if variant == "plain":
            plain[name] = row
            plain_cells[name] = {c["seed"]: c for c in group}
        base = plain.get(name)
        if base is not None and "1 day" in row and "1 day" in base and variant != "plain":
            lost = base["ideal"] - base["1 day"]
            row["recovery at 1 day"] = (row["1 day"] - base["1 day"]) / lost if lost > 0 else float("nan")
            row["ideal cost"] = base["ideal"] - row["ideal"]
            # paired by seed: each seed's model against the plain model of the same seed
            paired = [(c, plain_cells[name][c["seed"]]) for c in group
                      if c["seed"] in plain_cells[name] and "1 day" in c["times"]
                      and "1 day" in plain_cells[name][c["seed"]]["times"]]
            recoveries = [(c["times"]["1 day"]["mean"] - p["times"]["1 day"]["mean"])
                          / (p["ideal"] - p["times"]["1 day"]["mean"]) for c, p in paired]
            costs = [p["ideal"] - c["ideal"] for c, p in paired]
            row["recovery per seed"] = " ".join(f"{r:.2f}" for r in recoveries)
            row["recovery per-seed mean"] = statistics.fmean(recoveries) if recoveries else float("nan")
            row["recovery per-seed spread"] = statistics.pstdev(recoveries) if recoveries else float("nan")
            row["ideal cost per seed"] = " ".join(f"{100 * cost:.2f}" for cost in costs)
        rows.append(row)
    return rows


def main(argv=None):
    import pandas as pd  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["har-2bit-unipolar", "har-4bit-bipolar"])
    parser.add_argument("--variants", nargs="+", default=["plain", "aware-1x"], choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="pcm-prog-x12", help="a tf_nvm.noise.PRESETS name (the target chips)")
    parser.add_argument("--t-train", type=float, default=86400.0, help="t_inference of the training noise, s")
    parser.add_argument("--times", nargs="+", default=["1 s", "1 h", "1 day", "1 month"], choices=list(TIMES))
    parser.add_argument("--chips", type=int, default=25)
    parser.add_argument("--data", default=None, help="explicit data source (e.g. /work/shared/data/har/...)")
    parser.add_argument("--out", default="docs/results/noise-aware")
    parser.add_argument("--models", default="runs/noise-aware-models", help="where the trained weights are kept")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the table from OUT/cells")
    args = parser.parse_args(argv)
    cells_dir = os.path.join(args.out, "cells")
    os.makedirs(cells_dir, exist_ok=True)
    if not args.table_only:
        for name in args.recipes:
            recipe = recipes.load(name)
            split = prepare_data(recipe, args.data, verbose=False)
            for variant in args.variants:
                for seed in args.seeds:
                    path = os.path.join(cells_dir, f"{name}--{variant}--{args.device}--seed{seed}.json")
                    cell = None
                    if os.path.exists(path):
                        with open(path, encoding="utf-8") as handle:
                            cell = json.load(handle)
                        if all(label in cell["times"] for label in args.times):
                            continue
                    for cell in _cell(recipe, variant, seed, split, args, cell):
                        write_json_atomic(path, cell)  # after every time: an interrupted run keeps what it has
    cells = []
    for file in sorted(os.listdir(cells_dir)):
        with open(os.path.join(cells_dir, file), encoding="utf-8") as handle:
            cell = json.load(handle)
        if cell["device"] == args.device:
            cells.append(cell)
    rows = _table(cells, args.times)
    commit, dirty = git_commit()
    stamp = (f"tf_nvm {tf_nvm.__version__}, commit {commit or 'unknown'}{' (uncommitted changes)' if dirty else ''}, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; device {args.device}, "
             f"{args.chips} chips per model, training noise at t = {args.t_train:g} s")
    prefix = os.path.join(args.out, "noise_aware")
    write_table(pd.DataFrame(rows), prefix)
    with open(prefix + ".md", encoding="utf-8") as handle:
        table = handle.read()
    write_bytes_atomic(prefix + ".md", f"{stamp}\n\n{table}".encode("utf-8"))
    write_json_atomic(prefix + ".json", {"stamp": stamp, "variants": VARIANTS, "rows": rows})
    print(f"written {prefix}.{{csv,md,json}}")


if __name__ == "__main__":
    main()
