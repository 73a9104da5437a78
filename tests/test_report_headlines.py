"""report.md's headlines can be traced: every number in its Summary and beside-the-paper lines is a table cell.

The report is built from a synthetic `tf-nvm run` folder: two tiny NVM models give real crossbar mappings and
real cost-model numbers (unipolar vs bipolar periphery, shared vs per-layer); the training, export and
simulation markers hold made-up accuracies (the report only reads them).
"""

import base64
import json
import os
import re

import pytest

import tf_nvm
from tf_nvm.experiments import runs
from tf_nvm.keras.backend import keras
from tf_nvm.pipeline import experiment as experiments
from tf_nvm.pipeline.report import write_report
from tf_nvm.pipeline.report_html import html_page
from tf_nvm.pipeline.steps import variant_folder
from tflite_export import export_crossbar

L = keras.layers
VARIANTS = {"har-4bit-bipolar": ("paper-4bit-bipolar", 0.931, 0.934),
            "har-2bit-unipolar": ("paper-2bit-unipolar", 0.9329, 0.9306)}  # (spec, NVM, float test accuracy)

NOTE = "A note of the experiment's author, quoting 1.5 points from elsewhere."
"""The experiment's notes are quoted after a missed target as written: their numbers are the author's."""

DESCRIPTION = "a **synthetic** run folder, not `tf-nvm run`'s <b>output</b>"
"""The experiment's description, in Markdown (report.html renders it; raw HTML is shown as text)."""

NUMBER = re.compile(r"(?<![\w.^-])-?\d+(?:\.\d+)?(?![\w.^-])")
"""A number standing on its own: not the digits of a name (``har-2bit``, ``4-bit``, ``cifar10``, ``2^24``)."""


def _experiment(seeds):
    return experiments.from_dict({
        "name": "headlines", "description": DESCRIPTION, "dataset": "har",
        "variants": list(VARIANTS), "seeds": seeds, "epochs": 1,
        "simulation": {"preset": "pcm-like", "t_inference": 3600.0, "chips": 2, "read_noise": "per-chip",
                       "examples": 100, "sweep_t_inference": [3600.0]},
        "cost": {"technology": "isaac-32nm", "array_sizing": "fit"}, "export_examples": 100,
        "targets": {"float": 0.95, "2-bit unipolar": 0.99, "2-bit unipolar vs float": -0.001,
                    "8-bit bipolar": 0.9},  # no such variant: not listed
        "paper": {"2-bit unipolar accuracy": 0.9291, "float accuracy": 0.95},
        "notes": {"2-bit unipolar": NOTE}})


def _run_folder(out, seeds):
    """Writes what `write_report` reads: experiment.json, each variant's metrics.json, markers and mapping."""
    from tf_nvm import mapping as mapping_io  # noqa: PLC0415
    from tf_nvm.cost import compare_mappings, network_cost, shared_vs_per_layer  # noqa: PLC0415

    os.makedirs(out)
    (out / "experiment.json").write_text(json.dumps({"recipes": {}}))
    for name, (preset, nvm, flt) in VARIANTS.items():
        folder = variant_folder(str(out), name)
        os.makedirs(os.path.join(folder, "export"))
        keras.utils.set_random_seed(0)
        inputs = keras.Input((12,))
        x = L.Dense(8, name="fc1")(inputs)
        model = tf_nvm.quantize_model(keras.Model(inputs, L.Dense(3, name="fc2")(x)), preset, init="device")
        export_crossbar(model, os.path.join(folder, "export", "mapping"))
        mapping = mapping_io.load(os.path.join(folder, "export", "mapping"))
        summary = {"mean": nvm, "std": 0.002, "min": nvm - 0.002, "max": nvm + 0.002}
        float_summary = {"mean": flt, "std": 0.003, "min": flt - 0.003, "max": flt + 0.003}
        per_seed = [{"seed": s, "nvm": {"test_accuracy": nvm, "seconds": 60.0, "epoch_seconds": [60.0]},
                     "float": {"test_accuracy": flt, "seconds": 50.0, "epoch_seconds": [50.0]}} for s in seeds]
        with open(os.path.join(folder, "metrics.json"), "w", encoding="utf-8") as handle:
            handle.write(json.dumps({
                "test_accuracy": nvm, "float_test_accuracy": flt, "test_accuracy_summary": summary,
                "float_test_accuracy_summary": float_summary, "seeds": per_seed,
                "spec": tf_nvm.model_spec(model).to_dict()}))
        runs.mark_done(folder, "train", {"seeds": seeds})
        runs.mark_done(folder, "export", {"mapping": mapping.summary(), "runtimes": {
            "litert": {"differing": 0}, "tflm": {"differing": 0}}, "tflite": {"arena_bytes": 4096}})
        runs.mark_done(folder, "simulate", {
            "examples": 100, "metric": "accuracy", "ideal_accuracy": nvm, "preset": "pcm-like",
            "t_inference": 3600.0, "read_noise": "per-chip", "ideal_vs_evaluator_differing": 0,
            "summary": {"accuracy_mean": nvm - 0.001, "accuracy_std": 0.001, "accuracy_min": nvm - 0.002,
                        "chips": 2},
            "sweep": [{"t_inference": 3600.0, "mean": nvm - 0.001, "std": 0.001}],
            "levels": {layer.name: [10, 20, 30] for layer in mapping.crossbar_layers}})
        runs.mark_done(folder, "cost", {
            "technology": "isaac-32nm", "summary": network_cost(mapping).summary(),
            "unipolar_vs_bipolar": compare_mappings(mapping),
            "shared_vs_per_layer": json.loads(shared_vs_per_layer(mapping).to_json(orient="records")),
            "mcu": {"cortex-m4f": {"energy_nj": 1.5e5, "latency_us": 2.0e3, "flash_bytes": 9000, "ram_bytes": 2000}}})


def _sections(text):
    """{section heading: its lines}, tables apart: (table cells, {heading: non-table lines})."""
    cells, sections, heading = [], {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:]
        elif line.startswith("|"):
            cells += [cell.strip() for cell in line.strip().strip("|").split("|")]
        elif line.strip():
            sections.setdefault(heading, []).append(line)
    return cells, sections


def _untraced(text, notes=(NOTE,)):
    """{line: its numbers that no table cell holds}, over the lines of the Summary and beside the paper's table
    (the experiment's ``notes``, quoted text, left out)."""
    cells, sections = _sections(text)
    in_tables = {number for cell in cells for number in NUMBER.findall(cell)}
    found = {}
    for line in sections["Summary"] + sections["Measured beside the paper"]:
        own = line
        for note in notes:
            own = own.replace(note, "")
        missing = [n for n in NUMBER.findall(own) if n not in in_tables]
        if missing:
            found[line] = missing
    return found


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """report.md of the synthetic folder in full mode (three seeds) and in quick mode (one seed)."""
    built = {}
    for mode, seeds in (("full", [0, 1, 2]), ("quick", [0])):
        out = tmp_path_factory.mktemp(mode) / "out"
        _run_folder(out, seeds)
        folder = write_report(_experiment(seeds), str(out), mode == "quick", {})
        with open(os.path.join(folder, "report.md"), encoding="utf-8") as handle:
            built[mode] = handle.read()
        with open(os.path.join(folder, "report.html"), encoding="utf-8") as handle:
            built[f"{mode} html"] = handle.read()
    return built


def test_the_number_pattern_skips_names_and_finds_numbers():
    line = "- har-2bit-unipolar (2-bit unipolar): -49.9 %, 93.29 % (mean over 3 seeds; 2^24, cifar10)"
    assert NUMBER.findall(line) == ["-49.9", "93.29", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "quick"])
def test_every_headline_number_is_a_cell_of_a_table_of_the_report(reports, mode):
    text = reports[mode]
    _, sections = _sections(text)
    summary = sections["Summary"]
    assert len(summary) == len(VARIANTS) + 1 + (mode == "quick")
    assert _untraced(text) == {}
    # the unipolar-vs-bipolar headline: crossbar periphery and the whole periphery, changes in percent, beside the
    # paper's -67 % / -40 %
    cost = next(line for line in summary if line.startswith("- unipolar vs bipolar"))
    assert re.fullmatch(r"- unipolar vs bipolar, har-2bit-unipolar's network mapped both ways \(table Unipolar vs "
                        r"bipolar periphery\): crossbar periphery area -?\d+\.\d %, energy -\d+\.\d % \(paper: area "
                        r"-67\.0 %, power up to -40\.0 %\); periphery incl\. digital units: area -?\d+\.\d %, energy "
                        r"-\d+\.\d %\.", cost), cost
    row = next(line for line in text.splitlines()
               if line.startswith("| har-2bit-unipolar | crossbar periphery |")).strip("| ").split(" | ")
    assert f"area {row[4]} %, energy {row[7]} %" in cost  # the cells of the row named like the headline
    assert "| quantity | measured (%) | paper (%) |" in text  # percentages, not fractions
    assert "| har-2bit-unipolar (2-bit unipolar) test accuracy | 93.29 | 92.91 |" in text


@pytest.mark.slow
def test_the_check_sees_a_number_that_no_table_holds(reports):
    text = reports["full"].replace("## Summary\n\n", "## Summary\n\n- crossbar periphery area -12.3 %\n", 1)
    assert _untraced(text) == {"- crossbar periphery area -12.3 %": ["-12.3"]}


@pytest.mark.slow
def test_quick_mode_is_a_smoke_run_without_verdicts(reports):
    quick, full = reports["quick"], reports["full"]
    assert quick.startswith("# headlines (quick mode: a smoke run)")
    assert "- Quick mode: a smoke run" in quick and "not judged against the paper's numbers or the targets" in quick
    assert not re.search(r"\bmet\b|missed|\| verdict|Targets \(", quick)
    assert "mean over 1 seed;" in quick
    # full mode: targets of the experiment's variants, verdicts and the explanation; three seeds where three ran
    assert "| verdict |" in full and "missed by" in full and "mean over 3 seeds;" in full and NOTE in full
    assert "Targets (test accuracy, mean over seeds): float >= 95.00 %, 2-bit unipolar >= 99.00 %, 2-bit unipolar " \
           "vs float >= -0.10 pts." in full
    assert "three seeds" not in quick + full


PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
"""A 1 x 1 PNG."""


def test_report_html_renders_markdown_with_the_plots_embedded(tmp_path):
    (tmp_path / "plot.png").write_bytes(PNG)
    lines = ["# title", "", DESCRIPTION, "", "- a **bold** item with `code`, S&H", "",
             "| variant | acc % |", "| --- | --- |", "| a | 93.10 |", "", "![plot](plot.png)", "",
             "![elsewhere](../../secret.png)"]
    page = html_page("title <x>", lines, str(tmp_path))
    assert "<strong>synthetic</strong>" in page and "<code>tf-nvm run</code>" in page
    assert "<li>a <strong>bold</strong> item with <code>code</code>, S&amp;H</li>" in page
    assert "<th>variant</th>" in page and "<td>93.10</td>" in page and "<table>" in page
    assert "**" not in page and "`" not in page
    assert "&lt;b&gt;output&lt;/b&gt;" in page and "<b>" not in page  # an author's raw HTML is text
    assert "<title>title &lt;x&gt;</title>" in page
    assert f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(PNG).decode()}">' in page
    assert '<img alt="elsewhere" src="../../secret.png">' in page  # only the report's own PNGs are read


@pytest.mark.slow
def test_the_report_html_of_a_run_folder_renders_its_markdown(reports):
    page = reports["full html"]
    assert "<strong>synthetic</strong>" in page and "<code>tf-nvm run</code>" in page and "**" not in page
    assert page.count("<table>") == sum(line.startswith("| ---") for line in reports["full"].splitlines()) == 8
    assert page.count('src="data:image/png;base64,') == 6
