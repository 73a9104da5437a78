"""The MLPerf Tiny reference networks as tf_nvm architectures: ResNet-8, DS-CNN, the FC autoencoder, MobileNetV1.

Each builder follows the published Keras builder of mlcommons/tiny (``benchmark/training/...``) and says
where and why it differs; all are registered in `tf_nvm.experiments.models.ARCHITECTURES` (use them as
``tf_nvm.models.resnet8`` or ``build("resnet8")``). Importing this module does not import TensorFlow.
"""

from collections.abc import Sequence
from typing import Any

from tf_nvm.experiments.architectures import crossbar_input, lazy_keras, register_architecture

__all__ = ["resnet8", "ds_cnn", "fc_autoencoder", "mobilenet_v1"]


def _depthwise(x, sign_split, name, **kwargs):
    """A DepthwiseConv2D over ``x``; with ``sign_split`` over both signs, as two crossbars and a digital sum.

    A depthwise crossbar fed ``[x, -x]`` computes per channel ``dw(x, W+) + dw(-x, W-)``. Keras has no layer
    that sums the two halves of a channel axis, so the two halves are two DepthwiseConv2D layers (``name``
    on ``x`` with the bias, ``{name}_neg`` on ``Rescaling(-1)(x)`` without) and an ``Add`` (digital, exact in
    TFLite). Each half's output is requantized on the shared range before the sum (one extra rounding).
    """
    L = lazy_keras().layers
    positive = L.DepthwiseConv2D(name=name, **kwargs)(x)
    if not sign_split:
        return positive
    negated = L.Rescaling(-1.0, name=f"{name}_neg_input")(x)
    negative = L.DepthwiseConv2D(name=f"{name}_neg", **dict(kwargs, use_bias=False))(negated)
    return L.Add(name=f"{name}_sum")([positive, negative])


def _softmax_head(x, L, num_classes, softmax, name="logits"):
    """The published ``Dense(num_classes, activation="softmax")`` as a crossbar Dense (logits) and, when
    ``softmax``, a separate digital ``Softmax`` layer (a crossbar layer cannot end in a softmax)."""
    logits = L.Dense(num_classes, name=name)(x)
    return L.Softmax(name="softmax")(logits) if softmax else logits


@register_architecture
def resnet8(input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10, filters: int = 16,
            sign_split: bool = False, softmax: bool = False) -> Any:
    """ResNet-8, the MLPerf Tiny image classification reference (``resnet_v1_eembc``).

    Published: ``benchmark/training/image_classification/keras_model.py`` in mlcommons/tiny. Stem
    Conv2D(3x3) -> BatchNorm -> ReLU; three stacks of two 3x3 Conv2D + BatchNorm with an identity (stack 1)
    or 1x1 stride-2 Conv2D (stacks 2, 3) shortcut, ``add`` and ReLU; filters ``filters``, 2x, 4x; stride 2
    at the first conv of stacks 2 and 3; AveragePooling2D over the whole remaining map -> Flatten -> Dense.
    With ``filters=16`` (the benchmark's reference model, 2020-2025) it has 78,666 parameters; the
    repository's current default ``conv_filters=26`` (March 2026) gives 205,306.

    Differences from the published builder, and why:

    * no L2 kernel regulariser (1e-4) and no ``he_normal`` initialiser argument: tf_nvm puts its own kernel
      constraint on every crossbar and ``quantize_model(init="device")`` sets the starting codes; add
      weight decay in the training loop if wanted;
    * the head's ``Dense(activation="softmax")`` is a linear Dense (logits, what tf_nvm's training loss
      expects) followed, with ``softmax=True``, by a separate Softmax layer: a crossbar layer cannot end
      in a softmax;
    * ``sign_split=True`` feeds every crossbar that reads a ReLU output (all but the stem) ``[x, -x]`` so
      that unipolar (non-negative) weights can subtract; the published network is ``sign_split=False``.

    The AveragePooling2D is kept as published.

    Args:
        input_shape: (height, width, channels) of one image; the published 32x32x3 (smaller images work).
        num_classes: number of classes.
        filters: filters of the first stack (16: the reference model; 26: the current default upstream).
        sign_split: feed every crossbar that reads a non-negative tensor both signs ``[x, -x]``.
        softmax: end in a separate Softmax layer (probabilities) instead of the logits.
    """
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(filters, 3, padding="same", name="conv0")(inputs)
    x = L.BatchNormalization(name="bn0")(x)
    x = L.Activation("relu", name="relu0")(x)
    for stack, multiple in enumerate((1, 2, 4), start=1):
        width, stride = filters * multiple, 1 if stack == 1 else 2
        name = f"stack{stack}"
        y = L.Conv2D(width, 3, strides=stride, padding="same",
                     name=f"{name}_conv1")(crossbar_input(x, sign_split, f"{name}_conv1"))
        y = L.BatchNormalization(name=f"{name}_bn1")(y)
        y = L.Activation("relu", name=f"{name}_relu1")(y)
        y = L.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(crossbar_input(y, sign_split, f"{name}_conv2"))
        y = L.BatchNormalization(name=f"{name}_bn2")(y)
        if stride != 1:
            x = L.Conv2D(width, 1, strides=stride, padding="same",
                         name=f"{name}_shortcut")(crossbar_input(x, sign_split, f"{name}_shortcut"))
        x = L.Add(name=f"{name}_add")([x, y])
        x = L.Activation("relu", name=f"{name}_relu")(x)
    pool = int(min(x.shape[1:3]))
    x = L.AveragePooling2D(pool_size=pool, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="resnet8")


@register_architecture
def ds_cnn(input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12, filters: int = 64, blocks: int = 4,
           sign_split: bool = False, softmax: bool = False) -> Any:
    """DS-CNN, the MLPerf Tiny keyword spotting reference (``get_model``, ``model_architecture="ds_cnn"``).

    Published: ``benchmark/training/keyword_spotting/keras_model.py`` in mlcommons/tiny, for 49 frames x 10
    MFCCs (30 ms windows, 20 ms stride, 1 s clips) and 12 labels. Conv2D(64, 10x4, stride 2) -> BatchNorm ->
    ReLU -> Dropout(0.2); four depthwise separable blocks (DepthwiseConv2D 3x3 -> BatchNorm -> ReLU ->
    Conv2D 1x1 -> BatchNorm -> ReLU); Dropout(0.4) -> AveragePooling2D(pool ``(h // 2, w // 2)`` of the
    input, as published) -> Flatten -> Dense. 24,908 parameters at the published shape.

    Differences from the published builder, and why: no L2 kernel regulariser (see `resnet8`); the head's
    softmax is a separate Softmax layer with ``softmax=True`` (else logits; see `resnet8`);
    ``sign_split=True`` feeds every crossbar after the first convolution both signs of its ReLU input,
    the depthwise layers as two DepthwiseConv2D (``x`` and ``-x``) and a digital Add (see `_depthwise`).
    The AveragePooling2D is kept as published.

    Args:
        input_shape: (frames, coefficients, 1); the published (49, 10, 1).
        num_classes: number of labels (published: 12).
        filters: channels of every convolution (published: 64).
        blocks: depthwise separable blocks (published: 4).
        sign_split: feed every crossbar that reads a non-negative tensor both signs.
        softmax: end in a separate Softmax layer instead of the logits.
    """
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="mfcc")
    x = L.Conv2D(filters, (10, 4), strides=(2, 2), padding="same", name="conv0")(inputs)
    x = L.BatchNormalization(name="bn0")(x)
    x = L.Activation("relu", name="relu0")(x)
    x = L.Dropout(0.2, name="dropout0")(x)
    for i in range(1, blocks + 1):
        x = _depthwise(x, sign_split, f"dw{i}", kernel_size=(3, 3), padding="same")
        x = L.BatchNormalization(name=f"dw{i}_bn")(x)
        x = L.Activation("relu", name=f"dw{i}_relu")(x)
        x = L.Conv2D(filters, (1, 1), padding="same", name=f"pw{i}")(crossbar_input(x, sign_split, f"pw{i}"))
        x = L.BatchNormalization(name=f"pw{i}_bn")(x)
        x = L.Activation("relu", name=f"pw{i}_relu")(x)
    x = L.Dropout(0.4, name="dropout1")(x)
    x = L.AveragePooling2D(pool_size=(int(input_shape[0] / 2), int(input_shape[1] / 2)), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="ds_cnn")


@register_architecture
def fc_autoencoder(input_dim: int = 640, units: int = 128, bottleneck: int = 8, depth: int = 4,
                   sign_split: bool = False) -> Any:
    """The MLPerf Tiny anomaly detection reference: a fully connected autoencoder (``get_model``).

    Published: ``benchmark/training/anomaly_detection/keras_model.py`` in mlcommons/tiny, for 640 inputs
    (5 frames x 128 log-mel bands): ``depth`` x (Dense(``units``) -> BatchNorm -> ReLU), Dense(``bottleneck``)
    -> BatchNorm -> ReLU, ``depth`` x (Dense(``units``) -> BatchNorm -> ReLU), Dense(``input_dim``), linear
    (a regression network: train it with an MSE loss on its own input). 269,992 parameters at the published
    size.

    Differences from the published builder: ``sign_split=True`` feeds every Dense after the first both
    signs of its ReLU input (a unipolar crossbar can then subtract); the published network is
    ``sign_split=False``. Nothing else.

    Args:
        input_dim: features per example (published: 640).
        units: units of the hidden layers (published: 128).
        bottleneck: units of the code layer (published: 8).
        depth: hidden layers on each side of the code (published: 4).
        sign_split: feed every crossbar that reads a non-negative tensor both signs.
    """
    keras = lazy_keras()
    L = keras.layers
    inputs = keras.Input((input_dim,), name="features")
    x = inputs
    widths = [units] * depth + [bottleneck] + [units] * depth
    for i, width in enumerate(widths):
        x = L.Dense(width, name=f"dense{i}")(crossbar_input(x, sign_split and i > 0, f"dense{i}"))
        x = L.BatchNormalization(name=f"bn{i}")(x)
        x = L.Activation("relu", name=f"relu{i}")(x)
    outputs = L.Dense(input_dim, name="reconstruction")(crossbar_input(x, sign_split, "reconstruction"))
    return keras.Model(inputs, outputs, name="fc_autoencoder")


_MOBILENET_BLOCKS = ((1, 2), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1),
                     (2, 2), (1, 1))
"""MobileNetV1's 13 depthwise separable blocks: (depthwise stride, pointwise filter multiple)."""


@register_architecture
def mobilenet_v1(input_shape: Sequence[int] = (96, 96, 3), num_classes: int = 2, alpha: float = 0.25,
                 blocks: int = 13, sign_split: bool = False, softmax: bool = False) -> Any:
    """MobileNetV1, the MLPerf Tiny visual wake words reference (``mobilenet_v1``, alpha 0.25, 96x96).

    Published: ``benchmark/training/visual_wake_words/vww_model.py`` in mlcommons/tiny (after Silicon Labs'
    ``mobilenet_v1_eembc``): Conv2D(``32*alpha``, 3x3, stride 2) -> BatchNorm -> ReLU; 13 depthwise separable
    blocks (DepthwiseConv2D 3x3 -> BatchNorm -> ReLU -> Conv2D 1x1 -> BatchNorm -> ReLU; strides 1,2,1,2,1,
    2,1,1,1,1,1,2,1; the pointwise filters doubling after each stride-2 block but the sixth, up to
    ``1024*alpha``); AveragePooling2D over the whole remaining map -> Flatten -> Dense. 221,794 parameters
    at the published size (alpha 0.25, 96x96x3, 2 classes).

    Differences from the published builder, and why: no L2 kernel regulariser (see `resnet8`); the head's
    softmax is a separate Softmax layer with ``softmax=True`` (else logits); ``blocks`` < 13 truncates the
    network (for quick tests; the published one is 13); ``sign_split=True`` feeds every
    crossbar after the stem both signs of its ReLU input, the depthwise layers as two DepthwiseConv2D and a
    digital Add (see `_depthwise`). The AveragePooling2D is kept as published.

    Args:
        input_shape: (height, width, 3); the published 96x96x3 (32x32 works: the map ends at 1x1).
        num_classes: number of classes (published: 2, person / no person).
        alpha: width multiplier (published: 0.25, 8 stem filters).
        blocks: the first ``blocks`` of the 13 depthwise separable blocks (published: 13; fewer for quick
            tests).
        sign_split: feed every crossbar that reads a non-negative tensor both signs.
        softmax: end in a separate Softmax layer instead of the logits.
    """
    keras = lazy_keras()
    L = keras.layers
    filters = int(32 * alpha)
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(filters, 3, strides=2, padding="same", name="conv0")(inputs)
    x = L.BatchNormalization(name="bn0")(x)
    x = L.Activation("relu", name="relu0")(x)
    for i, (stride, multiple) in enumerate(_MOBILENET_BLOCKS[:blocks], start=1):
        x = _depthwise(x, sign_split, f"dw{i}", kernel_size=3, strides=stride, padding="same")
        x = L.BatchNormalization(name=f"dw{i}_bn")(x)
        x = L.Activation("relu", name=f"dw{i}_relu")(x)
        filters *= multiple
        x = L.Conv2D(filters, 1, padding="same", name=f"pw{i}")(crossbar_input(x, sign_split, f"pw{i}"))
        x = L.BatchNormalization(name=f"pw{i}_bn")(x)
        x = L.Activation("relu", name=f"pw{i}_relu")(x)
    x = L.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="mobilenet_v1")
