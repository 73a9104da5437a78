"""Tests generated over tf_nvm's registries: every serialisable object, layer rule, architecture, mode.

A new entry in a registry gets these checks without anyone editing this file.
"""

import threading

import numpy as np
import pytest

import tf_nvm
from tf_nvm.core import modes, presets
from tf_nvm.keras.backend import keras
from tf_nvm.core.errors import ModeError, UnknownNameError, UnsupportedLayerError
from tf_nvm.keras.quantize_configs import LAYER_RULES, ROLES, NVMCrossbarConfig, config_for, rule_for
from tf_nvm.core.registry import Registry
from tf_nvm.keras.serialization import custom_objects, registered_classes
from tf_nvm.core.spec import SpecConfigured

SPEC = presets.get("paper-4bit-bipolar").replace(weight_scale_mode="fixed", weight_scale=0.05)


# ------------------------------------------------------------------ the Registry itself
def test_registry_register_get_names_describe():
    reg = Registry("widget")

    @reg.register
    def small():
        """A small widget."""

    reg.register("big", 42, description="the big one")
    reg.register("tiny")(lambda: None)
    assert reg.names() == ["big", "small", "tiny"] and len(reg) == 3 and "big" in reg and 3 not in reg
    assert reg.get("big") == 42 and reg.get("small") is small
    assert reg.describe()["small"] == "A small widget." and reg.describe()["big"] == "the big one"
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'huge'; known: big, small, tiny\. Fix: use one of "
                                               r"the known widget names\.$"):
        reg.get("huge")
    with pytest.raises(UnknownNameError, match=r"widget 'big' is already registered\. Fix: choose another name"):
        reg.register("big", 1)
    reg.register("big", 1, replace=True)
    assert reg.get("big") == 1
    with pytest.raises(UnknownNameError, match=r"widget name must be a non-empty string, got ''"):
        reg.register("", 1)


def test_unknown_name_is_a_key_error_and_a_value_error():
    with pytest.raises(KeyError):
        tf_nvm.models.build("no_such_net")
    with pytest.raises(ValueError, match=r"unknown architecture 'no_such_net'; known: cifar_cnn, cifar_vgg, ds_cnn, "
                                         r"fc_autoencoder, har_cnn, har_search_cnn, har_search_mlp, har_signed_cnn, "
                                         r"mobilenet_v1, resnet8\. Fix: use a registered architecture"):
        tf_nvm.models.build("no_such_net")


def test_registry_raises_its_own_error_class():
    with pytest.raises(UnsupportedLayerError, match=r"unknown layer rule 'Nope'.*Fix: register a rule"):
        LAYER_RULES.get("Nope")


# ------------------------------------------------------------------ Keras-serialisable objects
def _instance(cls):
    """A small instance of a registered class (spec-configured objects take the spec)."""
    if issubclass(cls, SpecConfigured):
        return cls(SPEC)
    if cls.__name__ in ("NVMDense",):
        return cls(3, spec=SPEC)
    if cls.__name__ in ("NVMConv1D", "NVMConv2D"):
        return cls(3, 2, spec=SPEC)
    if cls.__name__ == "NVMDepthwiseConv2D":
        return cls(2, spec=SPEC)
    return cls(spec=SPEC)


@pytest.mark.parametrize("cls", registered_classes(), ids=lambda c: c.__name__)
def test_every_registered_object_round_trips_its_config(cls):
    obj = _instance(cls)
    config = obj.get_config()
    again = cls.from_config(config)
    assert again.get_config() == config
    assert custom_objects()[cls.__name__] is cls and custom_objects()[f"tf_nvm>{cls.__name__}"] is cls
    if isinstance(obj, SpecConfigured):
        assert again == obj and hash(again) == hash(obj)


def test_serialisable_registry_covers_the_quantizers_configs_and_layers():
    names = {cls.__name__ for cls in registered_classes()}
    assert {"NVMWeightQuantizer", "NVMBiasQuantizer", "NVMActivationQuantizer", "NVMCrossbarOutputQuantizer",
            "ProbabilityQuantizer", "NVMCrossbarConfig", "NVMDigitalConfig", "NVMProbabilityConfig",
            "NVMPassthroughConfig", "NVMKernelConstraint", "NVMDense", "NVMConv1D", "NVMConv2D",
            "NVMDepthwiseConv2D", "NVMQuantize", "NVMBatchNormalization", "NVMGlobalAveragePooling1D",
            "NVMGlobalAveragePooling2D"} <= names


def test_crossbar_output_quantizer_keeps_its_fully_connected_flag():
    from tf_nvm.keras.quantizers import NVMCrossbarOutputQuantizer  # noqa: PLC0415

    quantizer = NVMCrossbarOutputQuantizer(SPEC, fully_connected=True)
    assert NVMCrossbarOutputQuantizer.from_config(quantizer.get_config()).fully_connected is True
    assert quantizer != NVMCrossbarOutputQuantizer(SPEC)


# ------------------------------------------------------------------ layer rules
_LAYER_ARGS = {"Dense": (3,), "Conv1D": (3, 2), "Conv2D": (3, 2), "DepthwiseConv2D": (2,), "Activation": ("relu",),
               "Reshape": ((-1,),), "Permute": ((1,),), "Rescaling": (1.0,), "Dropout": (0.1,),
               "SpatialDropout1D": (0.1,), "SpatialDropout2D": (0.1,)}


@pytest.mark.parametrize("name", LAYER_RULES.names())
def test_every_layer_rule_gives_a_config_of_its_role(name):
    rule = LAYER_RULES.get(name)
    assert rule.role in ROLES and rule.layer_class.__name__ == name
    kwargs = {"spec": SPEC} if name.startswith("NVM") else {}
    layer = rule.layer_class(*_LAYER_ARGS.get(name, ()), **kwargs)
    assert rule_for(layer) is rule
    config = config_for(layer, SPEC)
    assert type(config).__name__ == {"crossbar": "NVMCrossbarConfig", "digital": "NVMDigitalConfig",
                                     "probability": "NVMProbabilityConfig",
                                     "passthrough": "NVMPassthroughConfig"}[rule.role]
    if rule.role == "crossbar":
        assert isinstance(config, NVMCrossbarConfig) and config.kernel_attr == rule.kernel_attr
        assert rule.constraint_arg in layer.get_config()


def test_register_layer_refuses_an_unknown_role():
    from tf_nvm.keras.quantize_configs import register_layer  # noqa: PLC0415

    with pytest.raises(UnsupportedLayerError, match=r"register_layer: role must be one of \['crossbar', 'digital', "
                                                    r"'probability', 'passthrough'\], got 'analog'"):
        register_layer(keras.layers.Dense, "analog")


# every architecture x paper preset: about 800 s of a loaded fast tier; the slow tier runs them all
@pytest.mark.slow
# ------------------------------------------------------------------ architectures x presets
# resnet8 takes 9-17 s per preset on 2 shared cores: the slow tier (the other architectures stay in the fast one)
@pytest.mark.parametrize("architecture", [pytest.param(name, marks=pytest.mark.slow) if name == "resnet8" else name
                                          for name in tf_nvm.models.ARCHITECTURES.names()])
def test_every_architecture_quantizes_under_every_paper_preset(architecture, paper_preset):
    import warnings  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    kwargs = {"har_cnn": {"filters": (4, 4, 4)}, "har_search_mlp": {"units": (4,)},
              "resnet8": {"input_shape": (8, 8, 3), "filters": 2},
              "ds_cnn": {"input_shape": (10, 6, 1), "filters": 4, "blocks": 1},
              "fc_autoencoder": {"input_dim": 12, "units": 4, "bottleneck": 2, "depth": 1},
              "mobilenet_v1": {"input_shape": (16, 16, 3), "alpha": 0.125, "blocks": 2}}.get(architecture,
                                                                                              {"filters": (4, 4)})
    float_model = tf_nvm.models.build(architecture, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tf_nvm.NonInhibitingCrossbarWarning)
        model = tf_nvm.quantize_model(float_model, paper_preset, init="device")
    spec = tf_nvm.model_spec(model)
    codes = tf_nvm.weight_codes(model)
    assert codes and all(c.scale == spec.weight_scale for c in codes.values())
    assert all(spec.code_min <= c.codes.min() and c.codes.max() <= spec.code_max for c in codes.values())
    x = np.zeros((2,) + tuple(float_model.input_shape[1:]), np.float32)
    assert model.predict(x, verbose=0).shape == (2, float_model.output_shape[-1])


# ------------------------------------------------------------------ modes
def test_modes_are_thread_local_and_nest():
    seen = {}

    def other_thread():
        seen["other"] = (modes.emulated_runtime(), modes.in_converter_graph())

    with modes.emulate_runtime("tflm"), modes.converter_graph("int4"):
        with modes.emulate_runtime("litert-reference"):
            assert modes.emulated_runtime() == "litert-reference"
        assert modes.emulated_runtime() == "tflm" and modes.converter_weight_limit() == 7
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen["other"] == ("litert", False)
    assert modes.emulated_runtime() == "litert" and not modes.in_converter_graph()
    assert modes.converter_weight_limit() == 127


def test_mode_errors_name_the_mode_and_the_allowed_values():
    with pytest.raises(ModeError, match=r"converter_graph: value 'int2' is not allowed; allowed: \['int8', 'int4'\]\. "
                                        r"Fix: pass one of them"):
        with modes.converter_graph("int2"):
            pass
    assert not modes.in_converter_graph()


@pytest.mark.slow
def test_a_saved_model_loads_in_a_fresh_process(tmp_path):
    """`tf_nvm.load_model` knows every tf_nvm class without the caller importing any tf_nvm module first."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    model = tf_nvm.quantize_model(tf_nvm.models.build("har_signed_cnn", filters=(4,), kernel_sizes=(3,)),
                                  "paper-2bit-unipolar", init="device")
    model.save(tmp_path / "m.keras")
    code = ("import sys, tf_nvm; m = tf_nvm.load_model(sys.argv[1]); "
            "print(sorted({type(l).__name__ for l in m.layers}), tf_nvm.model_spec(m).weight_bits)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True, text=True,
                            timeout=300, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "QuantizeWrapperV2" in result.stdout and result.stdout.strip().endswith(" 2")
