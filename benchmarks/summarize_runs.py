"""Prints a Markdown table of `tf-nvm train` run folders (from their metrics.json).

Run: ``python benchmarks/summarize_runs.py runs/har-2bit-unipolar runs/har-2bit-bipolar ...``
"""

import sys

from tf_nvm.core.errors import RunFolderError
from tf_nvm.experiments.runs import read_run


def main(folders):
    print("| recipe | spec | NVM test acc. mean (min..max, std) | float test acc. mean (min..max) | seeds "
          "| per-seed NVM / float (val-selected epoch) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for folder in folders:
        m = read_run(folder, load_model=False).metrics
        if m is None:
            raise RunFolderError(f"run folder {folder!r} has no metrics.json. Fix: pass folders of finished "
                                 "`tf-nvm train` runs.")
        nvm, flt = m["test_accuracy_summary"], m["float_test_accuracy_summary"]
        spec = m["spec"]
        spec_text = (f"{spec['weight_bits']}-bit {'unipolar' if spec['unipolar'] else spec['bipolar_mapping']}, "
                     f"A={spec['activation_range']:g}, s={spec['weight_scale']:.4g}")
        seeds = ", ".join(f"{r['nvm']['test_accuracy']:.4f}/{r['float']['test_accuracy']:.4f} "
                          f"(ep {r['nvm']['best_epoch']})" for r in m["seeds"])
        print(f"| {m['recipe']} | {spec_text} | {100 * nvm['mean']:.2f} % "
              f"({100 * nvm['min']:.2f}..{100 * nvm['max']:.2f}, {100 * nvm['std']:.2f}) | "
              f"{100 * flt['mean']:.2f} % ({100 * flt['min']:.2f}..{100 * flt['max']:.2f}) "
              f"| {len(m['seeds'])} | {seeds} |")


if __name__ == "__main__":
    main(sys.argv[1:])
