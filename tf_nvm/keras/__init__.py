"""The Keras side of tf_nvm: quantizers, `QuantizeConfig`s and the layer table, NVM layers, `quantize_model`.

Everything here may import TensorFlow (through ``tf_nvm.keras.backend``, the one Keras
shim); nothing here imports ``tf_nvm.experiments``, ``tf_nvm.pipeline`` or ``tf_nvm.cli``.
"""
