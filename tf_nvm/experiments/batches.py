"""Training batches of a recipe: shuffled, augmented, one endless iterator over all epochs.

`training_data` is what `tf_nvm.experiments.train.train_model` and every search trial
(`tf_nvm.nas.tuners`) fit on, ``steps_per_epoch`` batches per epoch (`steps_per_epoch`).
"""

from typing import Any

import numpy as np

from tf_nvm.experiments.data import Split
from tf_nvm.keras.backend import tf

__all__ = ["training_data", "steps_per_epoch"]


def training_data(recipe: Any, split: Split, repeat: bool = False, epochs_done: int = 0) -> tf.data.Dataset:
    """Shuffled batches of the training part, augmented as the recipe says.

    ``recipe`` is a `Recipe` or anything with ``batch_size``, ``augment_scale`` and
    ``augment_noise`` (e.g. `tf_nvm.nas.Training`); ``augment_crop`` and
    ``augment_flip`` are read when present.

    Augmentation (training only, per example): images are flipped left-right
    (``augment_flip``) and cropped back to their size after zero padding by
    ``augment_crop`` pixels per side, with stateless random ops seeded from a
    random stream of the global seed (reproducible in parallel); every channel is
    multiplied by a gain drawn from N(1, augment_scale^2) and Gaussian noise of
    standard deviation augment_noise (standardised units) is added to every value.
    The gains and noise are drawn once per batch position, with the same values every
    epoch (a new shuffle gives them to other examples); the order and the crops and
    flips are new every epoch.

    Args:
        recipe: see above.
        split: `Split` (``x_train``, ``y_train``).
        repeat: False: one epoch per iteration (a new shuffle each time the data set is
            iterated). True: one endless iterator over all epochs (train with ``steps_per_epoch``
            = `steps_per_epoch`; epochs never mix): no new iterator, shuffle buffer and pipeline
            warm-up between two epochs, and exactly the batches Keras ``fit`` trained on with the
            one-epoch data set. (``fit`` made one iterator before its first epoch and a new one
            for every epoch, so its first epoch was the one-epoch data set's second iteration:
            the endless one starts there too.)
        epochs_done: epochs already trained (a resume): the shuffle and the crops/flips start
            at epoch ``epochs_done``, as an uninterrupted training would have seen them.

    Returns:
        ``tf.data.Dataset`` of ``(x, y)`` batches.
    """
    examples = tf.data.Dataset.from_tensor_slices((split.x_train, split.y_train))
    examples = examples.shuffle(len(split.x_train), reshuffle_each_iteration=True)
    crop, flip = getattr(recipe, "augment_crop", 0), getattr(recipe, "augment_flip", False)
    if crop or flip:
        seeds = tf.data.Dataset.random(rerandomize_each_iteration=True).batch(2)

        def image_augment(example, seed):
            x, y = example
            if flip:
                x = tf.image.stateless_random_flip_left_right(x, seed)
            if crop:
                padded = tf.pad(x, [[crop, crop], [crop, crop], [0, 0]])
                x = tf.image.stateless_random_crop(padded, tf.shape(x), seed + tf.constant([0, 1], tf.int64))
            return x, y
        examples = tf.data.Dataset.zip((examples, seeds)).map(image_augment, num_parallel_calls=tf.data.AUTOTUNE)
    batches = examples.batch(recipe.batch_size)
    for _ in range(epochs_done + int(repeat)):  # a new iterator draws its epoch's shuffle and crop/flip seeds only
        iter(batches)
    data = batches.repeat() if repeat else batches
    if recipe.augment_scale or recipe.augment_noise:
        data = tf.data.Dataset.zip((data, _batch_draws(recipe, split, repeat))).map(
            lambda batch, draws: (batch[0] * draws[0] + draws[1], batch[1]), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def _batch_draws(recipe, split, repeat):
    """Per batch position: the channel gains and the additive noise of one epoch (`training_data`).

    Drawn by stateful random ops in a sequential map, then kept (``cache``): every epoch reuses the
    first epoch's values, as the one-epoch pipeline did by restarting its random kernels on each
    new iterator. ``draw`` creates exactly the ops of that pipeline's augmentation, in its order, so
    the ops get the same seeds from the global seed and draw the same values.
    """
    n, size = len(split.x_train), recipe.batch_size
    sizes = [size] * (n // size) + ([n % size] if n % size else [])
    shape, y_dtype = tuple(np.shape(split.x_train)[1:]), tf.as_dtype(np.asarray(split.y_train[:1]).dtype)

    def template(rows):
        return tf.zeros(tf.concat([[rows], shape], 0), tf.float32), tf.zeros([rows], y_dtype)

    def draw(x, y):  # noqa: ARG001  (the same arguments and ops as the augmentation it reproduces)
        channels = tf.shape(x)[-1]
        gain_shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 2], tf.int32), [channels]], 0)
        gain = 1.0 + recipe.augment_scale * tf.random.normal(gain_shape)
        _ = x * gain  # the op the noise followed: keeps the noise op's seed
        return gain, recipe.augment_noise * tf.random.normal(tf.shape(x))
    # sequential: parallel calls would race for the random kernel's state and make training irreproducible
    draws = tf.data.Dataset.from_tensor_slices(np.asarray(sizes, np.int32)).map(template).map(draw).cache()
    return draws.repeat() if repeat else draws


def steps_per_epoch(recipe: Any, split: Split) -> int:
    """Batches in one epoch of `training_data` (the last one may be smaller)."""
    return int(np.ceil(len(split.x_train) / recipe.batch_size))
