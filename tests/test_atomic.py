import json

import pytest

from tf_nvm.core.atomic import atomic_path, write_json_atomic


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError, match="injected"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("injected")
    assert list(tmp_path.iterdir()) == []
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise RuntimeError("injected")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_temporary_file_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "model.keras").read_bytes() == b"x"
