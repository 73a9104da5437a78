"""One tf.data iterator over all epochs (`training_data(repeat=True)` + ``steps_per_epoch``) sees exactly the
batches of the one-iterator-per-epoch pipeline it replaced, trains the same weights, and a resume carries on
with the epochs an uninterrupted training would have seen. Tiny data, a few seconds."""

import numpy as np
import pytest

from tf_nvm.keras.backend import keras, tf
from tf_nvm.experiments.data import Split
from tf_nvm.experiments.recipes import Recipe
from tf_nvm.experiments.train import steps_per_epoch, train_model, training_data

EPOCHS = 3


def _previous_training_data(recipe, split):
    """`training_data` as it was before the single iterator (commit d7f0579), kept as the reference."""
    data = tf.data.Dataset.from_tensor_slices((split.x_train, split.y_train))
    data = data.shuffle(len(split.x_train), reshuffle_each_iteration=True)
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
        data = tf.data.Dataset.zip((data, seeds)).map(image_augment, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(recipe.batch_size)
    if recipe.augment_scale or recipe.augment_noise:
        def augment(x, y):
            channels = tf.shape(x)[-1]
            gain_shape = tf.concat([tf.shape(x)[:1], tf.ones([tf.rank(x) - 2], tf.int32), [channels]], 0)
            gain = 1.0 + recipe.augment_scale * tf.random.normal(gain_shape)
            return x * gain + recipe.augment_noise * tf.random.normal(tf.shape(x)), y
        data = data.map(augment)
    return data.prefetch(tf.data.AUTOTUNE)


RECIPES = {
    "crop-flip-gain-noise": Recipe(name="c", dataset="cifar10", architecture="cifar_vgg", spec="paper-4bit-bipolar",
                                   batch_size=4, epochs=2, learning_rate=0.01, augment_crop=1, augment_flip=True,
                                   augment_scale=0.1, augment_noise=0.2),
    "crop-flip": Recipe(name="c", dataset="cifar10", architecture="cifar_vgg", spec="paper-4bit-bipolar",
                        batch_size=4, epochs=2, learning_rate=0.01, augment_crop=1, augment_flip=True),
}


def _split(n=10):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6, 6, 2)).astype(np.float32)
    y = np.arange(n) % 3
    return Split(x, y, x[:4], y[:4], x[:4], y[:4], None, "test")


def _epochs(data, epochs, steps=None):
    """[[(x, y) per batch] per epoch]: a new iterator per epoch (steps None), or one iterator for all."""
    if steps is None:
        return [[(x.numpy(), y.numpy()) for x, y in data] for _ in range(epochs)]
    it = iter(data)
    return [[tuple(t.numpy() for t in next(it)) for _ in range(steps)] for _ in range(epochs)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_one_iterator_over_all_epochs_sees_the_batches_fit_saw_with_one_iterator_per_epoch(name):
    recipe, split = RECIPES[name], _split()
    steps = steps_per_epoch(recipe, split)
    keras.utils.set_random_seed(0)
    before = _epochs(_previous_training_data(recipe, split), EPOCHS + 2)
    # Keras fit made an iterator of the one-epoch data set before its first epoch, then a new one per epoch:
    # it trained on iterations 1, 2, ... (the weights test below checks it through fit)
    keras.utils.set_random_seed(0)
    repeated = _epochs(training_data(recipe, split, repeat=True), EPOCHS, steps)
    _assert_same(repeated, before[1:EPOCHS + 1])
    keras.utils.set_random_seed(0)
    _assert_same(_epochs(training_data(recipe, split), EPOCHS), before[:EPOCHS])  # one epoch per iteration
    assert [len(epoch) for epoch in repeated] == [3] * EPOCHS and len(repeated[0][-1][1]) == 2  # 4 + 4 + 2
    assert not np.array_equal(repeated[0][0][1], repeated[1][0][1])  # a new order every epoch
    # a resume after epoch 1 starts with the order, crops and flips of epoch 2, not with those of epoch 1 again
    keras.utils.set_random_seed(0)
    _assert_same(_epochs(training_data(recipe, split, repeat=True, epochs_done=1), EPOCHS, steps),
                 before[2:EPOCHS + 2])


def _tiny_model():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_training_on_one_iterator_gives_the_weights_of_one_iterator_per_epoch():
    recipe, split = RECIPES["crop-flip-gain-noise"], _split()
    weights = []
    for repeat in (False, True):
        keras.utils.set_random_seed(0)
        model = _tiny_model()
        model.compile(keras.optimizers.Adam(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        if repeat:
            model.fit(training_data(recipe, split, repeat=True), epochs=2,
                      steps_per_epoch=steps_per_epoch(recipe, split), verbose=0)
        else:
            model.fit(_previous_training_data(recipe, split), epochs=2, verbose=0)
        weights.append(model.get_weights())
    for before, after in zip(*weights):
        np.testing.assert_array_equal(before, after)


class _Killed(Exception):
    pass


class _KillAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise _Killed


def test_a_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    recipe, split = RECIPES["crop-flip-gain-noise"].replace(epochs=3), _split()

    def train(folder, callbacks=()):
        keras.utils.set_random_seed(0)
        model = _tiny_model()
        result = train_model(model, recipe, split, verbose=0, callbacks=callbacks,
                             progress=(folder, {"kind": "float", "seed": 0}))
        return model, result

    whole, _ = train(tmp_path / "whole")
    with pytest.raises(_Killed):
        train(tmp_path / "cut", callbacks=[_KillAfterEpoch()])
    resumed, result = train(tmp_path / "cut")
    assert result["resumed_after"] == 1
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
