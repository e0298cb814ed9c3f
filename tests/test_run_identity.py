"""Run identity: which folders are refused, resumed, replaced or archived."""

import json
from pathlib import Path

import pytest

from zsser_modules.run_identity import (
    IDENTITY_FILE,
    RunIdentity,
    RunIdentityError,
    check_run_folder,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(folder: Path) -> None:
    (folder / "save" / "CKPT+2026-12-04+00-00-00+00").mkdir(parents=True)


def test_overwrite_trains_a_finished_run_with_the_same_settings_afresh(tmp_path):
    run = tmp_path / "run"
    assert check_run_folder(run, RunIdentity({"lr": 0.1})) == "new"
    (run / "results.json").write_text("{}")
    assert check_run_folder(run, RunIdentity({"lr": 0.1})) == "same"
    state = check_run_folder(run, RunIdentity({"lr": 0.1}), overwrite=True)
    assert state.startswith("archived:")
    assert (Path(state[9:]) / "results.json").is_file()
    assert not (run / "results.json").exists()


def test_overwrite_resumes_an_unfinished_run_with_the_same_settings(tmp_path):
    run = tmp_path / "run"
    check_run_folder(run, RunIdentity({"lr": 0.1}))
    _checkpoint(run)
    assert check_run_folder(run, RunIdentity({"lr": 0.1}), overwrite=True) == "same"
    assert not list(tmp_path.glob("run.replaced-*"))


def test_an_attempt_without_checkpoint_does_not_block_a_corrected_command(tmp_path):
    run = tmp_path / "run"
    check_run_folder(run, RunIdentity({"languages": ["en", "de"]}))
    # it stopped before its first checkpoint (say, a data preparation error)
    fixed = RunIdentity({"languages": ["en", "de", "fr"]})
    assert check_run_folder(run, fixed) == "new"
    stored = json.loads((run / IDENTITY_FILE).read_text())
    assert RunIdentity.load(run / IDENTITY_FILE)[0].hash == fixed.hash, stored
    # once it has a checkpoint, other settings are refused again
    _checkpoint(run)
    with pytest.raises(RunIdentityError, match="languages"):
        check_run_folder(run, RunIdentity({"languages": ["en"]}))


@pytest.mark.parametrize("encoder", ["ssl", "whisper"])
def test_download_cache_folders_are_not_identity(encoder):
    hparams = REPO_ROOT / "hparams" / "demo.yaml"
    ids = [
        RunIdentity.from_hparams(
            hparams, f"encoder: {encoder}\nssl_folder: {folder}\n", {}
        ).hash
        for folder in ("/a/hf", "/b/hf")
    ]
    assert ids[0] == ids[1]


def test_a_bad_setting_is_refused_before_a_run_identity_is_recorded(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "recipes" / "train.py"),
            str(REPO_ROOT / "hparams" / "demo.yaml"),
            f"--output_folder={folder}",
            "--selection=uar",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "selection must be one of ['mean_language_uar', 'pooled_uar', 'last']" in (
        done.stderr
    )
    # (loading the YAML makes the checkpointer's folder, nothing else)
    assert not (folder / IDENTITY_FILE).exists()


@pytest.mark.parametrize(
    "old, key",
    [
        ("protocol: speaker\n", "protocol"),
        ("paper_split: speaker_held_out\n", "paper_split"),
        ("batch_sampler: random\n", "batch_sampler"),
    ],
)
def test_a_run_of_another_protocol_split_or_sampler_is_never_resumed(
    tmp_path, old, key
):
    """en_de.yaml changed meaning with the paper protocol: an old folder is refused."""
    hparams = REPO_ROOT / "hparams" / "en_de.yaml"
    run = tmp_path / "run"
    check_run_folder(run, RunIdentity.from_hparams(hparams, old, {}))
    _checkpoint(run)
    with pytest.raises(RunIdentityError, match=key):
        check_run_folder(run, RunIdentity.from_hparams(hparams, "", {}))


def test_a_run_folder_from_before_the_paper_protocol_is_refused(tmp_path):
    """An identity without the protocol's keys (an older release) differs."""
    hparams = REPO_ROOT / "hparams" / "en_de.yaml"
    run = tmp_path / "run"
    now = RunIdentity.from_hparams(hparams, "", {})
    old = {
        k: v for k, v in now.settings.items() if k not in ("protocol", "batch_sampler")
    }
    check_run_folder(run, RunIdentity(old))
    _checkpoint(run)
    with pytest.raises(RunIdentityError, match="protocol") as error:
        check_run_folder(run, now)
    assert "batch_sampler" in str(error.value)


def test_option_groups_are_not_identity_but_their_keys_are(tmp_path):
    """data_options etc. restate top-level keys: left out, the keys decide."""
    from zsser_modules.run_identity import OPTION_GROUPS

    hparams = REPO_ROOT / "hparams" / "demo.yaml"
    base = RunIdentity.from_hparams(hparams, None, {})
    assert not set(OPTION_GROUPS) & set(base.settings)
    other = RunIdentity.from_hparams(hparams, "protocol: speaker\n", {})
    assert other.differences(base) == [("protocol", "speaker", "paper")]
    # The same file without its groups (as before they existed): same identity.
    lines, skipping = [], False
    for line in hparams.read_text(encoding="utf-8").splitlines():
        if line.split(":")[0] in OPTION_GROUPS:
            skipping = True
        elif skipping and not line.startswith("    "):
            skipping = False
        if not skipping:
            lines.append(line)
    without = tmp_path / "demo.yaml"
    without.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "data_options" not in without.read_text()
    assert RunIdentity.from_hparams(without, None, {}).hash == base.hash
