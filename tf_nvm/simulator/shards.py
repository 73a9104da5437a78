"""Monte Carlo chips in shards: ranges of chips run in any process or on any machine, merged into one run.

Chip k's devices (programming noise, stuck-at faults, drift, the per-chip read
noise) and its per-read noise are drawn from counter-based streams keyed by
(seed, k, layer, purpose) alone (`tf_nvm.simulator.devices.stream_seed`,
``stream_key``), never from a generator shared with the chips before it; the
ideal network and the per-layer ADC calibration hold no chip randomness. So
chips ``A..B-1`` score the same in a run of ``A:B`` as inside a run of
``0:N``, and contiguous shards concatenate into exactly one run's result.

* `ChipRange` (`tf_nvm.core.chips`, read without TensorFlow): ``"N"`` (chips 0..N-1) or ``"A:B"`` (chips
  A..B-1); `ChipRange.split` into contiguous parts.
* `ShardInfo`: what every Monte Carlo result records beside its scores: its chip range, the hash of the
  settings and the hash of the mapping (`tf_nvm.mapping.content_hash`).
* `settings_hash`, `array_hash`: SHA-256 of canonical JSON / of arrays (`tf_nvm.core.hashing`).
* `check_shards` and `merge_results`: shards -> one run, refusing other settings or mappings, gaps and
  overlaps (`tf_nvm.core.errors.ShardMergeError`).
* `run_parallel`: one function over jobs in N spawned processes, each importing its own TensorFlow.

Bit identity across processes holds for the same TensorFlow build and the same number of intra-op threads
(float32 sums of non-integer noisy conductances may be grouped differently by another thread count);
``docs/simulate_shards.md`` shows how to pin it on a cluster.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from tf_nvm.core.chips import MAX_CHIPS, ChipRange
from tf_nvm.core.errors import ShardMergeError, SimulatorError
from tf_nvm.core.hashing import arrays_sha256
from tf_nvm.simulator.montecarlo import MonteCarloResult

__all__ = ["ChipRange", "ShardInfo", "settings_hash", "array_hash", "check_shards", "merge_results",
           "run_parallel", "MAX_CHIPS"]

def _canonical(value):
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"), default=_jsonable)


def _jsonable(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise SimulatorError(f"settings_hash: {type(value).__name__} {value!r} is not JSON data. Fix: pass plain "
                         "numbers, strings, lists and dicts (a SimulationConfig as its to_dict()).")


def settings_hash(settings: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``settings`` (a dict of JSON data; key order does not matter)."""
    return hashlib.sha256(_canonical(settings).encode("utf-8")).hexdigest()


def array_hash(*arrays: np.ndarray | None) -> str:
    """SHA-256 (hex) of arrays' dtypes, shapes and bytes, by position (None entries count as absent).

    `tf_nvm.core.hashing.arrays_sha256` of ``("0", arrays[0]), ("1", arrays[1]), ...``: the layout of
    `tf_nvm.experiments.data.Split.content_hash`. Since tf_nvm 0.4; 0.3 wrote ``"{i}:{dtype}:{shape list}\n"``
    headers, so shards written by 0.3 record other settings hashes: they still merge with each other (a merge
    compares the recorded hashes, it recomputes none), and a merge of a 0.3 shard with a 0.4 one is refused as
    "other settings".
    """
    return arrays_sha256((str(i), array) for i, array in enumerate(arrays))


@dataclasses.dataclass(frozen=True)
class ShardInfo:
    """What a Monte Carlo result records so that shards can be merged.

    Attributes:
        chips: its `ChipRange`.
        settings_hash: `settings_hash` of everything that sets the numbers besides the chips and the mapping
            (the simulation config, the data set, the test data's bytes, examples, task and metric).
        mapping_hash: `tf_nvm.mapping.content_hash` of the mapping simulated.
    """

    chips: ChipRange
    settings_hash: str
    mapping_hash: str

    def to_dict(self) -> dict[str, Any]:
        """``{"chips": [A, B], "settings_hash": ..., "mapping_hash": ...}`` (JSON-ready)."""
        return {"chips": [self.chips.start, self.chips.stop], "settings_hash": self.settings_hash,
                "mapping_hash": self.mapping_hash}

    @classmethod
    def from_dict(cls, value: Any, where: str) -> "ShardInfo":
        """Reads `to_dict`'s form.

        Raises:
            ShardMergeError: a missing or malformed entry (``where`` names the file).
        """
        fix = ("Fix: merge folders written by `tf-nvm simulate` (a Monte Carlo run, not a --sweep) of this "
               "version.")
        if not isinstance(value, dict):
            raise ShardMergeError(f"{where}: no shard record (\"shard\": {{\"chips\": [A, B], \"settings_hash\", "
                                  f"\"mapping_hash\"}}), got {type(value).__name__}. {fix}")
        chips = value.get("chips")
        hashes = [value.get("settings_hash"), value.get("mapping_hash")]
        if (not isinstance(chips, list) or len(chips) != 2 or not all(isinstance(c, int) for c in chips)
                or not all(isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)):
            raise ShardMergeError(f"{where}: malformed shard record {value!r}; expected chips [A, B] and two SHA-256 "
                                  f"hex digests. {fix}")
        try:
            return cls(ChipRange(*chips), str(hashes[0]), str(hashes[1]))  # both checked str above
        except SimulatorError as err:
            raise ShardMergeError(f"{where}: {err}") from None


def check_shards(infos: Sequence[ShardInfo], names: Sequence[str]) -> tuple[ChipRange, list[int]]:
    """Checks that shards form one run and returns their chip range and their order.

    Args:
        infos: list of `ShardInfo`.
        names: the shards' names for messages (folders), same order.

    Returns:
        (the merged `ChipRange`, the indices of ``infos`` in chip order).

    Raises:
        ShardMergeError: no shards, other settings or mapping, a gap or an overlap of chips.
    """
    if not infos:
        raise ShardMergeError("merge: no shards given. Fix: pass the folders of every shard, e.g. tf-nvm simulate "
                              "merge out/chips-0-50 out/chips-50-100 --out out/merged.")
    first = infos[0]
    for name, info in zip(names, infos):
        for field, what in (("settings_hash", "settings (config, data, examples, task, metric)"),
                            ("mapping_hash", "mapping")):
            if getattr(info, field) != getattr(first, field):
                raise ShardMergeError(
                    f"merge: shard {name} was simulated with other {what} than shard {names[0]} ({field} "
                    f"{getattr(info, field)[:16]}... vs {getattr(first, field)[:16]}...). Fix: merge only shards of "
                    "one run (the same source, --preset, --set, data, --examples, --task, --metric).")
    order = sorted(range(len(infos)), key=lambda i: (infos[i].chips.start, infos[i].chips.stop))
    for a, b in zip(order[:-1], order[1:]):
        left, right = infos[a].chips, infos[b].chips
        if right.start < left.stop:
            raise ShardMergeError(f"merge: shards {names[a]} (chips {left}) and {names[b]} (chips {right}) overlap on "
                                  f"chips {right.start}:{min(left.stop, right.stop)}. Fix: merge each chip once "
                                  "(drop one of them).")
        if right.start > left.stop:
            raise ShardMergeError(f"merge: chips {left.stop}:{right.start} are missing between shards {names[a]} "
                                  f"(chips {left}) and {names[b]} (chips {right}). Fix: run tf-nvm simulate ... "
                                  f"--chips {left.stop}:{right.start} and merge its folder too.")
    return ChipRange(infos[order[0]].chips.start, infos[order[-1]].chips.stop), order


def merge_results(results: Sequence[MonteCarloResult]) -> MonteCarloResult:
    """Concatenates the `MonteCarloResult` of contiguous shards (in chip order) into one run's.

    Every per-chip value is copied, never recomputed, so the merge equals one run of the whole range bit for
    bit; ``seconds`` is the sum of the shards' wall times.

    Raises:
        ShardMergeError: results of other tasks, metrics, examples or ideal scores, or chips not contiguous.
    """
    if not results:
        raise ShardMergeError("merge_results: no results given. Fix: pass one MonteCarloResult per shard.")
    first = results[0]
    expected = first.first_chip
    for i, result in enumerate(results):
        same = (result.task, result.metric, result.examples, result.ideal_metrics, list(result.metrics)) == (
            first.task, first.metric, first.examples, first.ideal_metrics, list(first.metrics))
        if not same:
            raise ShardMergeError(f"merge_results: result {i} scores task {result.task!r}, metric {result.metric!r} "
                                  f"on {result.examples} examples (ideal {result.ideal_metrics}); result 0 "
                                  f"{first.task!r}, {first.metric!r} on {first.examples} (ideal "
                                  f"{first.ideal_metrics}). Fix: merge only shards of one run.")
        if result.first_chip != expected:
            raise ShardMergeError(f"merge_results: result {i} starts at chip {result.first_chip}, expected "
                                  f"{expected} (the previous result's end). Fix: pass contiguous shards in chip "
                                  "order (check_shards).")
        expected += len(result.scores)
    metrics = {key: tuple(v for result in results for v in result.metrics[key]) for key in first.metrics}
    return MonteCarloResult(tuple(v for r in results for v in r.scores), tuple(v for r in results for v in r.agreement),
                            first.ideal_score, first.examples, float(sum(r.seconds for r in results)), first.task,
                            first.metric, metrics, dict(first.ideal_metrics), first.first_chip)


def run_parallel(function: Callable[[Any], Any], jobs: Iterable[Any], workers: int) -> list[Any]:
    """``[function(job) for job in jobs]`` in ``workers`` spawned processes (each imports its own TensorFlow).

    ``spawn``, not ``fork``: a forked TensorFlow runtime (its thread pools) is not safe to use in the child.
    ``function`` must be importable by name (a module-level function) and jobs picklable.

    Raises:
        SimulatorError: ``workers`` is not an integer >= 1; a worker's own error is re-raised as is.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SimulatorError(f"run_parallel: workers must be an integer >= 1, got {workers!r}. Fix: e.g. --workers 2.")
    jobs = list(jobs)
    if workers == 1 or len(jobs) <= 1:
        return [function(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        return list(pool.map(function, jobs))
