"""The PCM-like device model of `tf_nvm.simulator` against IBM aihwkit, on the same trained codes.

Two small HAR MLPs (4-bit bipolar, differential pairs; 2-bit unipolar, one device per
weight) are trained here, mapped, and run on ``--chips`` chips per row at t = 1 s, 1 h and
1 day after programming:

* tf_nvm: `tf_nvm.simulator.Simulator` with the ``pcm-like`` preset, global drift
  compensation, exact converters, read noise ``per-chip`` and ``per-read``
  (`tf_nvm.simulator.READ_NOISE_MODES`).
* aihwkit: every crossbar layer is one ``AnalogLinear`` tile (``TorchInferenceRPUConfig``,
  perfect forward, no tile splitting) with ``PCMLikeNoiseModel`` (g_max 25 µS, the mapping's
  g_min and level step: a fixed-scale conductance converter, a pair for the differential
  network and a single device for the unipolar one) and ``GlobalDriftCompensation``; the
  layer's compensated weights are read from aihwkit's own forward pass of the one-hot
  inputs (``AnalogLinear(eye)``) after ``program_analog_weights()`` and
  ``drift_analog_weights(t)``. aihwkit draws the read noise once per drifted chip (its only
  convention), so the aihwkit column of a ``per-read`` row is that same per-chip draw.
  These weights are put into a `tf_nvm.simulator.Chip` and run through the same digital
  pipeline (bias, weight scale, ReLU, int8 re-quantisation, digital ops, exact converters),
  so both sides differ only in the device model. The ideal aihwkit chip (no noise) must give
  the ideal tf_nvm codes exactly (checked, printed).

Per row: accuracy and the RMS error of the output (logit) codes against the ideal chip,
mean +- std over the chips, and Welch's t-test p-value (``scipy.stats.ttest_ind(...,
equal_var=False)``) of tf_nvm vs aihwkit; the tf_nvm and aihwkit compensation gains (least
squares of the compensated effective weights on the codes) and factors, layer 0.

aihwkit runs in its own virtualenv, as a child process exchanging ``.npz`` files
(``allow_pickle=False``). Set-up used (2026-12-07; aihwkit 1.2.0 is an sdist only and fails
to build here: its CMake needs OpenBLAS; the 1.1.0 wheel's compiled tiles are built for torch
2.10 and fail with torch 2.13 (``RuntimeError: weights must be a CPU tensor``), so the pure
PyTorch tiles ``TorchInferenceRPUConfig`` are used, with the same noise model and
compensation classes)::

    python3 -m venv /work/venv-aihwkit
    /work/venv-aihwkit/bin/pip install torch==2.13.0          # the CPU wheel on local disk
    /work/venv-aihwkit/bin/pip download aihwkit==1.1.0 --no-deps -d /tmp/aihwkit-dl
    /work/venv-aihwkit/bin/pip install --no-deps /tmp/aihwkit-dl/aihwkit-1.1.0-*.whl
    /work/venv-aihwkit/bin/pip install numpy scipy requests protobuf tqdm scikit-learn \\
        typing_extensions filelock sympy networkx jinja2 fsspec "setuptools>=77.0.3"

(``--no-deps`` keeps pip from pulling a CUDA build of torch for aihwkit's ``torchvision``.)

Run (from the repository root; ``PYTHONPATH=.`` when tf_nvm is not installed): ``python3 benchmarks/aihwkit_agreement.py --data /work/shared/data/har/har_uci_style.npz
--out runs/aihwkit_agreement [--chips 25] [--epochs 10] [--aihwkit-python /work/venv-aihwkit/bin/python]``.
``--levels paper-4bit-bipolar --out DIR`` compares the devices instead: per code level, the mean and spread
of the compensated weights of a random 576 x 64 code matrix over the chips, at each time.
"""

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0}
NETWORKS = {"4-bit bipolar": "paper-4bit-bipolar", "2-bit unipolar": "paper-2bit-unipolar"}


# ---------------------------------------------------------------------------------------------- aihwkit child
def _aihwkit_child(request_path, reply_path):
    """Runs in the aihwkit virtualenv: programs and drifts every chip, returns compensated weights."""
    import torch  # noqa: PLC0415
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel  # noqa: PLC0415
    from aihwkit.inference.converter.base import BaseConductanceConverter  # noqa: PLC0415
    from aihwkit.inference.converter.conductance import SinglePairConductanceConverter  # noqa: PLC0415
    from aihwkit.nn import AnalogLinear  # noqa: PLC0415
    from aihwkit.simulator.configs import TorchInferenceRPUConfig  # noqa: PLC0415
    from aihwkit.simulator.parameters.io import IOParameters  # noqa: PLC0415

    class FixedPair(SinglePairConductanceConverter):
        """aihwkit's pair converter with the mapping's fixed level step instead of max |w| -> g_max."""

        def __init__(self, g_max, g_min, top):
            super().__init__(g_max=g_max, g_min=g_min)
            self.top = top

        def convert_to_conductances(self, weights):
            ratio = torch.tensor((self.g_max - self.g_min) / self.top)
            scaled = weights * ratio
            return ([scaled.clamp(min=0.0, max=self.g_max) + self.g_min,
                     (-scaled).clamp(min=0.0, max=self.g_max) + self.g_min], {"scale_ratio": ratio})

    class FixedSingle(BaseConductanceConverter):
        """One device per (non-negative) weight: g = g_min + w dG (tf_nvm's unipolar mapping)."""

        def __init__(self, g_max, g_min, top):
            self.g_max, self.g_min, self.top = g_max, g_min, top

        def convert_to_conductances(self, weights):
            ratio = torch.tensor((self.g_max - self.g_min) / self.top)
            return [weights * ratio + self.g_min], {"scale_ratio": ratio}

        def convert_back_to_weights(self, conductances, params):
            return (conductances[0] - self.g_min) / params["scale_ratio"]

    request = np.load(request_path, allow_pickle=False)
    chips, seed = int(request["chips"]), int(request["seed"])
    times = [float(t) for t in request["times"]]
    reply = {}
    for net in range(int(request["networks"])):
        g_min, g_max, top = (float(request[f"net{net}_{k}"]) for k in ("g_min", "g_max", "top"))
        converter = (FixedPair if int(request[f"net{net}_differential"]) else FixedSingle)(g_max, g_min, top)
        codes = [request[f"net{net}_layer{j}"] for j in range(int(request[f"net{net}_layers"]))]
        config = TorchInferenceRPUConfig()
        config.forward = IOParameters(is_perfect=True)
        config.mapping.max_input_size = config.mapping.max_output_size = 0  # one tile per layer
        config.noise_model = PCMLikeNoiseModel(g_converter=converter, g_max=g_max)
        config.drift_compensation = GlobalDriftCompensation()
        for j, w in enumerate(codes):
            layer = AnalogLinear(w.shape[0], w.shape[1], bias=False, rpu_config=config)
            layer.set_weights(torch.tensor(w.T.copy()))
            layer.eval()
            eye = torch.eye(w.shape[0])
            with torch.no_grad():
                reply[f"net{net}_ideal_layer{j}"] = layer(eye).numpy().astype(np.float32)
            for chip in range(chips):
                torch.manual_seed(seed * 100_003 + net * 1009 + j * 101 + chip)
                layer.program_analog_weights()
                for k, t in enumerate(times):
                    layer.drift_analog_weights(t)
                    with torch.no_grad():
                        reply[f"net{net}_t{k}_chip{chip}_layer{j}"] = layer(eye).numpy().astype(np.float32)
                    tile = next(layer.analog_tiles())
                    reply[f"net{net}_t{k}_chip{chip}_alpha{j}"] = np.float32(float(tile.alpha))
    np.savez(reply_path, **reply)


# ---------------------------------------------------------------------------------------------- statistics
def welch_p(a, b):
    """Two-sided p-value of Welch's t-test (scipy when installed; else numpy with the t distribution)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.var() == 0 and b.var() == 0:  # no spread on either side (e.g. every chip equally accurate)
        return 1.0 if a.mean() == b.mean() else 0.0
    try:
        from scipy import stats  # noqa: PLC0415
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    except ImportError:
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        t = (a.mean() - b.mean()) / math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
        x = df / (df + t * t)  # p = I_x(df/2, 1/2), the regularised incomplete beta (continued fraction)
        return _betainc(df / 2, 0.5, x)


def _betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b) (Numerical Recipes' continued fraction, math only)."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1 - x)
    c, d, f = 1.0, 1.0 - (a + b) * x / (a + 1), 0.0
    d = 1 / (d if abs(d) > 1e-300 else 1e-300)
    f = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + num * d
            d = 1 / (d if abs(d) > 1e-300 else 1e-300)
            c = 1 + num / c
            c = c if abs(c) > 1e-300 else 1e-300
            f *= c * d
        if abs(c * d - 1) < 1e-12:
            break
    return front * f / a


# ---------------------------------------------------------------------------------------------- tf_nvm side
def _train(preset, x_train, y_train, epochs, seed):
    import warnings  # noqa: PLC0415

    import tf_nvm  # noqa: PLC0415
    from tf_nvm.keras.backend import keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tf_nvm.quantize_model(tf_nvm.models.build("har_search_mlp", units=(64,), input_pool=4), preset,
                                      init="device")
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


def _effective_codes(layer):
    """The mapping layer's weight codes ``[rows, cols]`` (G+ - G- levels, or the one device's level)."""
    levels = np.asarray(layer.levels, np.float32)
    return levels[..., 0] - levels[..., 1] if levels.shape[-1] == 2 else levels[..., 0]


def _chip_from_weights(sim, index, weights):
    """A `Chip` whose layers hold the given effective weight matrices ``[rows, cols]`` (level units)."""
    from tf_nvm.keras.backend import tf  # noqa: PLC0415
    from tf_nvm.simulator.devices import ChipLayer  # noqa: PLC0415
    from tf_nvm.simulator.network import Chip  # noqa: PLC0415

    layers = {}
    for name, w in weights.items():
        layout = sim.layouts[name]
        full = np.zeros((layout.row_tiles * layout.tile_rows, layout.device_columns), np.float32)
        full[:w.shape[0], :layout.cols] = w  # the G- / reference columns stay 0: the effective weight is w
        layers[name] = ChipLayer(tf.constant(full.reshape(layout.levels.shape)), None)
    return Chip(index, layers, {})


def _gain(weights, codes):
    """Least-squares gain of compensated effective weights on the codes (1 = no net over/under-correction)."""
    return float((weights * codes).sum() / (codes * codes).sum())


def _levels_check(args):
    """``--levels PRESET``: per code level, the compensated weights of tf_nvm and aihwkit chips compared.

    A random ``576 x 64`` code matrix of the preset (uniform over its codes) on ``--chips`` chips at every
    time: per code, the mean over chips of the per-chip mean and std of the compensated effective weights
    (level units), with Welch p-values over the chips. tf_nvm: ``program_chip`` with ``per-chip`` read noise.
    """
    import pandas as pd  # noqa: PLC0415

    import tf_nvm  # noqa: F401, PLC0415
    from tf_nvm.core import presets  # noqa: PLC0415
    from tf_nvm.simulator import DeviceConfig  # noqa: PLC0415
    from tf_nvm.simulator.devices import LayerDevices, program_chip  # noqa: PLC0415
    from tf_nvm.core.tables import write_table  # noqa: PLC0415

    spec = presets.get(args.levels)
    differential = spec.mapping_kind == "differential"
    if spec.mapping_kind not in ("differential", "unipolar"):
        raise SystemExit(f"--levels {args.levels}: mapping kind {spec.mapping_kind} is not compared here")
    rows_, cols, top = 576, 64, spec.top_level
    codes = np.random.default_rng(args.seed).integers(-top if differential else 0, top + 1, (rows_, cols))
    codes = codes.astype(np.float32)
    request = {"chips": args.chips, "seed": args.seed, "times": np.array(list(TIMES.values())), "networks": 1,
               "net0_g_min": spec.g_min_us, "net0_g_max": spec.g_max_us, "net0_top": top, "net0_layers": 1,
               "net0_differential": int(differential), "net0_layer0": codes}
    aihw = _run_child(args, request)
    levels = (np.concatenate([np.maximum(codes, 0), np.maximum(-codes, 0)], 1) if differential else codes)[None]
    layout = LayerDevices("layer", 0, 1, rows_, cols, 2 if differential else 1, 0, np.zeros(cols, np.int32),
                          levels, np.ones_like(levels))
    table = []
    for k, (time_label, seconds) in enumerate(TIMES.items()):
        config = DeviceConfig(noise="pcm-like", t_inference=seconds, read_noise="per-chip")
        ours, theirs = [], []
        for chip in range(args.chips):
            weights = program_chip([layout], spec, config, args.seed, chip)[0][0].weights.numpy()[0]
            ours.append(weights[:, :cols] - (weights[:, cols:] if differential else 0))
            theirs.append(aihw[f"net0_t{k}_chip{chip}_layer0"])
        ours, theirs = np.array(ours), np.array(theirs)
        for code in np.unique(codes):
            a, b = ours[:, codes == code], theirs[:, codes == code]
            table.append({"preset": args.levels, "t": time_label, "code": int(code),
                          "tf_nvm mean": a.mean(1).mean(), "aihwkit mean": b.mean(1).mean(),
                          "mean Welch p": welch_p(a.mean(1), b.mean(1)),
                          "tf_nvm std": a.std(1).mean(), "aihwkit std": b.std(1).mean(),
                          "std Welch p": welch_p(a.std(1), b.std(1))})
            print(" | ".join(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}"
                             for key, value in table[-1].items()), flush=True)
    os.makedirs(args.out, exist_ok=True)
    write_table(pd.DataFrame(table), os.path.join(args.out, f"levels_{args.levels}"))
    print(f"written {args.out}/levels_{args.levels}.{{csv,md}}")


def _run_child(args, request):
    """Runs `_aihwkit_child` in the aihwkit virtualenv on ``request``; returns its reply arrays."""
    with tempfile.TemporaryDirectory() as tmp:
        request_path, reply_path = os.path.join(tmp, "request.npz"), os.path.join(tmp, "reply.npz")
        np.savez(request_path, **request)
        subprocess.run([args.aihwkit_python, os.path.abspath(__file__), "--aihwkit-child", request_path, reply_path],
                       check=True)
        with np.load(reply_path, allow_pickle=False) as reply:
            return {key: reply[key] for key in reply.files}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="har_uci_style.npz (or another HAR source path); required without --levels")
    parser.add_argument("--out", required=True, help="folder for aihwkit_agreement.{csv,md,json}")
    parser.add_argument("--chips", type=int, default=25)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-examples", type=int, default=0, help="0: the whole test set")
    parser.add_argument("--aihwkit-python", default="/work/venv-aihwkit/bin/python")
    parser.add_argument("--levels", metavar="PRESET",
                        help="instead: compare the compensated weights code by code (random codes of PRESET)")
    args = parser.parse_args(argv)
    if args.levels:
        return _levels_check(args)
    if not args.data:
        parser.error("--data is required (or --levels PRESET)")

    import pandas as pd  # noqa: PLC0415

    import tf_nvm  # noqa: PLC0415  (legacy-Keras mode first)
    from tf_nvm.core.atomic import write_json_atomic  # noqa: PLC0415
    from tf_nvm.datasets.har import load_har_dataset  # noqa: PLC0415
    from tf_nvm.simulator import DeviceConfig, SimulationConfig, Simulator  # noqa: PLC0415
    from tf_nvm.core.tables import write_table  # noqa: PLC0415
    from tflite_export import build_mapping  # noqa: PLC0415

    started = time.time()
    data = load_har_dataset("auto", path=args.data)
    mean, std = data.x_train.mean(axis=(0, 1)), data.x_train.std(axis=(0, 1))
    x_train = ((data.x_train - mean) / std).astype(np.float32)
    x_test = ((data.x_test - mean) / std).astype(np.float32)
    y_test = np.asarray(data.y_test)
    if args.test_examples:
        x_test, y_test = x_test[:args.test_examples], y_test[:args.test_examples]

    mappings, request = {}, {"chips": args.chips, "seed": args.seed, "times": np.array(list(TIMES.values())),
                             "networks": len(NETWORKS)}
    for net, (label, preset) in enumerate(NETWORKS.items()):
        model = _train(preset, x_train, data.y_train, args.epochs, args.seed)
        mapping = build_mapping(model)
        mappings[label] = mapping
        spec = mapping.spec
        layers = mapping.crossbar_layers
        request.update({f"net{net}_g_min": spec.g_min_us, f"net{net}_g_max": spec.g_max_us,
                        f"net{net}_top": spec.top_level, f"net{net}_layers": len(layers),
                        f"net{net}_differential": int(spec.mapping_kind == "differential")})
        if spec.mapping_kind not in ("differential", "unipolar"):
            raise SystemExit(f"{label}: mapping kind {spec.mapping_kind} is not compared here")
        for j, layer in enumerate(layers):
            request[f"net{net}_layer{j}"] = _effective_codes(layer)
        print(f"{label}: trained ({time.time() - started:.0f} s), layers "
              f"{[(layer.name, layer.rows, layer.cols) for layer in layers]}", flush=True)

    aihw = _run_child(args, request)
    print(f"aihwkit chips done ({time.time() - started:.0f} s)", flush=True)

    rows = []
    for net, (label, mapping) in enumerate(mappings.items()):
        layers = mapping.crossbar_layers
        codes = [_effective_codes(layer) for layer in layers]
        output = mapping.outputs[0] if isinstance(mapping.outputs, (list, tuple)) else next(iter(mapping.outputs))
        ideal_sim = Simulator(mapping, SimulationConfig(batch_size=1024))
        ideal = ideal_sim.run(ideal_sim.program(0), x_test).codes[output]
        ideal_accuracy = float(np.mean(np.argmax(ideal, axis=-1) == y_test))
        aihw_ideal = ideal_sim.run(_chip_from_weights(ideal_sim, 0, {
            layer.name: aihw[f"net{net}_ideal_layer{j}"] for j, layer in enumerate(layers)}), x_test).codes[output]
        differing = int(np.sum(aihw_ideal != ideal))
        print(f"{label}: ideal accuracy {100 * ideal_accuracy:.2f} %, ideal aihwkit chip vs ideal tf_nvm chip: "
              f"{differing} of {ideal.size} output codes differ", flush=True)

        def score(out):
            return (float(np.mean(np.argmax(out, axis=-1) == y_test)),
                    float(np.sqrt(np.mean((out.astype(np.float64) - ideal) ** 2))))

        for k, (time_label, seconds) in enumerate(TIMES.items()):
            aihw_scores, aihw_gains, aihw_alpha = [], [], []
            for chip in range(args.chips):
                weights = {layer.name: aihw[f"net{net}_t{k}_chip{chip}_layer{j}"] for j, layer in enumerate(layers)}
                out = ideal_sim.run(_chip_from_weights(ideal_sim, chip, weights), x_test).codes[output]
                aihw_scores.append(score(out))
                aihw_gains.append(_gain(weights[layers[0].name], codes[0]))
                aihw_alpha.append(float(aihw[f"net{net}_t{k}_chip{chip}_alpha0"]))
            for mode in ("per-chip", "per-read"):
                sim = Simulator(mapping, SimulationConfig(
                    device=DeviceConfig(noise="pcm-like", t_inference=seconds, read_noise=mode), seed=args.seed,
                    batch_size=1024))
                ours, gains, alphas = [], [], []
                for chip in range(args.chips):
                    programmed = sim.program(chip)
                    ours.append(score(sim.run(programmed, x_test).codes[output]))
                    layout, first = sim.layouts[layers[0].name], programmed.layers[layers[0].name]
                    w = first.weights.numpy().reshape(-1, layout.device_columns)[:layers[0].rows]
                    w = w[:, :layout.cols] - (w[:, layout.cols:2 * layout.cols] if layout.devices == 2 else 0)
                    gains.append(_gain(w, codes[0]))
                    factor = programmed.drift_compensation  # a float per chip in tf_nvm 0.2.0 (one for all layers)
                    alphas.append(factor[layers[0].name] if isinstance(factor, dict) else factor)
                a_ours, r_ours = np.array(ours).T
                a_aihw, r_aihw = np.array(aihw_scores).T
                row = {"network": label, "t": time_label, "read noise": mode, "chips": args.chips,
                       "ideal accuracy %": 100 * ideal_accuracy,
                       "tf_nvm accuracy %": f"{100 * a_ours.mean():.2f} ± {100 * a_ours.std(ddof=1):.2f}",
                       "aihwkit accuracy %": f"{100 * a_aihw.mean():.2f} ± {100 * a_aihw.std(ddof=1):.2f}",
                       "accuracy Welch p": welch_p(a_ours, a_aihw),
                       "tf_nvm code RMSE": f"{r_ours.mean():.3f} ± {r_ours.std(ddof=1):.3f}",
                       "aihwkit code RMSE": f"{r_aihw.mean():.3f} ± {r_aihw.std(ddof=1):.3f}",
                       "RMSE Welch p": welch_p(r_ours, r_aihw),
                       "tf_nvm gain": float(np.mean(gains)), "aihwkit gain": float(np.mean(aihw_gains)),
                       "tf_nvm factor": float(np.mean(alphas)), "aihwkit factor": float(np.mean(aihw_alpha)),
                       "ideal chips differing codes": differing}
                rows.append(row)
                print(" | ".join(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}"
                                 for key, value in row.items()), flush=True)
    os.makedirs(args.out, exist_ok=True)
    table = pd.DataFrame(rows)
    write_table(table, os.path.join(args.out, "aihwkit_agreement"))
    write_json_atomic(os.path.join(args.out, "aihwkit_agreement.json"),
                      {"rows": rows, "tf_nvm": tf_nvm.__version__, "data": args.data, "epochs": args.epochs,
                       "seed": args.seed, "test_examples": int(len(y_test)), "seconds": time.time() - started})
    worst = min(min(row["accuracy Welch p"], row["RMSE Welch p"]) for row in rows)
    print(f"written {args.out}/aihwkit_agreement.{{csv,md,json}}; smallest Welch p {worst:.3g} "
          f"({'no row below 0.01' if worst >= 0.01 else 'a row below 0.01'}); {time.time() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--aihwkit-child":
        _aihwkit_child(sys.argv[2], sys.argv[3])
    else:
        main()
