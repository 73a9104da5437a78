"""Foundations of tf_nvm: errors, registries, safe file reading and writing, the NVM spec, tables and plots.

Nothing here imports TensorFlow, tf_keras or tfmot, nor any module of ``tf_nvm.keras``
(pinned by ``tests/test_layering.py``); ``tf_nvm.mapping`` and ``tf_nvm.cost`` build on it
alone.
"""
