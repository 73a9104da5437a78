"""``tf-nvm cost RUN_OR_MAPPING``: area, energy and latency of the crossbar mapping beside the MCU baseline.

Writes to ``--out DIR`` (every file atomically): ``summary`` (one row per
scenario), ``components`` (per scenario and component), ``layers`` (per layer
and component, as mapped), ``unipolar_vs_bipolar`` (beside the paper's
67 % / 40 %), ``shared_vs_per_layer``, and with ``--tflite`` ``mcu_ops`` and
``crossbar_vs_mcu``, each as CSV + Markdown; PNG stacked bars
``area_by_component.png``, ``energy_by_component.png`` and
``crossbar_vs_mcu.png``; ``results.json``.

A mapping (PREFIX or PREFIX.json) is read without TensorFlow; a run folder is
mapped first (imports TensorFlow). ``--tflite`` parses the flatbuffer with
``tflite_export`` and measures the TFLite Micro arena in a child process when
the ``tflite-micro`` package is installed (``--arena-bytes N`` gives it
instead).
"""

import os
import sys

from tf_nvm.cli.simulate import DATA_HELP, DATASET_HELP
from tf_nvm.errors import CostModelError

__all__ = ["add_parser", "run"]

_MAX_TFLITE_BYTES = 256 << 20


def _si(value, unit):
    """``value`` (in ``unit``) with an SI prefix, 4 significant digits: ``_si(9.38e-3, "J") -> "9.378 mJ"``."""
    for factor, prefix in ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value / 1e-12:.4g} p{unit}"


def add_parser(subparsers):
    """Adds the ``cost`` parser."""
    parser = subparsers.add_parser("cost", help="hardware cost (area, energy, latency) of the crossbar mapping and "
                                                "the MCU baseline")
    parser.add_argument("source", metavar="RUN_OR_MAPPING",
                        help="run folder written by `tf-nvm train`, or a mapping PREFIX / PREFIX.json")
    parser.add_argument("--tflite", metavar="MODEL", help="the int8 .tflite of the same model (MCU baseline)")
    parser.add_argument("--tech", metavar="NAME_OR_FILE",
                        help="technology preset (isaac-32nm, murmann-median-adc, murmann-best-adc) or JSON file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a technology key (e.g. adc_share_columns=4, array_sizing=fit) or an MCU core key "
                             "(mcu.cortex-m7.clock_mhz=400)")
    parser.add_argument("--arena-bytes", type=int, help="TFLite Micro arena (RAM) in bytes, instead of measuring it")
    parser.add_argument("--accuracy", type=float,
                        help="test accuracy (0..1) for the crossbar vs MCU table (a run folder supplies its own)")
    parser.add_argument("--data", metavar="PATH", help=DATA_HELP + "; the ideal chip's score on it (exact "
                                                                  "evaluator) fills the accuracy column")
    parser.add_argument("--dataset", metavar="NAME", help=DATASET_HELP)
    parser.add_argument("--task", choices=["classification", "regression", "reconstruction"],
                        help="what the outputs mean (default: the mapping's metadata, else from the targets)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.set_defaults(func=run)
    return parser


def _mapping(args):
    """(mapping, score or None, {metric: value} of the ideal chip on --data/--dataset, or {})."""
    from tf_nvm.pipeline.evaluate import ideal_scores, read_source  # noqa: PLC0415

    source = read_source(args.source)
    if args.data is None and args.dataset is None:
        return source.mapping, source.accuracy, {}
    task, scores = ideal_scores(source, args.dataset, args.data, task=args.task)
    print(f"[tf-nvm] ideal chip on the test data ({task}): "
          + ", ".join(f"{name} {value:.4g}" for name, value in scores.items()))
    return source.mapping, scores.get("accuracy"), scores  # the accuracy column holds accuracies only


def _settings(args):
    """(technology, {core name: McuCore})."""
    import dataclasses  # noqa: PLC0415

    from tf_nvm.cost import MCU_CORES, apply_settings, get_technology  # noqa: PLC0415
    from tf_nvm.cost.technology import parse_setting  # noqa: PLC0415

    tech_settings, cores = [], {name: core for name, core in MCU_CORES.items()}
    for text in args.set:
        key, value = parse_setting(text)
        if key.startswith("mcu."):
            parts = key.split(".")
            if len(parts) != 3 or parts[1] not in cores:
                raise CostModelError(f"--set {text!r}: an MCU key is mcu.<core>.<field> with core one of "
                                     f"{sorted(cores)}. Fix: e.g. --set mcu.cortex-m7.clock_mhz=400.")
            fields = [f.name for f in dataclasses.fields(cores[parts[1]])]
            if parts[2] not in fields:
                raise CostModelError(f"--set {text!r}: unknown MCU core field {parts[2]!r}; known: {fields}. Fix: use "
                                     "one of those.")
            cores[parts[1]] = dataclasses.replace(cores[parts[1]], **{parts[2]: value})
        else:
            tech_settings.append(text)
    return apply_settings(get_technology(args.tech), tech_settings), cores


def _tflite(args):
    """(parsed graph, arena bytes or None)."""
    from tf_nvm.cost import check_tflite_bytes  # noqa: PLC0415
    from tf_nvm.safe_io import read_bytes  # noqa: PLC0415

    content = read_bytes(args.tflite, max_bytes=_MAX_TFLITE_BYTES, error=CostModelError,
                         fix="Fix: pass the .tflite file written by tf-nvm export --tflite.")
    check_tflite_bytes(content, f"--tflite {args.tflite!r}")
    from tf_nvm.errors import ExportError  # noqa: PLC0415
    from tflite_export.flatbuffer import check_runnable, read_tflite  # noqa: PLC0415  (application layer)

    try:
        graph = read_tflite(content)
        check_runnable(graph)  # a WHILE loop: no tf_nvm export, and its cost is not one pass of its body
    except ExportError as err:
        raise CostModelError(f"--tflite {args.tflite!r}: {err}") from None
    except Exception as err:  # a corrupt flatbuffer fails inside the generated bindings
        raise CostModelError(f"--tflite {args.tflite!r}: the flatbuffer cannot be parsed ({type(err).__name__}: "
                             f"{err}). Fix: pass the .tflite file written by tf-nvm export --tflite.") from None
    from tf_nvm.cost import op_table  # noqa: PLC0415

    try:
        op_table(graph)  # refuses impossible sizes and indices before the model runs to measure its arena
    except CostModelError as err:
        raise CostModelError(f"--tflite {args.tflite!r}: {err}") from None
    arena = args.arena_bytes
    if arena is None:
        try:
            import tflite_micro  # noqa: F401, PLC0415
        except ImportError:
            print("[tf-nvm] tflite-micro is not installed: RAM (arena) not measured; pass --arena-bytes N",
                  file=sys.stderr)
        else:
            from tflite_export.verify import measure_arena  # noqa: PLC0415

            try:
                arena = measure_arena(content)
            except ExportError as err:
                raise CostModelError(f"--tflite {args.tflite!r}: {err}") from None
    return graph, arena


def run(args):
    """Computes every table and plot; prints the headline numbers; returns 0."""
    import pandas as pd  # noqa: PLC0415

    from tf_nvm.atomic import check_writable, write_json_atomic  # noqa: PLC0415
    from tf_nvm.cost import compare_mappings, mcu_cost, network_cost, shared_vs_per_layer  # noqa: PLC0415
    from tf_nvm.tables import to_records  # noqa: PLC0415
    from tf_nvm.cost.report import (component_table, plot_components, plot_crossbar_vs_mcu,  # noqa: PLC0415
                                    write_table)

    if args.accuracy is not None and not 0.0 <= args.accuracy <= 1.0:
        raise CostModelError(f"--accuracy: value {args.accuracy!r} is not allowed; allowed: a fraction in 0..1. Fix: "
                             "e.g. --accuracy 0.93.")
    if args.arena_bytes is not None and args.arena_bytes <= 0:
        raise CostModelError(f"--arena-bytes: value {args.arena_bytes!r} is not allowed; allowed: an integer > 0. "
                             "Fix: pass the arena tf-nvm export printed.")
    tech, cores = _settings(args)
    check_writable(os.path.join(args.out, "results.json"), CostModelError, "output folder file")
    graph, arena = _tflite(args) if args.tflite else (None, None)
    mapping, accuracy, scores = _mapping(args)
    accuracy = args.accuracy if args.accuracy is not None else accuracy
    kind = mapping.spec.mapping_kind
    results = {f"as mapped ({kind})": network_cost(mapping, tech, scenario=f"as mapped ({kind})")}
    for other in ("unipolar", "differential", "offset"):
        if other != kind:
            results[other] = network_cost(mapping, tech, kind=other, scenario=other)
    results[f"per-layer periphery ({kind})"] = network_cost(mapping, tech, per_layer_periphery=True,
                                                           scenario=f"per-layer periphery ({kind})")
    out = args.out
    files = {}
    summary = pd.DataFrame([result.summary() for result in results.values()])
    files["summary"] = write_table(summary, os.path.join(out, "summary"))
    files["components"] = write_table(component_table(results), os.path.join(out, "components"))
    layers = results[f"as mapped ({kind})"].components.copy()
    files["layers"] = write_table(layers, os.path.join(out, "layers"))
    comparison = compare_mappings(mapping, tech)
    files["unipolar_vs_bipolar"] = write_table(pd.DataFrame([comparison]), os.path.join(out, "unipolar_vs_bipolar"))
    shared = shared_vs_per_layer(mapping, tech)
    files["shared_vs_per_layer"] = write_table(shared, os.path.join(out, "shared_vs_per_layer"))
    name = os.path.basename(os.path.normpath(args.source))
    mapped = {key: value for key, value in results.items() if key != "offset"}
    files["area_png"] = plot_components(mapped, "area_um2", os.path.join(out, "area_by_component.png"),
                                        f"{name}: area by component ({tech.name}, {tech.array_sizing} arrays)")
    files["energy_png"] = plot_components(mapped, "energy_pj", os.path.join(out, "energy_by_component.png"),
                                          f"{name}: energy per inference by component ({tech.name})")
    report = {"source": os.path.abspath(args.source), "technology": tech.to_dict(), "mapping": mapping.summary(),
              "summary": to_records(summary), "unipolar_vs_bipolar": comparison,
              "shared_vs_per_layer": to_records(shared)}
    if scores:
        report["ideal_scores"] = scores
    xbar = results[f"as mapped ({kind})"]
    print(f"[tf-nvm] {name}: crossbar ({kind}, {tech.name}, {tech.array_sizing} arrays): "
          f"{xbar.area_um2 * 1e-6:.4f} mm^2, {_si(xbar.energy_pj * 1e-12, 'J')} and "
          f"{_si(xbar.latency_ns * 1e-9, 's')} per inference")
    print(f"[tf-nvm] unipolar vs {comparison['bipolar_mapping']}: crossbar periphery area -"
          f"{100 * comparison['area_reduction']:.1f} % (paper: -{100 * comparison['paper_area_reduction']:.0f} %), "
          f"power -{100 * comparison['power_reduction']:.1f} % (paper: up to -"
          f"{100 * comparison['paper_power_reduction']:.0f} %)")
    if graph is not None:
        rows = [{"platform": f"crossbar ({kind}, {tech.name})", "accuracy": accuracy,
                 "memory_bytes": None, "weights_devices": mapping.summary()["devices"],
                 "area_mm2": xbar.area_um2 * 1e-6, "energy_nj": xbar.energy_pj * 1e-3,
                 "latency_us": xbar.latency_ns * 1e-3}]
        mcu_tables = []
        for core_name, core in cores.items():
            table, totals = mcu_cost(graph, core, arena)
            table.insert(0, "core", core_name)
            mcu_tables.append(table)
            rows.append({"platform": core.name, "accuracy": accuracy, "flash_bytes": totals["flash_bytes"],
                         "ram_bytes": totals["ram_bytes"], "macs": totals["macs"], "energy_nj": totals["energy_nj"],
                         "latency_us": totals["latency_us"]})
        rows[0]["memory_bytes"] = xbar.components.loc[xbar.components["component"] == "activation_buffer",
                                                      "count"].sum()
        versus = pd.DataFrame(rows, columns=["platform", "accuracy", "flash_bytes", "ram_bytes", "memory_bytes",
                                             "weights_devices", "macs", "area_mm2", "energy_nj", "latency_us"])
        files["mcu_ops"] = write_table(pd.concat(mcu_tables, ignore_index=True), os.path.join(out, "mcu_ops"))
        files["crossbar_vs_mcu"] = write_table(versus, os.path.join(out, "crossbar_vs_mcu"))
        files["crossbar_vs_mcu_png"] = plot_crossbar_vs_mcu(versus, os.path.join(out, "crossbar_vs_mcu.png"),
                                                            f"{name}: crossbar vs microcontroller per inference")
        report["crossbar_vs_mcu"] = to_records(versus)
        for row in rows[1:]:
            print(f"[tf-nvm] {row['platform']}: {_si(row['energy_nj'] * 1e-9, 'J')}, "
                  f"{_si(row['latency_us'] * 1e-6, 's')} per inference, flash {row['flash_bytes']} B, "
                  f"RAM {row['ram_bytes']} B")
    report["files"] = files
    write_json_atomic(os.path.join(out, "results.json"), report)
    print(f"[tf-nvm] results: {os.path.abspath(os.path.join(out, 'results.json'))}")
    return 0
