"""Float model builders (architectures) by name, used by recipes and the CLI.

Each builder returns a float tf_keras model; `quantize_model` makes it an NVM
model. Builders are registered in `ARCHITECTURES` (a `tf_nvm.core.registry.Registry`,
defined in `tf_nvm.experiments.architectures`): the HAR and CIFAR-10 builders of this
module and the MLPerf Tiny reference networks of `tf_nvm.experiments.reference_models`
(re-exported here). Importing this module does not import TensorFlow (each builder
does), so recipes can check architecture names without it.
"""

from collections.abc import Sequence
from typing import Any

from tf_nvm.core.errors import RecipeError
from tf_nvm.experiments.architectures import ARCHITECTURES, both_signs, build, lazy_keras, register_architecture
from tf_nvm.experiments.reference_models import ds_cnn, fc_autoencoder, mobilenet_v1, resnet8

__all__ = ["ARCHITECTURES", "register_architecture", "build", "har_signed_cnn", "har_cnn", "cifar_cnn", "cifar_vgg",
           "har_search_cnn", "har_search_mlp", "SIGN_SOURCES", "POOLINGS", "resnet8", "ds_cnn",
           "fc_autoencoder", "mobilenet_v1"]

Shape = Sequence[int]
"""An input shape (without the batch axis)."""
Ints = Sequence[int]
"""Per block or per layer: a list of integers."""


@register_architecture
def har_signed_cnn(input_shape: Shape = (128, 9), num_classes: int = 6, filters: Ints = (64, 64),
                   kernel_sizes: Ints = (9, 5), pool: int = 2, sign_split: bool = True, dropout: float = 0.0) -> Any:
    """1-D CNN for HAR whose every crossbar sees signed, centred inputs.

    Per block: [x, -x] (when ``sign_split``) -> Conv1D -> BatchNorm (digital) ->
    ReLU -> MaxPool -> BatchNorm (digital, re-centres before the next crossbar).
    Head: GlobalAveragePooling -> [h, -h] -> Dense logits. With non-negative
    weights each crossbar can still subtract because it receives both signs.

    Args:
        input_shape: (timesteps, channels) of one window.
        num_classes: number of logits.
        filters: output channels per conv block.
        kernel_sizes: kernel length (samples) per conv block.
        pool: max-pool size after each block.
        sign_split: feed both signs of each crossbar input (doubles its rows).
        dropout: dropout rate before the head.
    """
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="window")
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes)):
        if sign_split:
            x = both_signs(x, f"block{i}")
        x = L.Conv1D(f, k, padding="same", name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = L.MaxPooling1D(pool, name=f"pool{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    if sign_split:
        x = both_signs(x, "head")
    outputs = L.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="har_signed_cnn")


@register_architecture
def har_cnn(input_shape: Shape = (128, 9), num_classes: int = 6, filters: Ints = (32, 64, 64)) -> Any:
    """A generic ReLU 1-D CNN (3 conv + 2 dense): a poor unipolar network (no inhibition)."""
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="window")
    x = inputs
    for i, f in enumerate(filters):
        x = L.Conv1D(f, 5, padding="same", activation="relu", name=f"conv{i}")(x)
        x = L.MaxPooling1D(2, name=f"pool{i}")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(64, activation="relu", name="fc")(x)
    outputs = L.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="har_cnn")


@register_architecture
def cifar_cnn(input_shape: Shape = (32, 32, 3), num_classes: int = 10, filters: Ints = (32, 64, 128),
              sign_split: bool = False) -> Any:
    """A small CIFAR-10 CNN: per block Conv2D -> BatchNorm -> ReLU -> MaxPool."""
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        if sign_split:
            x = both_signs(x, f"block{i}")
        x = L.Conv2D(f, 3, padding="same", name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = L.MaxPooling2D(2, name=f"pool{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if sign_split:
        x = both_signs(x, "head")
    outputs = L.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


SIGN_SOURCES = ("split", "bn")
"""Where a unipolar crossbar's inhibition comes from: ``"split"`` feeds it ``[x, -x]`` (twice the rows);
``"bn"`` feeds it the centred output of a digital BatchNorm only (half the rows; the BatchNorm's signed
gamma flips whole channels)."""
POOLINGS = ("max", "avg")
"""Pooling after each convolution block: ``"max"`` (pass-through) or ``"avg"`` (digital)."""


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise RecipeError(f"architecture argument {name} must be one of {list(allowed)}, got {value!r}. "
                          f"Fix: pass one of {list(allowed)}.")


def _window_input(keras, input_shape, input_pool):
    """(``Input`` of one window, its optional digital average pooling over ``input_pool`` samples per step)."""
    inputs = keras.Input(input_shape, name="window")
    pooled = keras.layers.AveragePooling1D(input_pool, name="input_pool")(inputs) if input_pool > 1 else inputs
    return inputs, pooled


def _signed(x, signs, name):
    """The input of a crossbar: both signs (``"split"``) or ``x`` itself (``"bn"``: already centred)."""
    return both_signs(x, name) if signs == "split" else x


@register_architecture
def har_search_cnn(input_shape: Shape = (128, 9), num_classes: int = 6, filters: Ints = (64, 64),
                   kernel_sizes: Ints = (9, 5), pool: int = 2, pooling: str = "max", signs: str = "split",
                   input_pool: int = 1, head_units: int = 0, dropout: float = 0.0) -> Any:
    """The 1-D CNN family searched by `tf_nvm.nas` (``har_signed_cnn`` is one member).

    Input encoding: an optional digital average pooling over time (``input_pool``
    samples per step) before the first crossbar. Per block: signs (``signs``) ->
    Conv1D -> BatchNorm (digital) -> ReLU -> pooling (``pool`` > 1) -> BatchNorm
    (digital, centres the next crossbar's input). Head: GlobalAveragePooling ->
    dropout -> optional hidden Dense(``head_units``) block -> signs -> Dense logits.
    With ``signs="split"``, ``pool=2``, ``pooling="max"``, ``input_pool=1`` and
    ``head_units=0`` this is ``har_signed_cnn``.

    Args:
        input_shape: (timesteps, channels) of one window.
        num_classes: number of logits.
        filters: output channels per conv block (its length is the depth).
        kernel_sizes: kernel length (samples) per conv block, as many as ``filters``.
        pool: pooling size (samples) after each block; 1: none.
        pooling: ``"max"`` or ``"avg"`` (`POOLINGS`).
        signs: ``"split"`` or ``"bn"`` (`SIGN_SOURCES`).
        input_pool: samples averaged per time step before the first crossbar (1: none).
        head_units: units of a hidden Dense block before the logits (0: none).
        dropout: dropout rate before the head.
    """
    _check_choice("signs", signs, SIGN_SOURCES)
    _check_choice("pooling", pooling, POOLINGS)
    if len(filters) != len(kernel_sizes) or not filters:
        raise RecipeError(f"architecture arguments filters {list(filters)} and kernel_sizes {list(kernel_sizes)} "
                          "must be non-empty and of equal length (one entry per conv block). Fix: give one kernel "
                          "size per block.")
    keras = lazy_keras()
    L = keras.layers
    inputs, x = _window_input(keras, input_shape, input_pool)
    pool_layer = L.MaxPooling1D if pooling == "max" else L.AveragePooling1D
    for i, (f, k) in enumerate(zip(filters, kernel_sizes)):
        x = _signed(x, signs, f"block{i}")
        x = L.Conv1D(int(f), int(k), padding="same", name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        if pool > 1 and x.shape[1] >= pool:
            x = pool_layer(pool, name=f"pool{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    x = _head(x, L, signs, head_units, dropout)
    return keras.Model(inputs, L.Dense(num_classes, name="logits")(x), name="har_search_cnn")


def _head(x, L, signs, head_units, dropout):
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    if head_units:
        x = _signed(x, signs, "hidden")
        x = L.Dense(int(head_units), name="hidden")(x)
        x = L.BatchNormalization(name="hidden_bn_a")(x)
        x = L.ReLU(name="hidden_relu")(x)
        x = L.BatchNormalization(name="hidden_bn_b")(x)
    return _signed(x, signs, "head")


@register_architecture
def har_search_mlp(input_shape: Shape = (128, 9), num_classes: int = 6, units: Ints = (64,), signs: str = "split",
                   input_pool: int = 4, dropout: float = 0.0) -> Any:
    """The MLP family searched by `tf_nvm.nas`: a crossbar sees the whole (time-pooled) window.

    Input encoding: digital average pooling over time (``input_pool`` samples per
    step), then Flatten. Per hidden layer: signs (``signs``) -> Dense -> BatchNorm
    (digital) -> ReLU -> BatchNorm (digital). Head: dropout -> signs -> Dense logits.

    Args:
        input_shape: (timesteps, channels) of one window.
        num_classes: number of logits.
        units: units per hidden layer (its length is the depth; may be empty).
        signs: ``"split"`` or ``"bn"`` (`SIGN_SOURCES`).
        input_pool: samples averaged per time step before flattening (1: none).
        dropout: dropout rate before the head.
    """
    _check_choice("signs", signs, SIGN_SOURCES)
    keras = lazy_keras()
    L = keras.layers
    inputs, x = _window_input(keras, input_shape, input_pool)
    x = L.Flatten(name="flatten")(x)
    for i, u in enumerate(units):
        x = _signed(x, signs, f"layer{i}")
        x = L.Dense(int(u), name=f"dense{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = _head(x, L, signs, 0, dropout)
    return keras.Model(inputs, L.Dense(num_classes, name="logits")(x), name="har_search_mlp")


@register_architecture
def cifar_vgg(input_shape: Shape = (32, 32, 3), num_classes: int = 10, filters: Ints = (32, 64, 128),
              convs_per_block: int = 2, batch_norm: bool = True, signs: str | None = None,
              dropout: float = 0.0) -> Any:
    """A VGG-style CIFAR-10 CNN: per block ``convs_per_block`` 3x3 convolutions, then a 2x2 max-pool.

    Each convolution is followed by BatchNorm and ReLU (``batch_norm=True``) or carries its own
    ReLU (``batch_norm=False``). Head: GlobalAveragePooling -> dropout -> Dense logits.

    For unipolar crossbars (``signs``), every crossbar after the first gets signed inputs: ``"split"``
    feeds it ``[x, -x]`` (twice the rows), ``"bn"`` a digital BatchNorm of the previous ReLU (or
    pooling) output (`SIGN_SOURCES`); the first convolution reads the standardised (signed) image,
    split into both signs with ``"split"``.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: number of logits.
        filters: output channels of the convolutions of each block.
        convs_per_block: 3x3 convolutions per block.
        batch_norm: a BatchNormalization after every convolution.
        signs: None (bipolar weights), ``"split"`` or ``"bn"``.
        dropout: dropout rate before the logits (training only).
    """
    if signs is not None:
        _check_choice("signs", signs, SIGN_SOURCES)
    keras = lazy_keras()
    L = keras.layers

    def crossbar_input(x, name, first=False):
        if signs == "bn" and not first:
            return L.BatchNormalization(name=f"{name}_centre")(x)
        return _signed(x, signs, name)

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        for j in range(convs_per_block):
            name = f"conv{i}_{j}"
            x = crossbar_input(x, name, first=(i == 0 and j == 0))
            if batch_norm:
                x = L.Conv2D(f, 3, padding="same", name=name)(x)
                x = L.BatchNormalization(name=f"bn{i}_{j}")(x)
                x = L.ReLU(name=f"relu{i}_{j}")(x)
            else:
                x = L.Conv2D(f, 3, padding="same", activation="relu", name=name)(x)
        x = L.MaxPooling2D(2, name=f"pool{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    outputs = L.Dense(num_classes, name="logits")(crossbar_input(x, "logits"))
    return keras.Model(inputs, outputs, name="cifar_vgg")
