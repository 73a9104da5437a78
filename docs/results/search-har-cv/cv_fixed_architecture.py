"""Scores one fixed architecture with the cross-validated trial of a search (3 subject folds), as a search would.

Usage (from the repository root; about 3 min for a 3-tile network, 7 min for the hand-made one on 2 cores):

    python3 docs/results/search-har-cv/cv_fixed_architecture.py OUTDIR EPOCHS RECIPE

RECIPE is a recipe name (e.g. har-2bit-unipolar, the hand-made network) or a recipe .json (e.g. a search's
best_recipe.json); EPOCHS replaces the search config's epochs per fold. Prints the trial's nvm_trial.json
(``fold_val_accuracies``: the best validation accuracy of each fold).
"""
import dataclasses
import json
import sys

from tf_nvm import models, recipes
from tf_nvm.data import subject_folds
from tf_nvm.nas import config as search_config
from tf_nvm.nas.tuners import TUNERS

out, epochs, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = search_config.load("har-2bit-unipolar-search-cv")
training = dataclasses.replace(config.training, epochs=epochs)
folds = subject_folds(config.base_recipe(), config.training.folds)
recipe = recipes.load(name)
tuner = TUNERS.get("random")(lambda hp: models.build(recipe.architecture, **recipe.architecture_args),
                             spec=config.spec, training=training, init=config.init, seed=0, directory=out,
                             project_name="p", overwrite=True, max_trials=1)
tuner.search(folds)
trial = next(iter(tuner.oracle.trials.values()))
with open(f"{out}/p/trial_{trial.trial_id}/nvm_trial.json", encoding="utf-8") as f:
    print(json.dumps(json.load(f)))
