"""TFLite export of trained HAR NVM models in the paper's four presets.

Acceptance (issue 3): the flatbuffer stores only allowed codes, one shared
scale and zero point 0 for every NVM weight tensor; LiteRT reproduces the Keras
NVM model's int8 outputs exactly on the whole HAR test set; TFLite Micro within
1 LSB with arg-max agreement >= 99.5 %; INT4 differences, arena and model bytes
reported. The full-size numbers (the recipe architecture) come from
benchmarks/export_acceptance.py.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import ExportError, NotAnNVMModelError
from tf_nvm.keras.backend import keras
from tflite_export import check_nvm_weights, compare, export_tflite, measure_arena, read_tflite

PAPER = ["paper-2bit-unipolar", "paper-2bit-bipolar", "paper-4bit-unipolar", "paper-4bit-bipolar"]
FILTERS = (24, 24)
EPOCHS = 2


@pytest.fixture(scope="module")
def har(har_standardised):
    """(x_train, y_train, x_test, y_test): real HAR windows standardised with the training statistics."""
    return har_standardised[:4]


def _train(preset, har, seed=0):
    x_train, y_train, _, _ = har
    keras.utils.set_random_seed(seed)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=FILTERS, kernel_sizes=(9, 5)),
                                  preset, init="device")
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=EPOCHS, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(har, tmp_path_factory):
    """{preset: (model, .tflite path, TFLiteExport, {runtime: RuntimeComparison})} on all 2996 test windows."""
    folder = tmp_path_factory.mktemp("tflite")
    out = {}
    for preset in PAPER:
        model = _train(preset, har)
        path = folder / f"{preset}.tflite"
        summary = export_tflite(model, path, har[0][:128])
        results = compare(model, path, har[2], runtimes=("litert", "tflm"), arena_size=summary.arena_bytes + 1024)
        out[preset] = (model, path, summary, results)
        print(f"\n{preset}: {summary}")
        for result in results.values():
            print(f"  {result}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
def test_flatbuffer_weights_are_device_codes_on_one_shared_scale(exported, preset):
    model, path, summary, _ = exported[preset]
    spec = tf_nvm.model_spec(model)
    graph = read_tflite(path)
    codes = tf_nvm.weight_codes(model)
    scales = set()
    for name in codes:
        (op, tensor), = graph.layer_weights(name)
        assert tensor.dtype == "INT8" and tensor.zero_points == (0,) and len(tensor.scales) == 1
        scales.add(tensor.scales[0])
        values = np.unique(tensor.values)
        assert values.min() >= spec.code_min and values.max() <= spec.code_max, (name, values)
        assert len(values) > 1
    assert len(scales) == 1  # identical across layers
    assert scales.pop() == pytest.approx(spec.weight_scale, rel=1e-7)  # the shared scale (float32)
    checks = check_nvm_weights(model, path)
    assert [c.layer for c in checks] == list(codes) and all(c.matches_keras and c.allowed for c in checks)
    assert summary.nvm_weight_tensors == 3 and summary.input_scale == spec.activation_step


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
def test_litert_is_bit_exact_on_the_whole_har_test_set(exported, preset):
    litert = exported[preset][3]["litert"]
    assert litert.examples == 2996
    assert litert.differing == 0, str(litert)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
def test_tflite_micro_argmax_agreement(exported, preset):
    tflm = exported[preset][3]["tflm"]
    assert tflm.examples == 2996 and tflm.argmax_agreement >= 0.995, str(tflm)
    assert tflm.within_1_lsb >= 0.95, str(tflm)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PAPER)
def test_tflite_micro_end_to_end_exact_against_tflm_emulation(exported, preset):
    """TFLite Micro vs the Keras model in ``emulate_runtime("tflm")`` (compare's default for "tflm").

    TFLite Micro's reference kernels requantize with two roundings; the emulation mode computes the
    same integers, so every output agrees (against the default LiteRT mode: 2-3 LSB at the logits,
    see tests/test_tflm_emulation.py).
    """
    tflm = exported[preset][3]["tflm"]
    assert tflm.differing == 0 and tflm.argmax_agreement == 1.0, str(tflm)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["conv", "dense", "batch_norm"])
def test_tflite_micro_each_op_exact(layer, tmp_path, rng):
    """One NVM op alone: LiteRT equals Keras (default mode), TFLite Micro equals Keras in tflm emulation."""
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar")
    L = keras.layers
    shape = (8,) if layer == "batch_norm" else (32, 8)
    inputs = keras.Input(shape)
    if layer == "conv":
        x = L.Conv1D(16, 5, padding="same")(inputs)
    elif layer == "dense":
        x = L.Dense(16)(L.Flatten()(inputs))
    else:
        # An identity crossbar (codes = I, weight scale 1: exact in every runtime) feeding the BatchNorm.
        spec = spec.replace(weight_scale_mode="fixed", weight_scale=1.0)
        x = L.BatchNormalization(name="bn")(L.Dense(8, use_bias=False, name="identity")(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, x), spec, init="device" if layer != "batch_norm" else "keep")
    if layer == "batch_norm":
        kernel, _ = tf_nvm.keras.nvm_model.crossbar_variables(model.get_layer("quant_identity"))
        kernel.assign(np.eye(8, dtype=np.float32))
        bn = model.get_layer("quant_bn").layer
        bn.moving_variance.assign(rng.uniform(0.05, 4.0, 8))
        bn.moving_mean.assign(rng.normal(0, 2.0, 8))
        bn.gamma.assign(rng.normal(0, 1.5, 8))
        bn.beta.assign(rng.normal(0, 2.0, 8))
    x = rng.normal(0, 4, (2000,) + shape).astype(np.float32)
    export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
    results = compare(model, tmp_path / "m.tflite", x, runtimes=("litert", "tflm"), arena_size=1 << 20)
    print(f"\n{layer}: {results['litert']}\n  {results['tflm']}")
    assert results["litert"].differing == 0, str(results["litert"])
    assert results["tflm"].differing == 0, str(results["tflm"])  # against emulate_runtime("tflm")


@pytest.mark.slow
def test_int4_container_halves_weights_and_reports_differences(exported, har, tmp_path):
    model, _, int8, _ = exported["paper-2bit-bipolar"]
    summary = export_tflite(model, tmp_path / "m4.tflite", har[0][:128], container="int4")
    graph = read_tflite(tmp_path / "m4.tflite")
    for name in tf_nvm.weight_codes(model):
        (_, tensor), = graph.layer_weights(name)
        assert tensor.dtype == "INT4" and tensor.zero_points == (0,)
    assert summary.weight_bytes * 2 == pytest.approx(int8.weight_bytes, abs=8)
    assert summary.model_bytes < int8.model_bytes
    results = compare(model, tmp_path / "m4.tflite", har[2][:1000], runtimes=("litert", "tflm"),
                      arena_size=summary.arena_bytes + 1024)
    print(f"\nINT4: {summary}\n  {results['litert']}\n  {results['tflm']}")
    # INT4 runs LiteRT's builtin kernels (two roundings): 1-LSB steps per layer, not bit-exact.
    assert results["litert"].argmax_agreement >= 0.99 and results["litert"].max_abs_lsb <= 4


@pytest.mark.slow
def test_int4_is_refused_for_4bit_codes(exported, tmp_path):
    model = exported["paper-4bit-unipolar"][0]
    with pytest.raises(ExportError, match=r"container='int4' stores codes in -7\.\.7 .* this model's codes span "
                                          r"0\.\.15 \(4-bit, unipolar\)\. Fix: use container='int8'"):
        export_tflite(model, tmp_path / "x.tflite", container="int4")
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.slow
def test_summary_reports_bytes_ops_and_arena(exported):
    _, path, summary, _ = exported["paper-2bit-unipolar"]
    assert summary.model_bytes == os.path.getsize(path)
    assert summary.ops[0] == "MUL" and "CONV_2D" in summary.ops and "DEPTHWISE_CONV_2D" in summary.ops
    assert summary.op_counts["FULLY_CONNECTED"] == 1 and summary.op_counts["DEPTHWISE_CONV_2D"] == 4
    assert "ADD" not in summary.op_counts  # the digital BatchNorms are exact depthwise convolutions
    assert 1000 < summary.arena_bytes < 200_000
    text = str(summary)
    assert f"{summary.model_bytes} bytes flash" in text and f"arena {summary.arena_bytes} bytes" in text


@pytest.mark.slow
def test_arena_is_measured_in_a_child_process_and_is_enough(exported):
    from tflite_micro import runtime
    _, path, summary, _ = exported["paper-4bit-bipolar"]
    data = open(path, "rb").read()
    assert measure_arena(data) == summary.arena_bytes  # deterministic
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=summary.arena_bytes)
    interpreter.set_input(np.zeros((1, 128, 9), np.int8), 0)
    interpreter.invoke()  # the measured size suffices


@pytest.mark.slow
def test_too_small_arena_crashes_only_a_child(exported):
    """Why the arena is never searched in-process: a far too small arena kills the interpreter's process."""
    _, path, _, _ = exported["paper-2bit-unipolar"]
    code = ("import numpy as np; from tflite_micro import runtime; import sys; "
            "i = runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=64); "
            "i.set_input(np.zeros((1, 128, 9), np.int8), 0); i.invoke()")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
    assert result.returncode != 0


@pytest.mark.slow
def test_failed_export_leaves_no_file(exported, tmp_path, monkeypatch):
    import tf_nvm.core.atomic
    model = exported["paper-2bit-unipolar"][0]
    real = os.replace

    def replace(src, dst):
        raise OSError("rename failed (injected)")

    monkeypatch.setattr(tf_nvm.core.atomic.os, "replace", replace)
    with pytest.raises(OSError, match="injected"):
        export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
    monkeypatch.setattr(tf_nvm.core.atomic.os, "replace", real)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_converter_failure_is_an_export_error_and_writes_nothing(exported, tmp_path, monkeypatch):
    import tflite_export.tflite as module
    model = exported["paper-2bit-unipolar"][0]

    def broken(*args, **kwargs):
        raise ExportError("the TFLite converter failed on model 'x': injected")

    monkeypatch.setattr(module, "_convert", broken)
    with pytest.raises(ExportError, match="injected"):
        export_tflite(model, tmp_path / "m.tflite")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_non_nvm_model_and_bad_arguments_are_refused(exported, tmp_path):
    float_model = tf_nvm.models.build("har_signed_cnn", filters=(4,), kernel_sizes=(3,))
    with pytest.raises(NotAnNVMModelError, match=r"has no NVM crossbar layer"):
        export_tflite(float_model, tmp_path / "x.tflite")
    model = exported["paper-2bit-unipolar"][0]
    with pytest.raises(ExportError, match=r"container must be one of \['int8', 'int4'\], got 'int2'"):
        export_tflite(model, tmp_path / "x.tflite", container="int2")
    with pytest.raises(ExportError, match=r"representative_data has shape \[4, 9\]; the model expects examples of "
                                          r"shape \[128, 9\]"):
        export_tflite(model, tmp_path / "x.tflite", np.zeros((4, 9)))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_export_run_folder_and_inspect(exported, tmp_path, capsys):
    import json

    from tf_nvm.core.atomic import write_json_atomic
    from tf_nvm.cli import main
    from tf_nvm.mapping import load

    model = exported["paper-2bit-unipolar"][0]
    (x_train, _), _ = tf_nvm.datasets.load_har(verbose=False)
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    write_json_atomic(run / "spec.json", tf_nvm.model_spec(model).to_dict())
    write_json_atomic(run / "preprocessing.json", {"input_mean": x_train.mean((0, 1)).tolist(),
                                                   "input_std": (x_train.std((0, 1)) + 1e-8).tolist()})
    write_json_atomic(run / "recipe.json", {"dataset": "har"})
    write_json_atomic(run / "metrics.json", {"test_accuracy": 0.0})
    capsys.readouterr()
    assert main(["export", str(run), "--tflite", str(tmp_path / "out.tflite"), "--mapping",
                 str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "representative data: 256 HAR training windows standardised with preprocessing.json" in text
    assert "bytes flash (int8 weights" in text and "TFLite Micro arena" in text
    assert "crossbar mapping:" in text and "quant_conv0" in text
    mapping = load(tmp_path / "out")
    assert mapping.input.mean is not None and len(mapping.input.mean) == 9
    assert main(["inspect", str(tmp_path / "out.json")]) == 0
    table = capsys.readouterr().out
    assert "layer" in table and "tiles" in table and "ADCs" in table
    assert "total: 3 crossbar layers on " in table
    assert main(["inspect", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["crossbar_layers"] == 3


def test_cli_export_errors_are_named(tmp_path, capsys):
    from tf_nvm.cli import main

    assert main(["export", str(tmp_path)]) == 2
    assert "tf-nvm export: nothing to write. Fix: give --tflite OUT.tflite and/or --mapping PREFIX." in \
        capsys.readouterr().err
    assert main(["export", str(tmp_path), "--mapping", str(tmp_path / "m")]) == 2
    assert "has no model.keras. Fix: pass a folder written by `tf-nvm train`" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing")]) == 2
    assert "missing.json: cannot be read: " in capsys.readouterr().err


# ------------------------------------------------- exactness of the digital layers
@pytest.mark.slow
@pytest.mark.parametrize("preset", ["paper-4bit-bipolar", "paper-2bit-unipolar"])
def test_litert_bit_exact_on_a_tie_prone_random_network(preset, tmp_path):
    """Random BatchNorm statistics and a mean over 30 positions (sum/30 often halfway between two levels)."""
    from tf_nvm.mapping.reference import evaluate
    from tflite_export import export_crossbar

    L = keras.layers
    rng = np.random.default_rng(3)
    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 8))
    x = L.Conv1D(16, 7, padding="same", activation="relu")(inputs)
    x = L.BatchNormalization()(x)
    x = L.Conv1D(8, 3)(x)  # 'valid': 30 positions
    x = L.GlobalAveragePooling1D()(x)
    x = L.Dense(5)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(keras.Model(inputs, x), preset, init="device")
    for weight in model.weights:
        if "moving_variance" in weight.name:
            weight.assign(rng.uniform(0.05, 4, weight.shape))
        if "moving_mean" in weight.name or "beta" in weight.name:
            weight.assign(rng.normal(0, 1, weight.shape))
    data = rng.normal(0, 3, (1500, 32, 8)).astype(np.float32)
    export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
    litert = compare(model, tmp_path / "m.tflite", data, runtimes=("litert",))["litert"]
    assert litert.differing == 0, str(litert)
    export_crossbar(model, tmp_path / "m")
    np.testing.assert_array_equal(evaluate(tmp_path / "m", data).values(), model.predict(data, verbose=0))


def test_batchnorm_constants_are_exact_in_float32(rng):
    from tf_nvm.keras.digital import NVMBatchNormalization

    spec = tf_nvm.core.presets.get("paper-2bit-bipolar")
    layer = NVMBatchNormalization(spec=spec)
    layer.build((None, 64))
    layer.moving_variance.assign(rng.uniform(1e-4, 1e3, 64))
    layer.moving_mean.assign(rng.normal(0, 30, 64))
    layer.gamma.assign(rng.normal(0, 3, 64))
    layer.beta.assign(rng.normal(0, 30, 64))
    affine = layer.digital_affine()
    m, k, u = affine["multiplier"], affine["offset"], affine["scale"]
    assert np.abs(m).max() <= 127 and np.abs(k).max() <= 2 ** 22 and (u > 0).all()
    mantissa = u.view(np.int32) & 0x7FFFFF
    assert ((mantissa & 0x7F) == 0).all() and ((mantissa >> 7) & 1 == 1).all()  # 17-bit, lowest bit set
    assert ((np.float32(127) * u).astype(np.float64) == 127 * u.astype(np.float64)).all()  # 127 u exact
    inv, off = affine["float_scale"], affine["float_offset"]
    # inv on the grid of u (relative error <= 1/254 unless a large offset forced a coarser u), off on u * step
    assert (np.abs(m * u.astype(np.float64) - inv) <= u / 2 * (1 + 1e-6)).all()
    grid = u.astype(np.float64) * spec.activation_step  # plus the float32 error of off / (u * step)
    assert (np.abs(k * grid - off) <= (0.5 + np.abs(k) * 2.0 ** -23) * grid).all()
    x = rng.integers(-128, 128, (500, 64)).astype(np.float32) * spec.activation_step
    got = layer(x, training=False).numpy() / spec.activation_step
    want = (x / spec.activation_step * m + k).astype(np.float32) * u  # the runtime's arithmetic
    np.testing.assert_array_equal(got, want)


def test_bad_runtime_arguments_are_export_errors():
    from tflite_export import run_litert

    x = np.zeros((1, 4), np.float32)
    with pytest.raises(ExportError, match=r"run_litert: resolver must be one of \['default', 'builtin', 'reference'\], "
                                          r"got 'fast'\. Fix: pass one of those names\."):
        run_litert(b"", x, resolver="fast")
    with pytest.raises(ExportError, match=r"compare: emulate must be 'auto', 'model' or one of .*, got 'gpu'\. "
                                          r"Fix: pass one of those modes\."):
        compare(None, b"", x, emulate="gpu")
    with pytest.raises(ExportError, match=r"compare: unknown runtime 'onnx'; allowed: \['litert', 'litert-builtin', "
                                          r"'litert-reference', 'tflm'\]\. Fix: pass runtimes from that list\."):
        compare(None, b"", x, runtimes=("litert", "onnx"))


def test_quantize_input_rounds_half_to_even_on_the_grid():
    from tflite_export import quantize_input

    assert quantize_input(np.array([0.25, 0.75, -0.25, 100.0, -100.0]), 0.5).tolist() == [0, 2, -0, 127, -128]


@pytest.mark.parametrize("target, message", [
    ("folder", r"TFLite output file '.*out' is a folder\. Fix: pass a file name inside it"),
    ("nul", r"TFLite output file '.*a\\x00b\.tflite' contains a NUL character\. Fix: pass a valid file name\."),
    ("proc", r"TFLite output file '/proc/tf_nvm\.tflite' cannot be written: .*Fix: pass a path in a writable "
             r"folder\."),
    ("read_only", r"TFLite output file '.*ro/m\.tflite' cannot be written: Permission denied.*Fix: pass a path"),
])
@pytest.mark.slow
def test_unwritable_outputs_fail_before_conversion(exported, tmp_path, monkeypatch, target, message):
    import tflite_export.tflite as tflite_module  # noqa: PLC0415

    def never(*args, **kwargs):
        raise AssertionError("the converter ran although the output cannot be written")

    monkeypatch.setattr(tflite_module, "_convert", never)
    model = exported["paper-2bit-bipolar"][0]
    path = {"folder": tmp_path / "out", "nul": str(tmp_path / "a\x00b.tflite"), "proc": "/proc/tf_nvm.tflite",
            "read_only": tmp_path / "ro" / "m.tflite"}[target]
    if target == "folder":
        path.mkdir()
    if target == "read_only":
        (tmp_path / "ro").mkdir()
        os.chmod(tmp_path / "ro", 0o555)
        if os.access(tmp_path / "ro", os.W_OK) and os.geteuid() == 0:
            # root ignores directory permissions: a read-only bind is not available here, so use a file as parent
            os.chmod(tmp_path / "ro", 0o755)
            os.rmdir(tmp_path / "ro")
            (tmp_path / "ro").write_text("a file, not a folder")
            message = r"TFLite output file '.*ro/m\.tflite' cannot be written: .*Fix: pass a path in a writable folder"
    with pytest.raises(ExportError, match=message):
        export_tflite(model, path, measure_arena=False)


def test_unknown_time_axis_is_an_export_error(tmp_path):
    from tf_nvm.keras.layers import NVMDense, NVMQuantize  # noqa: PLC0415

    spec = tf_nvm.core.presets.get("paper-4bit-bipolar").replace(weight_scale_mode="fixed", weight_scale=0.05)
    model = keras.Sequential([keras.Input((None, 4)), NVMQuantize(spec), NVMDense(3, spec=spec)])
    message = (r"input .* has shape \(None, None, 4\): an unknown \(None\) axis besides the batch axis cannot be "
               r"exported")
    with pytest.raises(ExportError, match=r"^export_tflite: model .*" + message):
        export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
    from tflite_export import export_crossbar  # noqa: PLC0415
    with pytest.raises(ExportError, match=r"^export_crossbar: model .*" + message):
        export_crossbar(model, tmp_path / "m")


@pytest.mark.slow
def test_nan_weights_are_refused_and_nothing_is_written(exported, tmp_path):
    model = exported["paper-4bit-bipolar"][0]
    kernel = tf_nvm.keras.nvm_model.crossbar_variables(tf_nvm.nvm_layers(model)[0])[0]
    saved = kernel.numpy()
    try:
        kernel.assign(np.full_like(saved, np.nan))
        with pytest.raises(tf_nvm.InvalidWeightsError, match=r"holds \d+ NaN/infinite value\(s\) of \d+; nothing was "
                                                             r"exported\. Fix: retrain with a lower learning rate"):
            export_tflite(model, tmp_path / "m.tflite", measure_arena=False)
        assert not (tmp_path / "m.tflite").exists()
    finally:
        kernel.assign(saved)


@pytest.mark.slow
def test_missing_tflite_micro_is_named_before_anything_is_written(exported, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # as after `pip install tf-nvm` without the export extra
    with pytest.raises(ExportError, match=r"TFLite Micro \(the Python package tflite-micro\) is not installed .*Fix: "
                                          r"install the export extra, python3 -m pip install 'tf-nvm\[export\]', or "
                                          r"skip the arena measurement \(measure_arena=False, tf-nvm export "
                                          r"--no-arena\)\."):
        export_tflite(exported["paper-2bit-bipolar"][0], tmp_path / "m.tflite")
    assert os.listdir(tmp_path) == []
