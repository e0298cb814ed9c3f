"""The one atomic-write helper: complete files or none, readable by others."""

import json
import stat

import pytest

from zsser_modules.atomic_write import atomic_open, write_json_atomic, write_text_atomic
from zsser_modules.data_prep.manifest import read_manifest, write_manifest

ROW = dict(ID="demo_a", duration=1.0, wav="/x/a.wav", emo="sad", spk_id="demo_s1",
           lang="en", corpus="demo", spk_confounded=0)  # fmt: skip


def test_written_files_are_complete_and_readable_by_others(tmp_path):
    text = write_text_atomic(tmp_path / "a.txt", "héllo")
    data = write_json_atomic(tmp_path / "r.json", {"uar": 0.5}, sort_keys=True)
    with atomic_open(tmp_path / "b.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert text.read_text(encoding="utf-8") == "héllo"
    assert json.loads(data.read_text()) == {"uar": 0.5}
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    for path in (text, data, tmp_path / "b.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "r.json"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    manifest = write_manifest([ROW], tmp_path / "m.csv")
    with pytest.raises(ValueError, match="Duplicate ID"):
        write_manifest([ROW, ROW], manifest)
    assert len(read_manifest(manifest)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.csv"]


def test_only_whole_file_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(tmp_path / "a.txt", "a"):
            pass
    assert list(tmp_path.iterdir()) == []
