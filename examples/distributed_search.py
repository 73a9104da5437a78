"""keras-tuner's own chief/worker mode on 127.0.0.1: one chief (the oracle, served over gRPC) and N workers.

Runs a tiny fixed-size search (synthetic HAR-like windows, 1 epoch per trial, so it
finishes in a few minutes on 2 cores) twice: with 2 workers, then with 1, checks
that every trial ran exactly once (none lost, none twice) and prints the trials per
hour of each. Across machines, run the same ``tf-nvm search`` command on every
machine with the three variables set (see README, "Architecture search").

    python3 examples/distributed_search.py [--trials 6] [--workers 2] [--out /tmp/tf_nvm_distributed]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

CHILD = r'''
import json, os, sys
import numpy as np
import tf_nvm
from tf_nvm.experiments.data import Split
from tf_nvm.nas import config as search_config, tuners
from tf_nvm.nas.search import run_search
from tf_nvm.core.preprocessing import Standardization

rng = np.random.default_rng(0)
y = rng.integers(0, 3, 400)
x = rng.normal(size=(400, 32, 3)).astype(np.float32)
x[:, :, 0] += (y[:, None] - 1.0)
standardisation = Standardization.fit(x[:280])
x, y = standardisation.apply(x), y.astype(np.int32)
split = Split(x[:280], y[:280], x[280:340], y[280:340], x[340:], y[340:], standardisation, "synthetic")

original = tuners.NVMTunerMixin.run_trial
def logged(self, trial, *args, **kwargs):   # every trial a worker runs, for the "none twice" check
    with open(sys.argv[2], "a") as log:
        log.write(f"{os.environ['KERASTUNER_TUNER_ID']} {trial.trial_id}\n")
    return original(self, trial, *args, **kwargs)
tuners.NVMTunerMixin.run_trial = logged

config = search_config.from_dict(json.loads(sys.argv[3]))
summary = run_search(config, sys.argv[1], split=split, verbose=False)
print(json.dumps(summary))
'''


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(out, trials, workers):
    """Chief + ``workers`` workers on loopback; returns (seconds, {trial: [tuner ids that ran it]}, summary)."""
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    log = os.path.join(out, "runs.log")
    config = {"name": "distributed-demo", "hypermodel": "har_cnn",
              "space": {"depth": [1, 2], "filters": [8, 16], "kernel_size": [3, 5], "input_pool": [1],
                        "head_units": [0], "dropout": [0.0]},
              "training": {"epochs": 1, "batch_size": 32},
              "tuner": {"kind": "random", "max_trials": trials, "seed": 0}, "retrain": {"epochs": 1, "seeds": [0]}}
    env = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port()),
           "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                          os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-c", CHILD, out, log, json.dumps(config)]
    start = time.perf_counter()
    chief = subprocess.Popen(argv, env={**env, "KERASTUNER_TUNER_ID": "chief"}, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    time.sleep(2)  # workers wait for the server anyway (gRPC wait_for_ready); the chief writes search.json first
    procs = [subprocess.Popen(argv, env={**env, "KERASTUNER_TUNER_ID": f"tuner{i}"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(workers)]
    for proc in procs:
        proc.wait()
    output, _ = chief.communicate()
    seconds = time.perf_counter() - start
    ran = {}
    with open(log, encoding="utf-8") as handle:
        for line in handle:
            tuner_id, trial_id = line.split()
            ran.setdefault(trial_id, []).append(tuner_id)
    summary = json.loads(output.strip().splitlines()[-1]) if chief.returncode == 0 and output.strip() else None
    return seconds, ran, summary, [chief.returncode] + [p.returncode for p in procs]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="/tmp/tf_nvm_distributed")
    args = parser.parse_args()
    rates = {}
    for workers in sorted({args.workers, 1}, reverse=True):
        seconds, ran, summary, codes = run(os.path.join(args.out, f"{workers}w"), args.trials, workers)
        twice = {t: who for t, who in ran.items() if len(who) > 1}
        ok = (codes == [0] * len(codes) and summary is not None and summary["trials"] == args.trials
              and summary["by_status"] == {"COMPLETED": args.trials} and len(ran) == args.trials and not twice)
        rates[workers] = 3600 * args.trials / seconds
        per_worker = {}
        for who in ran.values():
            for tuner_id in who:
                per_worker[tuner_id] = per_worker.get(tuner_id, 0) + 1
        print(f"chief + {workers} worker(s): {args.trials} trials in {seconds:.1f} s = {rates[workers]:.0f} "
              f"trials/hour; trials per worker {dict(sorted(per_worker.items()))}; "
              f"exit codes {codes}; run twice: {twice or 'none'}; lost: {args.trials - len(ran)}; "
              f"{'OK' if ok else 'FAILED'}", flush=True)
        if not ok:
            return 1
    if len(rates) == 2:
        print(f"speed-up of {args.workers} workers over 1: {rates[args.workers] / rates[1]:.2f}x (2 CPU cores shared "
              "by every process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
