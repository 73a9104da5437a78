"""Build script. Metadata, dependencies and the entry point are in setup.cfg.

Here: the packages (found, so a new subpackage needs no edit), and the
repository's ``recipes/`` folder shipped as package data ``tf_nvm/_recipes/*.json``,
where `tf_nvm.recipes.recipes_dir` finds it in an installed package.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["tf_nvm", "tf_nvm.*", "tflite_export", "tflite_export.*"]) + ["tf_nvm._recipes"],
    package_dir={"tf_nvm._recipes": "recipes"},
    package_data={"tf_nvm._recipes": ["*.json"]},
)
