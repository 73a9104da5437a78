"""Float model builders (architectures) by name, used by recipes and the CLI.

Each builder returns a float tf_keras model; `quantize_model` makes it an NVM
model. Builders are registered in `ARCHITECTURES` (a `tf_nvm.core.registry.Registry`).
Importing this module does not import TensorFlow (each builder does), so
recipes can check architecture names without it.
"""

from tf_nvm.core.registry import Registry

__all__ = ["ARCHITECTURES", "register_architecture", "build", "har_signed_cnn", "har_cnn", "cifar_cnn", "cifar_vgg",
           "har_search_cnn", "har_search_mlp", "SIGN_SOURCES", "POOLINGS", "resnet8", "ds_cnn",
           "fc_autoencoder", "mobilenet_v1"]

ARCHITECTURES = Registry("architecture", fix="use a registered architecture or register a builder with "
                                             "tf_nvm.experiments.models.register_architecture")
"""Architecture name -> builder (keyword arguments -> float tf_keras model)."""


def register_architecture(fn):
    """Decorator: registers a model builder under its function name."""
    return ARCHITECTURES.register(fn)


def build(name, **kwargs):
    """Builds architecture ``name`` with keyword arguments ``kwargs``.

    Raises:
        UnknownNameError: unknown name (the message lists the known ones).
    """
    return ARCHITECTURES.get(name)(**kwargs)


def _keras():
    from tf_nvm.keras.backend import keras  # noqa: PLC0415  (TensorFlow only when a model is built)

    return keras


def _both_signs(x, name):
    """[x, -x] along channels: a unipolar crossbar fed both signs can subtract."""
    L = _keras().layers
    return L.Concatenate(name=f"{name}_pm")([x, L.Rescaling(-1.0, name=f"{name}_neg")(x)])


@register_architecture
def har_signed_cnn(input_shape=(128, 9), num_classes=6, filters=(64, 64), kernel_sizes=(9, 5),
                   pool=2, sign_split=True, dropout=0.0):
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
    keras = _keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="window")
    x = inputs
    for i, (f, k) in enumerate(zip(filters, kernel_sizes)):
        if sign_split:
            x = _both_signs(x, f"block{i}")
        x = L.Conv1D(f, k, padding="same", name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = L.MaxPooling1D(pool, name=f"pool{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = L.GlobalAveragePooling1D(name="gap")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    if sign_split:
        x = _both_signs(x, "head")
    outputs = L.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="har_signed_cnn")


@register_architecture
def har_cnn(input_shape=(128, 9), num_classes=6, filters=(32, 64, 64)):
    """A generic ReLU 1-D CNN (3 conv + 2 dense): a poor unipolar network (no inhibition)."""
    keras = _keras()
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
def cifar_cnn(input_shape=(32, 32, 3), num_classes=10, filters=(32, 64, 128), sign_split=False):
    """A small CIFAR-10 CNN: per block Conv2D -> BatchNorm -> ReLU -> MaxPool."""
    keras = _keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i, f in enumerate(filters):
        if sign_split:
            x = _both_signs(x, f"block{i}")
        x = L.Conv2D(f, 3, padding="same", name=f"conv{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}a")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = L.MaxPooling2D(2, name=f"pool{i}")(x)
        x = L.BatchNormalization(name=f"bn{i}b")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    if sign_split:
        x = _both_signs(x, "head")
    outputs = L.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="cifar_cnn")


SIGN_SOURCES = ("split", "bn")
"""Where a unipolar crossbar's inhibition comes from: ``"split"`` feeds it ``[x, -x]`` (twice the rows);
``"bn"`` feeds it the centred output of a digital BatchNorm only (half the rows; the BatchNorm's signed
gamma flips whole channels)."""
POOLINGS = ("max", "avg")
"""Pooling after each convolution block: ``"max"`` (pass-through) or ``"avg"`` (digital)."""


def _check_choice(name, value, allowed):
    from tf_nvm.core.errors import RecipeError  # noqa: PLC0415

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
    return _both_signs(x, name) if signs == "split" else x


@register_architecture
def har_search_cnn(input_shape=(128, 9), num_classes=6, filters=(64, 64), kernel_sizes=(9, 5), pool=2,
                   pooling="max", signs="split", input_pool=1, head_units=0, dropout=0.0):
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
    from tf_nvm.core.errors import RecipeError  # noqa: PLC0415

    _check_choice("signs", signs, SIGN_SOURCES)
    _check_choice("pooling", pooling, POOLINGS)
    if len(filters) != len(kernel_sizes) or not filters:
        raise RecipeError(f"architecture arguments filters {list(filters)} and kernel_sizes {list(kernel_sizes)} "
                          "must be non-empty and of equal length (one entry per conv block). Fix: give one kernel "
                          "size per block.")
    keras = _keras()
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
def har_search_mlp(input_shape=(128, 9), num_classes=6, units=(64,), signs="split", input_pool=4, dropout=0.0):
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
    keras = _keras()
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
def cifar_vgg(input_shape=(32, 32, 3), num_classes=10, filters=(32, 64, 128), convs_per_block=2, batch_norm=True,
              signs=None, dropout=0.0):
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
    keras = _keras()
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


# ------------------------------------------------------------- MLPerf Tiny reference networks
def _crossbar_input(x, sign_split, name):
    """The input of a crossbar that reads a non-negative tensor (a ReLU output or its pooling): ``[x, -x]``
    when ``sign_split`` (a unipolar crossbar can then subtract), else ``x``."""
    return _both_signs(x, name) if sign_split else x


def _depthwise(x, sign_split, name, **kwargs):
    """A DepthwiseConv2D over ``x``; with ``sign_split`` over both signs, as two crossbars and a digital sum.

    A depthwise crossbar fed ``[x, -x]`` computes per channel ``dw(x, W+) + dw(-x, W-)``. Keras has no layer
    that sums the two halves of a channel axis, so the two halves are two DepthwiseConv2D layers (``name``
    on ``x`` with the bias, ``{name}_neg`` on ``Rescaling(-1)(x)`` without) and an ``Add`` (digital, exact in
    TFLite). Each half's output is requantized on the shared range before the sum (one extra rounding).
    """
    L = _keras().layers
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
def resnet8(input_shape=(32, 32, 3), num_classes=10, filters=16, sign_split=False, softmax=False):
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
    keras = _keras()
    L = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = L.Conv2D(filters, 3, padding="same", name="conv0")(inputs)
    x = L.BatchNormalization(name="bn0")(x)
    x = L.Activation("relu", name="relu0")(x)
    for stack, multiple in enumerate((1, 2, 4), start=1):
        width, stride = filters * multiple, 1 if stack == 1 else 2
        name = f"stack{stack}"
        y = L.Conv2D(width, 3, strides=stride, padding="same",
                     name=f"{name}_conv1")(_crossbar_input(x, sign_split, f"{name}_conv1"))
        y = L.BatchNormalization(name=f"{name}_bn1")(y)
        y = L.Activation("relu", name=f"{name}_relu1")(y)
        y = L.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(_crossbar_input(y, sign_split, f"{name}_conv2"))
        y = L.BatchNormalization(name=f"{name}_bn2")(y)
        if stride != 1:
            x = L.Conv2D(width, 1, strides=stride, padding="same",
                         name=f"{name}_shortcut")(_crossbar_input(x, sign_split, f"{name}_shortcut"))
        x = L.Add(name=f"{name}_add")([x, y])
        x = L.Activation("relu", name=f"{name}_relu")(x)
    pool = int(min(x.shape[1:3]))
    x = L.AveragePooling2D(pool_size=pool, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(_crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="resnet8")


@register_architecture
def ds_cnn(input_shape=(49, 10, 1), num_classes=12, filters=64, blocks=4, sign_split=False, softmax=False):
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
    keras = _keras()
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
        x = L.Conv2D(filters, (1, 1), padding="same", name=f"pw{i}")(_crossbar_input(x, sign_split, f"pw{i}"))
        x = L.BatchNormalization(name=f"pw{i}_bn")(x)
        x = L.Activation("relu", name=f"pw{i}_relu")(x)
    x = L.Dropout(0.4, name="dropout1")(x)
    x = L.AveragePooling2D(pool_size=(int(input_shape[0] / 2), int(input_shape[1] / 2)), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(_crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="ds_cnn")


@register_architecture
def fc_autoencoder(input_dim=640, units=128, bottleneck=8, depth=4, sign_split=False):
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
    keras = _keras()
    L = keras.layers
    inputs = keras.Input((input_dim,), name="features")
    x = inputs
    widths = [units] * depth + [bottleneck] + [units] * depth
    for i, width in enumerate(widths):
        x = L.Dense(width, name=f"dense{i}")(_crossbar_input(x, sign_split and i > 0, f"dense{i}"))
        x = L.BatchNormalization(name=f"bn{i}")(x)
        x = L.Activation("relu", name=f"relu{i}")(x)
    outputs = L.Dense(input_dim, name="reconstruction")(_crossbar_input(x, sign_split, "reconstruction"))
    return keras.Model(inputs, outputs, name="fc_autoencoder")


_MOBILENET_BLOCKS = ((1, 2), (2, 2), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1),
                     (2, 2), (1, 1))
"""MobileNetV1's 13 depthwise separable blocks: (depthwise stride, pointwise filter multiple)."""


@register_architecture
def mobilenet_v1(input_shape=(96, 96, 3), num_classes=2, alpha=0.25, blocks=13, sign_split=False, softmax=False):
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
    keras = _keras()
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
        x = L.Conv2D(filters, 1, padding="same", name=f"pw{i}")(_crossbar_input(x, sign_split, f"pw{i}"))
        x = L.BatchNormalization(name=f"pw{i}_bn")(x)
        x = L.Activation("relu", name=f"pw{i}_relu")(x)
    x = L.AveragePooling2D(pool_size=tuple(int(d) for d in x.shape[1:3]), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    outputs = _softmax_head(_crossbar_input(x, sign_split, "logits"), L, num_classes, softmax)
    return keras.Model(inputs, outputs, name="mobilenet_v1")
