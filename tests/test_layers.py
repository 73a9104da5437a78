import inspect

import numpy as np
import pytest

import tf_nvm
from tf_nvm import SpecError
from tf_nvm.core import presets
from tf_nvm.keras.backend import keras
from tf_nvm.keras.layers import NVMConv1D, NVMConv2D, NVMDense, NVMDepthwiseConv2D, NVMQuantize

L = keras.layers
PAIRS = [(NVMDense, L.Dense), (NVMConv1D, L.Conv1D), (NVMConv2D, L.Conv2D),
         (NVMDepthwiseConv2D, L.DepthwiseConv2D)]


def fixed(preset="paper-2bit-unipolar", scale=0.05):
    return presets.get(preset).replace(weight_scale_mode="fixed", weight_scale=scale)


@pytest.mark.parametrize("nvm_cls, keras_cls", PAIRS)
def test_signature_is_the_keras_signature_plus_spec(nvm_cls, keras_cls):
    keras_params = [p for p in inspect.signature(keras_cls.__init__).parameters if p not in ("self", "kwargs")]
    nvm_params = [p for p in inspect.signature(nvm_cls).parameters if p not in ("self", "kwargs")]
    assert nvm_params == keras_params + ["spec"]


@pytest.mark.parametrize("nvm_cls, keras_cls", PAIRS)
def test_config_round_trip_keeps_every_argument(nvm_cls, keras_cls):
    args = {"Dense": (7,), "Conv1D": (5, 3), "Conv2D": (5, 3), "DepthwiseConv2D": (3,)}[keras_cls.__name__]
    layer = nvm_cls(*args, use_bias=False, spec=fixed(), name="probe")
    again = nvm_cls.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert again.name == "probe" and again.spec == fixed()


def test_user_built_model_trains_saves_and_loads(tmp_path, rng, seeded):
    spec = fixed("paper-4bit-bipolar", 0.02)
    model = keras.Sequential([keras.Input((16, 16, 1)), NVMQuantize(spec),
                              NVMConv2D(4, 3, activation="relu", spec=spec, name="nvm_conv2d"), L.MaxPooling2D(2),
                              L.Flatten(), NVMDense(3, spec=spec, name="nvm_dense")])
    x = rng.normal(size=(128, 16, 16, 1)).astype(np.float32)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, rng.integers(0, 3, 128), epochs=1, verbose=0)
    codes = tf_nvm.weight_codes(model)
    assert sorted(codes) == ["nvm_conv2d", "nvm_dense"]
    assert all(-15 <= c.codes.min() and c.codes.max() <= 15 and c.scale == 0.02 for c in codes.values())
    model.save(tmp_path / "user.keras")
    np.testing.assert_array_equal(tf_nvm.load_model(tmp_path / "user.keras").predict(x, verbose=0),
                                  model.predict(x, verbose=0))


def test_layer_needs_a_scale():
    with pytest.raises(SpecError, match=r"NVMDense: spec.weight_scale is None; this needs "
                                        r"the model's one shared weight scale\. Fix: pass spec.replace\("):
        NVMDense(4, spec=presets.get("paper-2bit-unipolar"))
    with pytest.raises(SpecError, match=r"NVMConv1D: spec must be an NVMSpec, a preset name or a spec dict, "
                                        r"got int\. Fix:"):
        NVMConv1D(4, 3, spec=3)


def test_nvm_quantize_puts_values_on_the_shared_grid():
    spec = fixed()
    out = NVMQuantize(spec)(np.array([[-100.0, -0.07, 0.0, 0.02, 7.95, 100.0]], np.float32)).numpy()
    assert spec.activation_step == 0.0625  # A/128 with A = 8
    # clipped to -A, rounded to the nearest step, zero stays zero, top level A*127/128
    np.testing.assert_allclose(out, [[-8.0, -0.0625, 0.0, 0.0, 7.9375, 7.9375]], atol=1e-6)
