"""Quick start: quantize a float Keras model for 2-bit unipolar crossbars, fit it on HAR, read its device codes.

Run: python examples/quickstart.py
"""

import numpy as np

import tf_nvm  # first: puts TensorFlow in legacy-Keras (tf_keras) mode
import tf_keras as keras          # Keras 2, the Keras tfmot works with

(x_train, y_train), (x_test, y_test) = tf_nvm.datasets.load_har()
standardisation = tf_nvm.preprocessing.Standardization.fit(x_train)   # per channel, training part only
x_train, x_test = standardisation.apply(x_train), standardisation.apply(x_test)

# A float model whose crossbars see signed inputs (both signs [x, -x]) so that
# non-negative weights can still subtract.
float_model = tf_nvm.models.build("har_signed_cnn", filters=(32,), kernel_sizes=(9,))
model = tf_nvm.quantize_model(float_model, "paper-2bit-unipolar", init="device")
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(x_train, y_train, epochs=5, batch_size=64, validation_split=0.1, verbose=2)
print("test accuracy:", model.evaluate(x_test, y_test, verbose=0)[1])

for name, layer in tf_nvm.weight_codes(model).items():
    print(f"{name}: codes {layer.codes.shape} in [{layer.codes.min()}, {layer.codes.max()}], "
          f"scale {layer.scale:.5f}, histogram {np.bincount(layer.codes.ravel() - layer.code_min)}")
