"""Export acceptance on the whole HAR test set: TFLite (LiteRT, TFLite Micro, INT8/INT4) and crossbar mapping.

For each of the paper's four presets: train the HAR recipe architecture
(har_signed_cnn) for a few epochs, export the .tflite (INT8 container, and INT4
where the codes fit) and the crossbar mapping, then compare on all test windows:

* LiteRT (default resolver) vs the Keras NVM model's int8 outputs (must be 0 differences),
* TFLite Micro vs Keras (max LSB, fraction within 1 LSB, argmax agreement),
* INT4 container in LiteRT and TFLite Micro,
* the exact numpy mapping evaluator (tf_nvm.mapping.reference) vs Keras,
* model bytes, NVM weight bytes, TFLite Micro arena bytes, op list.

Run: python3 benchmarks/export_acceptance.py [--epochs 5] [--filters 64 64] [--out DIR]
or, on models trained by `tf-nvm train` (no training here):
     python3 benchmarks/export_acceptance.py --runs runs/har-2bit-unipolar ... [--out DIR]
Prints one block per model and writes DIR/acceptance.json.

--tflm-exact: also compares LiteRT's reference resolver, each of TFLite Micro and
the reference resolver against the Keras model in its emulation mode
(tf_nvm.core.modes.emulate_runtime: "tflm" / "litert-reference", the default of
tflite_export.compare) AND in the default mode (the 1-2 LSB gap the emulation
closes), and skips the INT4 container and the mapping.
"""

import argparse
import os
import time

import numpy as np

import tf_nvm  # first: legacy-Keras mode
import tflite_export
from tf_nvm.keras.backend import keras
from tf_nvm.core.atomic import write_json_atomic
from tf_nvm.mapping.reference import evaluate
from tf_nvm.core.preprocessing import Standardization
from tf_nvm.experiments.runs import read_run

PRESETS = ["paper-2bit-unipolar", "paper-2bit-bipolar", "paper-4bit-unipolar", "paper-4bit-bipolar"]


def _row(result):
    return {"differing": result.differing, "outputs": result.outputs, "max_abs_lsb": result.max_abs_lsb,
            "within_1_lsb": result.within_1_lsb, "argmax_agreement": result.argmax_agreement,
            "histogram": result.histogram}


def check_model(model, name, x_train, x_test, y_test, standardisation, out, start, tflm_exact=False):
    """Exports ``model`` (INT8, INT4 where codes fit, mapping) and compares every artefact on ``x_test``."""
    logits = model.predict(x_test, verbose=0, batch_size=512)
    keras_acc = float(np.mean(np.argmax(logits, axis=1) == y_test))
    row = {"keras_test_accuracy": keras_acc, "train_seconds": round(time.perf_counter() - start, 1)}
    path = os.path.join(out, f"{name}.tflite")
    summary = tflite_export.export_tflite(model, path, x_train[:256])
    row["int8"] = {"model_bytes": summary.model_bytes, "weight_bytes": summary.weight_bytes,
                   "arena_bytes": summary.arena_bytes, "ops": summary.op_counts}
    runtimes = ("litert", "litert-reference", "tflm") if tflm_exact else ("litert", "tflm")
    compare_start = time.perf_counter()
    results = tflite_export.compare(model, path, x_test, runtimes, summary.arena_bytes + 1024)
    for runtime, result in results.items():
        row["int8"][runtime] = _row(result)
    if tflm_exact:  # the same runtimes against the Keras model in the default (LiteRT) mode
        default_mode = tflite_export.compare(model, path, x_test, ("litert-reference", "tflm"),
                                             summary.arena_bytes + 1024, emulate="litert")
        for runtime, result in default_mode.items():
            row["int8"][f"{runtime} vs default-mode keras"] = _row(result)
        row["compare_seconds"] = round(time.perf_counter() - compare_start, 1)
    spec = tf_nvm.model_spec(model)
    if tflm_exact:
        row["int4"] = "skipped (--tflm-exact)"
    elif spec.code_min >= -7 and spec.code_max <= 7:
        path4 = os.path.join(out, f"{name}.int4.tflite")
        summary4 = tflite_export.export_tflite(model, path4, x_train[:256], container="int4")
        row["int4"] = {"model_bytes": summary4.model_bytes, "weight_bytes": summary4.weight_bytes,
                       "arena_bytes": summary4.arena_bytes}
        for runtime, result in tflite_export.compare(model, path4, x_test, ("litert", "tflm"),
                                                     summary4.arena_bytes + 1024).items():
            row["int4"][runtime] = {"differing": result.differing, "outputs": result.outputs,
                                 "max_abs_lsb": result.max_abs_lsb, "within_1_lsb": result.within_1_lsb,
                                 "argmax_agreement": result.argmax_agreement}
    else:
        row["int4"] = f"not available: codes {spec.code_min}..{spec.code_max} do not fit -7..7"
    if tflm_exact:
        row["mapping"] = "skipped (--tflm-exact)"
    else:
        mapping = tflite_export.export_crossbar(model, os.path.join(out, f"{name}.mapping"),
                                                preprocessing=standardisation)
        got = evaluate(os.path.join(out, f"{name}.mapping"), x_test)
        want = np.rint(model.predict(x_test, verbose=0, batch_size=512) / spec.activation_step)
        diff = got.codes[mapping.outputs[0]] - want
        row["mapping"] = {"differing": int(np.count_nonzero(diff)), "outputs": int(diff.size),
                          "max_abs_lsb": int(np.abs(diff).max()), **mapping.summary()}
    row["seconds"] = round(time.perf_counter() - start, 1)
    print(f"== {name}: Keras test accuracy {keras_acc:.4f} ({row['seconds']} s)")
    print(f"   int8: {summary.model_bytes} B model, {summary.weight_bytes} B NVM weights, arena "
          f"{summary.arena_bytes} B")
    for result in results.values():
        print(f"   {result}")
    if tflm_exact:
        for result in default_mode.values():
            print(f"   default-mode Keras vs {result}")
    if isinstance(row["int4"], dict):
        print(f"   int4: {row['int4']['model_bytes']} B model, arena {row['int4']['arena_bytes']} B; litert "
              f"{row['int4']['litert']['differing']}/{row['int4']['litert']['outputs']} differ (max "
              f"{row['int4']['litert']['max_abs_lsb']}), tflm {row['int4']['tflm']['differing']} differ (max "
              f"{row['int4']['tflm']['max_abs_lsb']}), argmax litert "
              f"{100 * row['int4']['litert']['argmax_agreement']:.2f} %")
    else:
        print(f"   int4: {row['int4']}")
    if isinstance(row["mapping"], dict):
        print(f"   mapping (numpy): {row['mapping']['differing']}/{row['mapping']['outputs']} differ; "
              f"{mapping.summary()}")
    else:
        print(f"   mapping: {row['mapping']}")
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--filters", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--kernel-sizes", type=int, nargs="+", default=[9, 5])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--out", default="runs/export_acceptance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", nargs="+", help="run folders of `tf-nvm train` to check instead of training")
    parser.add_argument("--tflm-exact", action="store_true",
                        help="compare TFLite Micro / the LiteRT reference resolver with the Keras model in "
                             "emulate_runtime mode and in the default mode; skip INT4 and the mapping")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    (raw_train, y_train), (raw_test, y_test) = tf_nvm.datasets.load_har(verbose=True)
    standardisation = Standardization.fit(raw_train)
    x_train, x_test = standardisation.apply(raw_train), standardisation.apply(raw_test)
    report = {}
    if args.runs:
        for run in args.runs:
            run_folder = read_run(run)
            model, prep = run_folder.model, run_folder.preprocessing
            xr_train, xr_test = prep.apply(raw_train), prep.apply(raw_test)
            name = os.path.basename(os.path.normpath(run))
            report[name] = check_model(model, name, xr_train, xr_test, y_test, prep, args.out,
                                       time.perf_counter(), args.tflm_exact)
    for preset in [] if args.runs else args.presets:
        start = time.perf_counter()
        keras.utils.set_random_seed(args.seed)
        float_model = tf_nvm.models.build("har_signed_cnn", filters=tuple(args.filters),
                                          kernel_sizes=tuple(args.kernel_sizes))
        model = tf_nvm.quantize_model(float_model, preset, init="device")
        model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
        report[preset] = check_model(model, preset, x_train, x_test, y_test, standardisation, args.out, start,
                                     args.tflm_exact)
    write_json_atomic(os.path.join(args.out, "acceptance.json"), report)
    print(f"written {os.path.join(args.out, 'acceptance.json')}")
    return report


if __name__ == "__main__":
    main()
