"""Monte Carlo shards: chips A:B anywhere, merged bit-identical to one run; mismatched shards refused by name."""

import json
import shutil

import numpy as np
import pytest

from tf_nvm import ShardMergeError, SimulatorError
from tf_nvm.cli import main
from tf_nvm.core.hashing import arrays_sha256
from tf_nvm.experiments.data import Split
from tf_nvm.mapping import content_hash, load, save
from tf_nvm.simulator import ChipRange
from tf_nvm.simulator.shards import array_hash, settings_hash
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


def test_one_array_hash_layout_for_data_splits_and_shards():
    """`Split.content_hash` and `array_hash` are both `arrays_sha256`. The split's digest is the one tf_nvm 0.3's
    own code computed for these arrays (run folders keep their data_sha256); the shards' data hash changed in 0.4
    (0.3 gave da69d9ab... for the same arguments)."""
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.normal(size=(4, 3)).astype(np.float32), y_train=np.arange(4, dtype=np.int64),
                  x_val=np.ones((2, 3), ">f4"), y_val=np.zeros(2, np.uint8), x_test=np.zeros((1, 3), np.float32),
                  y_test=np.array([True, False]))
    split = Split(**arrays, standardization=None, source="test")
    assert split.content_hash() == arrays_sha256(arrays.items()) == (
        "36d03b544a1b2041209fc5a75faf5dec3d0226053a92f3dd484f4df36671abab")
    x, y = arrays["x_train"], arrays["y_train"]
    assert array_hash(x, y, None) == arrays_sha256([("0", x), ("1", y), ("2", None)]) == (
        "da19f31f98717f6459d99d1ed9f864b8acfc8e2b13e6cf36993f1e535a48d8eb")
    assert array_hash(x.T) == array_hash(np.ascontiguousarray(x.T)) != array_hash(x)  # the shape counts
    assert array_hash(x, None) != array_hash(x) != array_hash(x.astype(np.float64))  # absent entries, dtype
    assert array_hash(np.zeros((0, 3))) != array_hash(np.zeros((3, 0)))  # empty arrays hash (0.3's split raised)


def test_shards_written_before_the_hash_layout_change_still_merge(shard_inputs, tmp_path):
    """A merge compares the settings hashes the shards recorded and recomputes none: shards written by 0.3 (their
    data hashed in 0.3's layout) merge with each other; one of them beside a 0.4 shard is refused by name."""
    folder = shard_inputs
    new = [folder / name if (folder / name).exists() else _simulate(folder, name, "--chips", chips)
           for name, chips in (("s0", "0:3"), ("s1", "3:5"))]
    old = []
    for shard in new:
        results = json.loads((shard / "results.json").read_text())
        results["shard"]["settings_hash"] = settings_hash({"written by": "tf_nvm 0.3"})  # a hash 0.4 cannot redo
        copy = shutil.copytree(shard, tmp_path / f"old-{shard.name}")
        (copy / "results.json").write_text(json.dumps(results))
        old.append(copy)
    assert main(["simulate", "merge", *map(str, old), "--out", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert merged["shard"]["settings_hash"] == settings_hash({"written by": "tf_nvm 0.3"})
    assert merged["chips"] == json.loads((new[0] / "results.json").read_text())["chips"] + json.loads(
        (new[1] / "results.json").read_text())["chips"]
    with pytest.raises(ShardMergeError, match=r"merge: shard .*s1 was simulated with other settings"):
        from tf_nvm.pipeline.shards import merge  # noqa: PLC0415

        merge([old[0], new[1]], tmp_path / "refused")


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
