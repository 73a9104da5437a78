"""`tf-nvm run`: experiment recipes checked field by field, one tiny experiment end to end, resumed and reused."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

import tf_nvm
from tf_nvm import PipelineError, pipeline
from tf_nvm.pipeline import experiment as experiments
from tf_nvm.pipeline.report import RUNTIME_COLUMNS


def _recipe(**changes):
    data = {"name": "tiny", "description": "one variant, one epoch", "dataset": "har",
            "variants": ["har-2bit-unipolar"], "seeds": [0], "epochs": 1,
            "simulation": {"preset": "pcm-like", "t_inference": 3600.0, "chips": 2, "read_noise": "per-chip",
                           "examples": 300, "sweep_t_inference": [3600.0, 86400.0]},
            "cost": {"technology": "isaac-32nm", "array_sizing": "fit"}, "export_examples": 300,
            "quick": {"epochs": 1}, "paper": {"2-bit unipolar accuracy": 0.9291}}
    data.update(changes)
    return data


def test_bundled_experiment_loads_and_quick_mode_applies():
    assert "paper-har" in pipeline.names()
    paper = pipeline.load("paper-har")
    assert paper.variants == ("har-4bit-bipolar", "har-2bit-bipolar", "har-2bit-unipolar", "har-2bit-unipolar-searched")
    quick = paper.quick_version()
    assert quick.seeds == (0,) and quick.epochs == 3 and quick.simulation.chips == 3
    assert paper.training_recipe("har-2bit-unipolar").seeds == (0, 1, 2)


@pytest.mark.parametrize("changes, message", [
    ({"colour": "red"}, r"unknown field\(s\) \['colour'\]; allowed: \["),
    ({"epochs": -1}, r"epochs must be an integer >= 1 or null, got -1"),
    ({"epochs": "3"}, r"epochs must be an integer >= 1 or null, got '3'"),
    ({"seeds": []}, r"seeds must be a non-empty list of integers >= 0, got \[\]"),
    ({"variants": ["har-9bit"]}, r"variants must be training recipes among \["),
    # the name names the output folder runs/<name>: a path in it would write outside the working folder
    ({"name": "../../ESCAPED_EXP"}, r"name must be 1-64 letters, digits, '\.', '_' or '-' starting with a letter or "
                                    r"digit \(it names the output folder runs/<name>\), got '\.\./\.\./ESCAPED_EXP'"),
    ({"name": "/tmp/abs"}, r"name must be 1-64 letters, .*got '/tmp/abs'\. Fix: "),
    ({"name": ".hidden"}, r"name must be 1-64 letters, .*got '\.hidden'"),
    ({"dataset": "mnist"}, r"dataset must be one of \['cifar10', 'har', 'npz'\], got 'mnist'"),
    ({"dataset": "cifar10"}, r"variants must be training recipes of dataset 'cifar10' \(one data set per "
                             r"experiment\), got \['har-2bit-unipolar'\]"),
    ({"simulation": {"chips": 0}}, r"simulation.chips must be an integer >= 1, got 0"),
    ({"simulation": {"preset": "dram"}}, r"simulation.preset must be one of \["),
    ({"simulation": {"speed": 1}}, r"simulation has unknown field\(s\) \['speed'\]"),
    ({"cost": {"array_sizing": "huge"}}, r"cost.array_sizing must be 'fixed' or 'fit', got 'huge'"),
    ({"quick": {"epochs": 0}}, r"quick.epochs must be an integer >= 1, got 0"),
    ({"export_examples": 0}, r"export_examples must be an integer >= 1 or null, got 0"),
    ({"targets": {"8bit": 0.9}}, r"targets must be labelled 'float', '<b>-bit unipolar\|bipolar' or '<b>-bit "
                                 r"unipolar\|bipolar vs float', got '8bit'"),
    ({"targets": {"4-bit bipolar vs float": 0.01}}, r"targets\['4-bit bipolar vs float'\] must be a difference to "
                                                    r"the float baseline in -1..0, got 0.01"),
    ({"targets": {"float": 1.5}}, r"targets\['float'\] must be an accuracy in 0..1, got 1.5"),
    ({"notes": {"float": 3}}, r"notes must be an object of \{'float' or '<b>-bit unipolar\|bipolar': text\}"),
])
def test_invalid_experiment_recipes_are_named_errors(changes, message):
    with pytest.raises(PipelineError, match=message):
        experiments.from_dict(_recipe(**changes), where="experiment recipe x.json")


def test_unknown_experiment_and_bad_json_are_named(tmp_path):
    with pytest.raises(PipelineError, match=r"experiment recipe 'paper-mnist' not found .* Known experiment recipes: "
                                            r"\['paper-cifar10', 'paper-har'\]"):
        pipeline.load("paper-mnist")
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(PipelineError, match=r"bad.json is not valid JSON"):
        pipeline.load(str(bad))


@pytest.mark.slow
def test_a_tiny_experiment_end_to_end_then_reused_and_resumed(tmp_path, capsys):
    from tf_nvm.cli import main  # noqa: PLC0415

    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps(_recipe(seeds=[0, 1])))
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    report = out / "report"
    for name in ("report.md", "report.html", "accuracy.csv", "accuracy.md", "paper.csv", "cost.csv",
                 "crossbar_vs_mcu.csv",
                 "accuracy.png", "accuracy_vs_time.png", "levels.png", "crossbar_vs_mcu.png", "periphery_area.png",
                 "periphery_energy.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    first = json.loads((report / "report.json").read_text())
    row = first["tables"]["accuracy"][0]
    assert row[RUNTIME_COLUMNS["litert"]] == 0 and row[RUNTIME_COLUMNS["tflm"]] == 0
    assert row["simulator vs evaluator differing"] == 0 and row["chips"] == 2
    assert 0.0 <= row["crossbar pcm-like acc % (mean)"] <= 100.0
    capsys.readouterr()
    # the follow-on commands take the experiment folder (one variant: no --variant needed), the variant's folder,
    # or --variant; cost prints the report's numbers for the variant (its technology, its own .tflite and arena)
    variant = out / "variants" / "har-2bit-unipolar"
    assert main(["cost", str(out), "--out", str(tmp_path / "cost")]) == 0
    printed = capsys.readouterr().out
    cost = json.loads((tmp_path / "cost" / "results.json").read_text())
    table = first["tables"]["cost"][0]
    as_mapped = cost["summary"][0]
    assert cost["variant"] == "har-2bit-unipolar" and as_mapped["scenario"].startswith("as mapped")
    same = pytest.approx  # report.json's tables pass through pandas' to_json, which keeps 10 significant digits
    assert (as_mapped["total_area_mm2"], as_mapped["total_energy_nj"], as_mapped["latency_us"]) == same(
        (table["total area mm^2"], table["energy per inference nJ"], table["latency us"]), rel=1e-9)
    mcu = {r["platform"]: r for r in first["tables"]["crossbar_vs_mcu"]}
    assert len(cost["mcu"]) == 2
    for core, totals in cost["mcu"].items():
        assert (totals["energy_nj"], totals["latency_us"]) == same((mcu[core]["energy per inference nJ"],
                                                                    mcu[core]["latency us"]), rel=1e-9)
    assert f"{table['total area mm^2']:.4f} mm^2" in printed and "results: " in printed.splitlines()[-1]
    assert main(["cost", str(variant), "--out", str(tmp_path / "cost2")]) == 0
    assert json.loads((tmp_path / "cost2" / "results.json").read_text())["summary"] == cost["summary"]
    assert main(["inspect", str(out), "--variant", "har-2bit-unipolar"]) == 0
    assert main(["cost", str(out), "--variant", "har-9bit", "--out", str(tmp_path / "cost3")]) == 2
    assert re.search(r"is a `tf-nvm run` experiment folder of 1 variant\(s\) \['har-2bit-unipolar'\]; got --variant "
                     r"'har-9bit'\. Fix: pass --variant with one of them", capsys.readouterr().err)
    # a rerun reuses every step; an interrupted run (here: the cost marker and the report gone) redoes only the rest
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier, reused") == 4
    os.remove(out / "variants" / "har-2bit-unipolar" / "steps" / "cost.json")
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("done earlier, reused") == 3 and "cost finished" in text
    assert json.loads((report / "report.json").read_text()) == first  # every non-timing field equal
    # report-only fields (targets, notes, paper, description) may change: nothing is redone, the report is rebuilt
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(_recipe(seeds=[0, 1], targets={"2-bit unipolar": 0.999,
                                                                 "2-bit unipolar vs float": -0.0},
                                          notes={"2-bit unipolar": "A note for the test."})))
    assert main(["run", str(changed), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier, reused") == 4
    text = (report / "report.md").read_text()
    assert "- har-2bit-unipolar: " in text and "against the target 99.90 %" in text and "A note for the test." in text
    assert "| har-2bit-unipolar (2-bit unipolar) minus its float baseline |" in text
    times = text[text.index("Training time per model"):]
    row = next(line for line in times.splitlines() if line.startswith("| har-2bit-unipolar |"))
    assert all(float(cell) >= 0 for cell in row.strip("| ").split(" | ")[1:]), row  # recorded: no blank cell
    assert re.search(r"Whole recipe: \d+\.\d h recorded \(\d+\.\d h with every training at its median epoch\)",
                     text)
    assert main(["run", str(recipe), "--out", str(out)]) == 0  # back to the first report fields
    capsys.readouterr()
    assert json.loads((report / "report.json").read_text()) == first
    # a variant's training recipe changed after it trained: refused, naming the variant; once its folder is
    # deleted, the changed recipe is accepted (only that variant would train again)
    record = json.loads((out / "experiment.json").read_text())
    record["recipes"]["har-2bit-unipolar"]["learning_rate"] = 0.5
    (out / "experiment.json").write_text(json.dumps(record))
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    assert "variant(s) ['har-2bit-unipolar'] were trained with another version of their training recipe. Fix: " \
           "delete " in capsys.readouterr().err
    from tf_nvm.pipeline.steps import prepare_output  # noqa: PLC0415

    prepare_output(str(out), experiments.load(str(recipe)), False, retrain=True)  # --force train accepts it
    assert json.loads((out / "experiment.json").read_text())["recipes"]["har-2bit-unipolar"]["learning_rate"] == 0.002
    record["recipes"]["har-2bit-unipolar"]["learning_rate"] = 0.002
    (out / "experiment.json").write_text(json.dumps(record))
    # the same folder with another experiment, or other settings, is refused
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_recipe(name="other")))
    assert main(["run", str(other), "--out", str(out)]) == 2
    assert "holds a run of experiment 'tiny', not 'other'" in capsys.readouterr().err
    assert main(["run", str(recipe), "--out", str(out), "--quick"]) == 2
    assert "with other settings" in capsys.readouterr().err
    # a folder recorded before a field existed continues: the field takes its default (here cost.array_sizing
    # "fit", as recorded) ...
    record = json.loads((out / "experiment.json").read_text())
    del record["experiment"]["cost"]["array_sizing"]
    (out / "experiment.json").write_text(json.dumps(record))
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier, reused") == 4
    # ... but not when the experiment now sets it to something else (export_examples is 300, its default None)
    record = json.loads((out / "experiment.json").read_text())
    del record["experiment"]["export_examples"]
    (out / "experiment.json").write_text(json.dumps(record))
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    assert "with other settings" in capsys.readouterr().err
    record["experiment"]["export_examples"] = 300
    (out / "experiment.json").write_text(json.dumps(record))
    assert main(["run", str(recipe), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done earlier, reused") == 4
    assert main(["run", str(recipe), "--out", str(out), "--force", "fit"]) == 2
    assert "--force must be one of ['train', 'export', 'simulate', 'cost'], got 'fit'" in capsys.readouterr().err
    # a step made by other tf_nvm code (another version in its marker) is stale: refused, naming it; --force from
    # that step redoes it and every later one, and reuses what came before
    marker = out / "variants" / "har-2bit-unipolar" / "steps" / "simulate.json"
    old = json.loads(marker.read_text())
    assert old["tf_nvm_version"] == tf_nvm.__version__ and "git_commit" in old and "git_dirty" in old
    marker.write_text(json.dumps(dict(old, tf_nvm_version="0.1.0")))
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    assert re.search(r"holds steps made by other tf_nvm code \(har-2bit-unipolar/simulate: made by tf_nvm 0\.1\.0"
                     r"( \(commit [0-9a-f]{12}\))?, this is tf_nvm " + re.escape(tf_nvm.__version__) + r".*\)\; "
                     r"reusing them would mix results of two versions in one report\. Fix: pass --force simulate",
                     capsys.readouterr().err)
    assert main(["run", str(recipe), "--out", str(out), "--force", "simulate"]) == 0
    text = capsys.readouterr().out
    assert text.count("done earlier, reused") == 2 and "simulate finished" in text and "cost finished" in text
    assert json.loads(marker.read_text())["tf_nvm_version"] == tf_nvm.__version__
    # an export/model.tflite swapped after the export: the cost step refuses it (its recorded sha256)
    tflite = out / "variants" / "har-2bit-unipolar" / "export" / "model.tflite"
    original = tflite.read_bytes()
    tflite.write_bytes(original + b"\0" * 16)
    assert main(["run", str(recipe), "--out", str(out), "--force", "cost"]) == 2
    assert re.search(r"model\.tflite: sha256 [0-9a-f]{16}\.\.\. is not the [0-9a-f]{16}\.\.\. its export recorded",
                     capsys.readouterr().err)
    tflite.write_bytes(original)
    # killed (SIGKILL) while training seed 1: the rerun reuses seed 0, trains seed 1, and its report equals `first`
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "tf_nvm.cli", "run", str(recipe), "--out", str(killed)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "seed 1: float baseline" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=120)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL, "".join(seen)[-3000:]
    folder = killed / "variants" / "har-2bit-unipolar"
    assert (folder / "seed0" / "result.json").is_file() and not (folder / "seed1" / "result.json").exists()
    assert not (folder / "steps" / "train.json").exists() and not (killed / "report").exists()
    assert main(["run", str(recipe), "--out", str(killed)]) == 0
    text = capsys.readouterr().out
    assert "har-2bit-unipolar seed 0: trained earlier, reused" in text and "seed 0: float baseline" not in text
    assert "har-2bit-unipolar seed 1: float baseline" in text
    assert json.loads((killed / "report" / "report.json").read_text()) == first  # every non-timing field equal


@pytest.mark.slow
def test_a_tiny_cifar10_experiment_end_to_end(tmp_path):
    """CIFAR-10 through `tf-nvm run` (a bundled unipolar VGG recipe, one epoch) on a generated image folder in the
    CIFAR-10 layout, so the test needs no download and stays well under a minute."""
    from conftest import synthetic_cifar_folder  # noqa: PLC0415
    from tf_nvm.cli import main  # noqa: PLC0415

    images = synthetic_cifar_folder(tmp_path / "cifar10", per_class=20, test_per_class=10)
    recipe = tmp_path / "tiny-cifar.json"
    recipe.write_text(json.dumps(_recipe(name="tiny-cifar", dataset="cifar10", variants=["cifar10-2bit-unipolar"],
                                         simulation={"chips": 2, "examples": 100, "sweep_t_inference": [3600.0]},
                                         export_examples=100,
                                         targets={"float": 0.85, "2-bit unipolar vs float": -0.02}, paper={})))
    out = tmp_path / "out"
    assert main(["run", str(recipe), "--out", str(out), "--data", str(images), "--quiet"]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    row = report["tables"]["accuracy"][0]
    assert row["variant"] == "cifar10-2bit-unipolar" and row["chips"] == 2
    assert row[RUNTIME_COLUMNS["litert"]] == 0 and row[RUNTIME_COLUMNS["tflm"]] == 0
    assert row["simulator vs evaluator differing"] == 0
    quantities = [r["quantity"] for r in report["tables"]["paper"]]
    assert "cifar10-2bit-unipolar (2-bit unipolar) minus its float baseline" in quantities
    assert (out / "report" / "levels.png").read_bytes()[:4] == b"\x89PNG"


def test_whole_recipe_time_counts_a_shared_float_baseline_once(tmp_path):
    from tf_nvm.pipeline.report_tables import recipe_hours  # noqa: PLC0415

    base = {"architecture": "cifar_vgg", "epochs": 4, "seeds": [0]}
    recipes = {"a": {**base, "name": "a", "spec": "paper-4bit-bipolar"},
               "b": {**base, "name": "b", "spec": "paper-2bit-bipolar"},  # shares a's float baseline
               "c": {**base, "name": "c", "spec": "paper-2bit-unipolar", "architecture_args": {"signs": "split"}}}
    found = {}
    for name, recipe in recipes.items():
        (tmp_path / name).mkdir()
        float_result = {"seconds": 1000.0, "epoch_seconds": [100.0, 90.0, 500.0, 110.0]}  # paused in epoch 3
        found[name] = {"folder": str(tmp_path / name), "recipe": recipe,
                       "metrics": {"seeds": [{"seed": 0, "float": float_result, "nvm": {"seconds": 720.0}}]}}
    recorded, median = recipe_hours(found)
    # floats: a (shared with b) and c; NVM models: a, b, c (no epoch times recorded: their seconds)
    assert recorded == pytest.approx((2 * 1000 + 3 * 720) / 3600)
    assert median == pytest.approx((2 * 4 * 105 + 3 * 720) / 3600)


def test_float_target_is_checked_once_per_distinct_float_baseline(tmp_path):
    """Variants sharing a float baseline give one row; another architecture gives its own (no mean hides it)."""
    import types  # noqa: PLC0415

    from tf_nvm.pipeline.report_tables import paper_table  # noqa: PLC0415
    from tf_nvm.pipeline.report_text import explanations  # noqa: PLC0415

    base = {"architecture": "cifar_vgg", "epochs": 4, "seeds": [0]}
    variants = {"a": ({**base, "name": "a", "spec": "paper-4bit-bipolar"}, 4, False, 0.84),
                "b": ({**base, "name": "b", "spec": "paper-2bit-bipolar"}, 2, False, 0.84),  # shares a's float
                "c": ({**base, "name": "c", "spec": "paper-4bit-unipolar", "architecture_args": {"signs": "split"}},
                      4, True, 0.86)}
    found = {}
    for name, (recipe, bits, unipolar, float_accuracy) in variants.items():
        found[name] = {"folder": str(tmp_path / name), "recipe": recipe, "cost": {"unipolar_vs_bipolar": {
            "area_reduction": 0.5, "paper_area_reduction": 0.67, "power_reduction": 0.4, "paper_power_reduction": 0.4}},
            "metrics": {"spec": {"weight_bits": bits, "unipolar": unipolar}, "test_accuracy": float_accuracy - 0.01,
                        "float_test_accuracy": float_accuracy,
                        "seeds": [{"seed": 0, "float": {"test_accuracy": float_accuracy}}]}}
    experiment = types.SimpleNamespace(paper={}, targets={"float": 0.85}, notes={"float": "Why."})
    table = paper_table(experiment, found)
    rows = table[table["quantity"].str.startswith("float test accuracy")]
    assert list(rows["quantity"]) == ["float test accuracy (cifar_vgg network of a, b)",
                                      "float test accuracy (cifar_vgg network of c)"]
    assert list(rows["verdict"]) == ["missed by 1.00 pts", "met"]
    assert explanations(experiment, found) == [
        "- float, against the target 85.00 %: cifar_vgg network of a, b: 84.00 % (missed by 1.00 pts). Why."]
    # a run folder from before variants shared float baselines: same recipe fields, one float trained per variant
    found["b"]["metrics"]["float_test_accuracy"] = 0.845
    found["b"]["metrics"]["seeds"][0]["float"]["test_accuracy"] = 0.845
    rows = paper_table(experiment, found)
    assert [q for q in rows["quantity"] if q.startswith("float test accuracy")] == [
        "float test accuracy (cifar_vgg network of a)", "float test accuracy (cifar_vgg network of b)",
        "float test accuracy (cifar_vgg network of c)"]


def test_the_pipeline_modules_form_a_dag_below_the_package():
    """No pipeline module imports the package ``tf_nvm.pipeline`` (its ``__init__``) or, at any level and through
    any chain, a pipeline module that imports it back (function-level imports included)."""
    from test_layering import MODULES, _imports  # noqa: PLC0415  (tests/ is on the path, as for test_nas)

    ours = sorted(m for m in MODULES if m.startswith("tf_nvm.pipeline."))
    graph = {m: {n for n in _imports(m) if n in ours and n != m} for m in ours}
    assert {m for m in ours if "tf_nvm.pipeline" in _imports(m)} == set()
    assert "tf_nvm.pipeline.markers" in graph["tf_nvm.pipeline.report"]  # the graph is not empty
    for start in ours:
        seen, todo = set(), list(graph[start])
        while todo:
            name = todo.pop()
            assert name != start, f"{start} imports itself back through {sorted(seen)}"
            if name not in seen:
                seen.add(name)
                todo += graph[name]


def test_the_british_names_are_deprecated_aliases_of_the_american_ones():
    from tf_nvm.pipeline import evaluate  # noqa: PLC0415

    assert evaluate.run_standardisation is evaluate.run_standardization
    assert evaluate.input_standardisation is evaluate.input_standardization
    assert {"run_standardisation", "input_standardisation"} <= set(evaluate.__all__)
