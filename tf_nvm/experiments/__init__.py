"""The experiment layer: recipes, data preparation, architectures, training runs and their resumable progress.

Builds on ``tf_nvm.core`` and ``tf_nvm.keras``; used by ``tf_nvm.nas``, ``tf_nvm.pipeline``
and ``tf_nvm.cli``.
"""
