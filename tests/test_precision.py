"""Exactness on other machines: TF32 off, mixed precision refused, MirroredStrategy gives one device's codes.

The TF32 switch and the dtype policies can be set on a CPU (where TF32 changes no number): these tests
check tf_nvm's guard, not the GPU arithmetic itself.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import tf_nvm
from tf_nvm import PrecisionError, TensorFloat32Warning
from tf_nvm.keras.backend import keras, tf
from tf_nvm.keras.layers import NVMDense
from tf_nvm.keras.precision import TF32_SETTING, require_float32
from tf_nvm.experiments.train import train_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L = keras.layers
SPEC = tf_nvm.core.presets.get("paper-4bit-bipolar").replace(weight_scale_mode="fixed", weight_scale=0.05)


def mlp(dtype=None):
    inputs = keras.Input((12,))
    x = L.Dense(8, activation="relu", name="fc1", **({"dtype": dtype} if dtype else {}))(inputs)
    return keras.Model(inputs, L.Dense(3, name="fc2")(x))


@pytest.fixture
def tf32_on():
    """TF32 switched on as a user would; always off again afterwards."""
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """A global mixed-precision policy; float32 restored afterwards."""
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


def tiny_split_and_recipe(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 12)).astype("float32") * 0.5
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    split = types.SimpleNamespace(x_train=x, y_train=y, x_val=x[:16], y_val=y[:16], x_test=x[:16], y_test=y[:16])
    recipe = types.SimpleNamespace(epochs=1, batch_size=32, learning_rate=1e-3, augment_scale=0.0, augment_noise=0.0)
    return split, recipe


@pytest.mark.slow
def test_tf32_is_off_once_tf_nvm_imports_tensorflow():
    child = subprocess.run([sys.executable, "-c", "import tensorflow as tf; a = tf.config.experimental."
                            "tensor_float_32_execution_enabled(); import tf_nvm.simulator; print(a, tf.config."
                            "experimental.tensor_float_32_execution_enabled())"], capture_output=True, text=True,
                           timeout=120, cwd=ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1",
                                                        "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert child.stdout.split() == ["True", "False"], child.stderr[-2000:]  # TensorFlow's default, then off


def test_quantize_model_turns_tf32_off_with_a_warning_naming_the_setting(tf32_on, seeded):
    with pytest.warns(TensorFloat32Warning, match=re.escape(f"quantize_model: TensorFloat-32 execution was enabled "
                                                            f"({TF32_SETTING}(True)); tf_nvm turned it off")):
        tf_nvm.quantize_model(mlp(), SPEC)
    assert tf.config.experimental.tensor_float_32_execution_enabled() is False


def test_train_model_turns_tf32_off_for_an_nvm_model(seeded):
    split, recipe = tiny_split_and_recipe()
    nvm = tf_nvm.quantize_model(mlp(), SPEC)
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        with pytest.warns(TensorFloat32Warning, match=r"train_model: TensorFloat-32 .*Fix: do not re-enable TF32"):
            train_model(nvm, recipe, split, verbose=0)
        assert tf.config.experimental.tensor_float_32_execution_enabled() is False
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)


def test_no_warning_when_tf32_is_already_off():
    with warnings.catch_warnings():
        warnings.simplefilter("error", TensorFloat32Warning)
        require_float32("quantize_model")


def test_quantize_model_refuses_a_mixed_precision_policy(mixed_policy, seeded):
    model = mlp()  # its layers compute in the mixed policy
    with pytest.raises(PrecisionError, match=re.escape(
            f"quantize_model: the Keras global dtype policy is '{mixed_policy}'") + r".*Fix: call "
            + re.escape("keras.mixed_precision.set_global_policy('float32')")):
        tf_nvm.quantize_model(model, SPEC)


def test_quantize_model_refuses_a_layer_with_a_float16_dtype(seeded):
    with pytest.raises(PrecisionError, match=re.escape(
            "quantize_model: layer 'fc1' (Dense) has dtype policy 'mixed_float16' (compute float16, variables "
            "float32); an NVM layer must compute in float32") + r".*Fix: build the layer with dtype='float32'"):
        tf_nvm.quantize_model(mlp(dtype="mixed_float16"), SPEC)


def test_an_nvm_layer_given_a_bfloat16_policy_is_refused_when_built():
    layer = NVMDense(4, spec=SPEC, dtype="mixed_bfloat16", name="xbar")
    with pytest.raises(PrecisionError, match=re.escape("NVMWeightQuantizer of layer 'xbar': layer 'xbar' (NVMDense) "
                                                       "has dtype policy 'mixed_bfloat16'")):
        layer(tf.zeros((1, 12)))


def test_train_and_load_refuse_a_mixed_policy_set_after_quantizing(tmp_path, seeded):
    split, recipe = tiny_split_and_recipe()
    nvm = tf_nvm.quantize_model(mlp(), SPEC)
    nvm.save(tmp_path / "m.keras")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with pytest.raises(PrecisionError, match="train_model: the Keras global dtype policy is 'mixed_float16'"):
            train_model(nvm, recipe, split, verbose=0)
        with pytest.raises(PrecisionError, match="load_model: the Keras global dtype policy is 'mixed_float16'"):
            tf_nvm.load_model(tmp_path / "m.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert tf_nvm.load_model(tmp_path / "m.keras").count_params() == nvm.count_params()


_MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tf_nvm
    from tf_nvm.keras.backend import keras, tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    L = keras.layers
    spec = tf_nvm.core.presets.get("paper-4bit-bipolar")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 12)).astype("float32") * 0.5
    y = ((x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)).astype("int64")

    def train(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((12,))
            h = L.Dense(16, activation="relu", name="fc1")(inputs)
            model = tf_nvm.quantize_model(keras.Model(inputs, L.Dense(3, name="fc2")(h)), spec, init="device")
            start = {k: v.codes.tolist() for k, v in tf_nvm.weight_codes(model).items()}
            model.compile(keras.optimizers.SGD(0.5),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=2, verbose=0)  # 8 steps
        return start, {k: v.codes.tolist() for k, v in tf_nvm.weight_codes(model).items()}, model.predict(x, verbose=0)

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = train(tf.distribute.get_strategy())
    two = train(mirrored)
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "start_equal": one[0] == two[0],
                      "codes_one": one[1], "codes_two": two[1], "start": one[0],
                      "max_output_difference": float(np.max(np.abs(one[2] - two[2])))}))
""")


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpus_trains_the_same_codes_as_one_device():
    """Two logical CPUs (set before TensorFlow starts its devices: a child process), 8 SGD steps of 64 examples.

    Each replica computes the gradient of its half of the batch; the all-reduce sums them, so the update
    equals one device's up to float32 summation order, and the device codes (rounded to the grid) agree.
    """
    child = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=300,
                           cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert child.returncode == 0, child.stderr[-3000:]
    found = json.loads(child.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2 and found["start_equal"]
    assert found["codes_two"] == found["codes_one"]
    changed = sum(np.count_nonzero(np.array(found["codes_one"][k]) != np.array(found["start"][k]))
                  for k in found["start"])
    assert changed > 20, changed  # training moved codes: the comparison is not between two initial states
    assert found["max_output_difference"] < 1e-4
