"""Which code made a file: the tf_nvm version and, for a git checkout of tf_nvm, its commit.

Every file the product writes about a result (run folders' ``run.json`` and step markers, the
mapping file's metadata, the pipeline's report) records `current()`. A step whose marker records
other code than the running one is *stale*: `stale_reason` says why, and `tf-nvm run` refuses to mix
it with new results (`tf_nvm.pipeline.steps.run_experiment`).

The commit is read with ``git rev-parse HEAD`` in the folder holding the ``tf_nvm`` package, only
when that folder is a tf_nvm checkout (it holds ``setup.cfg`` and ``.git``): an installed wheel records
no commit (None), and then the version alone identifies the code. Whether the checkout had
uncommitted changes is recorded (``git_dirty``) but not compared: a developer's edits between two
commands are not a new release.
"""

import functools
import os
import subprocess
from typing import Any

from tf_nvm.core.version import __version__

__all__ = ["current", "describe", "stale_reason", "git_commit"]

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_GIT_SECONDS = 5.0
"""Longest wait [s] for one git command (a hung or absent git gives no commit, never an error)."""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", _ROOT, *args], capture_output=True, text=True, timeout=_GIT_SECONDS,
                              check=False, env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the tf_nvm checkout this package runs from: 40 hex digits and a bool, or (None, None)."""
    if not (os.path.isfile(os.path.join(_ROOT, "setup.cfg")) and os.path.exists(os.path.join(_ROOT, ".git"))):
        return None, None
    commit = _git("rev-parse", "HEAD")
    if not commit or len(commit) != 40:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def current() -> dict[str, Any]:
    """The running code: ``{"tf_nvm_version": str, "git_commit": str or None, "git_dirty": bool or None}``."""
    commit, dirty = git_commit()
    return {"tf_nvm_version": __version__, "git_commit": commit, "git_dirty": dirty}


def describe(record: Any) -> str:
    """``"tf_nvm 0.3.0 (commit 1a2b3c4d5e6f)"`` for a `current()`-style dict (missing keys: ``unknown``)."""
    record = record if isinstance(record, dict) else {}
    text = f"tf_nvm {record.get('tf_nvm_version') or 'unknown version'}"
    commit = record.get("git_commit")
    return f"{text} (commit {commit[:12]})" if isinstance(commit, str) and commit else text


def stale_reason(record: Any) -> str | None:
    """Why a result recorded with ``record`` (a `current()`-style dict) is stale, or None when the code is the same.

    The version must match; the commit must match when both the record and the running code have one
    (a record without a commit, e.g. written by a wheel or by tf_nvm 0.2.0, is judged by its version).
    """
    now = current()
    record = record if isinstance(record, dict) else {}
    then_commit, now_commit = record.get("git_commit"), now["git_commit"]
    if record.get("tf_nvm_version") != now["tf_nvm_version"] or (then_commit and now_commit
                                                                  and then_commit != now_commit):
        return f"made by {describe(record)}, this is {describe(now)}"
    return None
