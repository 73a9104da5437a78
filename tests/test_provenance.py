"""`tf_nvm.core.provenance`: which code made a file, and when a recorded result is stale."""

import os
import subprocess

import pytest

import tf_nvm
from tf_nvm.core import provenance
from tf_nvm.experiments import runs
from tf_nvm.core.errors import RunFolderError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_current_names_the_version_and_the_checkout_commit():
    now = provenance.current()
    assert now["tf_nvm_version"] == tf_nvm.__version__
    if os.path.exists(os.path.join(ROOT, ".git")) and os.path.dirname(tf_nvm.__file__) == os.path.join(ROOT, "tf_nvm"):
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        assert now["git_commit"] == head.stdout.strip() and isinstance(now["git_dirty"], bool)
    assert provenance.describe(now).startswith(f"tf_nvm {tf_nvm.__version__}")


@pytest.mark.parametrize("record, stale", [
    ({}, "made by tf_nvm unknown version, this is"),
    ({"tf_nvm_version": "0.1.0"}, "made by tf_nvm 0.1.0, this is"),
    ({"tf_nvm_version": "VERSION", "git_commit": "f" * 40}, "made by tf_nvm VERSION (commit ffffffffffff), this is"),
    ({"tf_nvm_version": "VERSION", "git_commit": None}, None),  # no commit recorded (a wheel): the version decides
    ({"tf_nvm_version": "VERSION", "git_commit": "HEAD"}, None),
])
def test_stale_reason_compares_the_version_and_the_commit_when_both_have_one(monkeypatch, record, stale):
    monkeypatch.setattr(provenance, "current", lambda: {"tf_nvm_version": "0.3.0", "git_commit": "a" * 40,
                                                         "git_dirty": False})
    record = {k: ("0.3.0" if v == "VERSION" else "a" * 40 if v == "HEAD" else v) for k, v in record.items()}
    reason = provenance.stale_reason(record)
    if stale is None:
        assert reason is None
    else:
        assert reason == f"{stale.replace('VERSION', '0.3.0')} tf_nvm 0.3.0 (commit aaaaaaaaaaaa)"


def test_step_markers_record_the_code_and_say_when_it_changed(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    runs.mark_done(folder, "export", {"files": 2})
    assert runs.step_stale(folder, "export") is None and runs.step_stale(folder, "cost") is None
    monkeypatch.setattr(provenance, "current", lambda: {"tf_nvm_version": "9.9.9", "git_commit": None,
                                                         "git_dirty": None})
    assert runs.step_stale(folder, "export").startswith(f"made by tf_nvm {tf_nvm.__version__}")
    assert runs.step_stale(folder, "export").endswith(", this is tf_nvm 9.9.9")
    (folder / "steps" / "export.json").write_text("[1]")
    with pytest.raises(RunFolderError, match=r"export\.json holds a JSON list; expected a JSON object \(\{\.\.\.\}\)\. Fix: delete "):
        runs.step_stale(folder, "export")
