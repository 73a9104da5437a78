"""Monte Carlo shards: chips A:B anywhere, merged bit-identical to one run; mismatched shards refused by name."""

import json

import numpy as np
import pytest

from tf_nvm import ShardMergeError, SimulatorError
from tf_nvm.cli import main
from tf_nvm.mapping import content_hash, load, save
from tf_nvm.simulator import ChipRange
from tflite_export import build_mapping

from test_mapping import _small_model  # noqa: E402  (tests/ on sys.path)

NOISY = ["--preset", "pcm-like", "--set", "device.t_inference=3600", "--set", "device.stuck_at_gmin_rate=0.01",
         "--set", "adc.mode=shared", "--set", "adc.bits=8"]  # per-read noise (the default) keyed by chip and example


@pytest.fixture(scope="module")
def shard_inputs(tmp_path_factory):
    """A tiny mapping file and a user's .npz whose labels are the ideal network's answers."""
    from tf_nvm.mapping import reference  # noqa: PLC0415

    folder = tmp_path_factory.mktemp("shards")
    mapping = build_mapping(_small_model("paper-2bit-bipolar"))
    save(mapping, folder / "m")
    x = np.random.default_rng(0).normal(0, 2, (96, 16, 3)).astype(np.float32)
    y = reference.evaluate(mapping, x).values().argmax(axis=-1)
    np.savez(folder / "d.npz", x_test=x, y_test=y)
    return folder


def _simulate(folder, out, *extra):
    assert main(["simulate", str(folder / "m"), "--data", str(folder / "d.npz"), *NOISY, *extra, "--out",
                 str(folder / out)]) == 0
    return folder / out


def _without_location(path):
    """results.json minus the two fields that say where and how long (files, summary.seconds)."""
    results = json.loads((path / "results.json").read_text())
    assert results["files"] == {"csv": str(path / "chips.csv"), "markdown": str(path / "chips.md")}
    del results["files"], results["summary"]["seconds"]
    return results


def test_shards_merge_bit_identical_to_one_run(shard_inputs, capsys):
    folder = shard_inputs
    single = _simulate(folder, "single", "--chips", "5")
    first = _simulate(folder, "s0", "--chips", "0:3")
    second = _simulate(folder, "s1", "--chips", "3:5")
    assert "chip 4/5" in capsys.readouterr().out  # the shard's chips keep their global numbers
    assert main(["simulate", "merge", str(second), str(first), "--out", str(folder / "merged")]) == 0
    merged = folder / "merged"
    for name in ("chips.csv", "chips.md"):
        assert (merged / name).read_bytes() == (single / name).read_bytes(), name
    want, got = _without_location(single), _without_location(merged)
    assert json.dumps(got) == json.dumps(want)  # every value and the key order
    assert want["shard"]["chips"] == [0, 5] and len(set(want["chips"])) > 1  # noisy chips that differ
    assert want["shard"]["mapping_hash"] == content_hash(load(str(folder / "m")))
    shard = json.loads((second / "results.json").read_text())
    assert shard["shard"]["chips"] == [3, 5] and shard["chips"] == want["chips"][3:]
    assert (second / "chips.csv").read_text().splitlines()[1].startswith("3,")


def test_merge_refuses_gaps_overlaps_and_other_settings_by_name(shard_inputs, capsys):
    folder = shard_inputs
    s0 = folder / "s0" if (folder / "s0").exists() else _simulate(folder, "s0", "--chips", "0:3")
    late = _simulate(folder, "late", "--chips", "4:5")
    overlap = _simulate(folder, "overlap", "--chips", "2:4")
    seed = _simulate(folder, "seed", "--chips", "3:4", "--set", "seed=1")
    fewer = _simulate(folder, "fewer", "--chips", "3:4", "--examples", "50")
    sweep = folder / "sweep"
    assert main(["simulate", str(folder / "m"), "--data", str(folder / "d.npz"), "--chips", "1", "--sweep",
                 "adc.bits=6,8", "--out", str(sweep)]) == 0
    capsys.readouterr()
    cases = [((s0, late), r"merge: chips 3:4 are missing between shards .*s0 \(chips 0:3\) and .*late \(chips 4:5\)"
                          r"\. Fix: run tf-nvm simulate \.\.\. --chips 3:4"),
             ((s0, overlap), r"merge: shards .*s0 \(chips 0:3\) and .*overlap \(chips 2:4\) overlap on chips 2:3"),
             ((s0, seed), r"merge: shard .*seed was simulated with other settings \(config, data, examples, task, "
                          r"metric\) than shard .*s0"),
             ((s0, fewer), r"merge: shard .*fewer was simulated with other settings"),
             ((s0, sweep), r"merge: .*sweep.results\.json is not a Monte Carlo result")]
    for folders, message in cases:
        with pytest.raises(ShardMergeError, match=message):
            from tf_nvm.pipeline.shards import merge  # noqa: PLC0415

            merge(folders, folder / "refused")
        assert main(["simulate", "merge", *map(str, folders), "--out", str(folder / "refused")]) == 2
        assert "tf-nvm: error: merge: " in capsys.readouterr().err
    assert not (folder / "refused" / "results.json").exists()
    other = build_mapping(_small_model("paper-2bit-bipolar", seed=1))
    save(other, folder / "other")
    assert main(["simulate", str(folder / "other"), "--data", str(folder / "d.npz"), *NOISY, "--chips", "3:4",
                 "--out", str(folder / "other_out")]) == 0
    with pytest.raises(ShardMergeError, match=r"merge: shard .*other_out was simulated with other mapping than shard "
                                              r".*s0 \(mapping_hash [0-9a-f]{16}\.\.\. vs"):
        from tf_nvm.pipeline.shards import merge  # noqa: PLC0415

        merge([s0, folder / "other_out"], folder / "refused")


def test_chip_ranges_parse_split_and_refuse_bad_text():
    assert ChipRange.parse("25") == ChipRange(0, 25) and ChipRange.parse("3:5") == ChipRange(3, 5)
    assert [str(r) for r in ChipRange(0, 100).split(2)] == ["0:50", "50:100"]
    assert [str(r) for r in ChipRange(3, 8).split(3)] == ["3:4", "4:6", "6:8"]
    assert [str(r) for r in ChipRange(0, 2).split(4)] == ["0:1", "1:2"]
    with pytest.raises(SimulatorError, match=r"--chips: '3-5' is not a chip count N or a chip range A:B\. Fix: e\.g\."):
        ChipRange.parse("3-5")
    with pytest.raises(SimulatorError, match=r"--chips 5:3: chip range 5:3 holds -2 chips; allowed 1\.\.100000"):
        ChipRange.parse("5:3")


@pytest.mark.slow  # two spawned processes each import TensorFlow (81 s on the shared 2 cores at load 9)
def test_local_workers_equal_one_process(shard_inputs):
    folder = shard_inputs
    single = folder / "single" if (folder / "single").exists() else _simulate(folder, "single", "--chips", "5")
    parallel = _simulate(folder, "parallel", "--chips", "5", "--workers", "2")
    assert sorted(p.name for p in (parallel / "shards").iterdir()) == ["chips-0-2", "chips-2-5"]
    assert (parallel / "chips.csv").read_bytes() == (single / "chips.csv").read_bytes()
    assert json.dumps(_without_location(parallel)) == json.dumps(_without_location(single))


def test_mapping_hash_covers_what_is_computed_not_provenance(shard_inputs):
    import dataclasses  # noqa: PLC0415

    mapping = load(str(shard_inputs / "m"))
    later = dataclasses.replace(mapping, metadata={**(mapping.metadata or {}), "created_utc": "2030-01-01T00:00:00"})
    assert content_hash(later) == content_hash(mapping)  # two exports of one model (each shard maps a run folder)
    other = build_mapping(_small_model("paper-2bit-bipolar", seed=1))  # other weights (merge refusal: above)
    assert content_hash(other) != content_hash(mapping)
