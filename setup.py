"""Build script. Metadata, dependencies and the entry point are in setup.cfg.

Here: the packages (found, so a new subpackage needs no edit); the repository's ``recipes/``
folder shipped as package data ``tf_nvm/_recipes/*.json`` (with the experiment recipes of
`tf-nvm run` in ``experiments/*.json``), where `tf_nvm.experiments.recipes.recipes_dir` finds it in an
installed package; and ``searches/`` (architecture-search configs) as ``tf_nvm/_searches/*.json``
(`tf_nvm.nas.config.searches_dir`); and the PEP 561 markers ``tf_nvm/py.typed``, ``tflite_export/py.typed``.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["tf_nvm", "tf_nvm.*", "tflite_export", "tflite_export.*"])
    + ["tf_nvm._recipes", "tf_nvm._searches"],
    package_dir={"tf_nvm._recipes": "recipes", "tf_nvm._searches": "searches"},
    package_data={
        "tf_nvm._recipes": ["*.json", "experiments/*.json"],
        "tf_nvm._searches": ["*.json"],
        "tf_nvm": ["py.typed"],  # PEP 561: the type hints of the public API reach the users' type checkers
        "tf_nvm.mapping": ["mapping.schema.json"],  # the mapping format's JSON Schema (tf_nvm.mapping.json_schema)
        "tflite_export": ["py.typed"],
    },
)
