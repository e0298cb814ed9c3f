"""The modules lifted into a second SpeechBrain recipe, as docs/modules.md says.

``tests/reuse_recipe/train_reuse.py`` is an IEMOCAP-shaped single-corpus recipe
(the toolkit's host shape: its ``init_optimizers`` optimises ``hparams.model``
and the encoder only) that adds a SupCon projection head and a speaker
adversary following the snippets of docs/modules.md; the snippets must appear
in it verbatim. It runs on a tiny corpus built here, on 1 process and on 2
gloo processes (torchrun), and the tests check that every added module trains
(its weights change), is checkpointed (the kept checkpoint holds its weights
of that epoch), stays identical across DDP processes, and that the reversal
coefficient follows ``dann_lambda`` at the progress computed here from the
per-process number of batches, also after resuming.
"""

import math
import multiprocessing
import os
import re
import socket
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from recipe_utils import REPO_ROOT
from yaml_consistency import check_yaml_vs_script

from zsser_modules import ModuleSetupError, dann_lambda

pytestmark = pytest.mark.slow

RECIPE_DIR = REPO_ROOT / "tests" / "reuse_recipe"
HPARAMS = RECIPE_DIR / "hparams" / "train_reuse.yaml"
DOC = REPO_ROOT / "docs" / "modules.md"
sys.path.insert(0, str(RECIPE_DIR))
import recorded_run  # noqa: E402
import train_reuse  # noqa: E402

EMOTIONS = ("neutral", "happy", "angry", "sad")
SPEAKERS = ("s1", "s2", "s3", "s4", "s5", "s6")
CONFOUNDED = "s6"  # recorded in one emotion only
N_TRAIN = 24
BATCH = 4
EPOCHS = 2
ADDED = ("projection", "speaker_adversary")
HOST = ("encoder", "output_mlp")
SECTION = "### Using them in a SpeechBrain recipe"


def write_corpus(root: Path) -> Path:
    """Tiny wavs (a tone per emotion plus noise) and the three CSV manifests."""
    rng = np.random.default_rng(0)
    rate = 16000
    t = np.arange(int(0.2 * rate)) / rate
    rows = {"train": [], "valid": [], "test": []}
    for spk in SPEAKERS:
        for emo in EMOTIONS:
            emo = "angry" if spk == CONFOUNDED else emo
            rows["train"].append((spk, emo, int(spk == CONFOUNDED)))
    for split in ("valid", "test"):
        rows[split] = [(SPEAKERS[i % 5], EMOTIONS[i % 4], 0) for i in range(8)]
    for split, items in rows.items():
        lines = ["ID,duration,wav,emo,spk_id,spk_confounded"]
        for i, (spk, emo, confounded) in enumerate(items):
            uid = f"{split}_{i:02d}"
            freq = 150.0 * (1 + EMOTIONS.index(emo))
            wav = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(
                t.size
            )
            sf.write(str(root / f"{uid}.wav"), wav.astype(np.float32), rate)
            lines.append(f"{uid},0.2,$data_root/{uid}.wav,{emo},{spk},{confounded}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("reuse_corpus"))


def recipe_args(corpus, output, *extra):
    return [
        str(HPARAMS),
        f"--data_folder={corpus}",
        f"--output_folder={output}",
        "--device=cpu",
        "--noprogressbar",
        *extra,
    ]


def batches_per_process(world_size):
    """What the per-process training loader holds (DistributedSampler pads)."""
    return math.ceil(math.ceil(N_TRAIN / world_size) / BATCH)


def load_record(output, rank=0):
    return torch.load(Path(output) / f"record_rank{rank}.pt")


def check_schedule(record, world_size):
    """Every training batch used dann_lambda(optimizer_step / total)."""
    total = batches_per_process(world_size) * EPOCHS
    steps = [batch["optimizer_step"] for batch in record["batches"]]
    assert steps == list(range(steps[0], total)), steps
    for batch in record["batches"]:
        expected = dann_lambda(batch["optimizer_step"] / total, gamma=10.0)
        assert batch["coefficient"] == pytest.approx(expected, abs=1e-12)


def saved_weights(checkpoint, name):
    """A module's weights in a checkpoint folder."""
    if name == "output_mlp":  # saved inside the host's `model` (a ModuleList)
        state = torch.load(checkpoint / "model.ckpt")
        return {key.removeprefix("0."): value for key, value in state.items()}
    return torch.load(checkpoint / f"{name}.ckpt")


def check_trained_and_checkpointed(record, output):
    """Every module's weights changed; the kept checkpoint holds them."""
    for name in HOST + ADDED:
        for key, before in record["initial"][name].items():
            assert not torch.equal(before, record["final"][name][key]), (name, key)
    for name in ADDED:
        assert name in record["recoverables"]
    (checkpoint,) = (Path(output) / "save").glob("CKPT+*")
    epoch = int((checkpoint / "counter.ckpt").read_text())
    for name in HOST + ADDED:
        saved = saved_weights(checkpoint, name)
        expected = record["saved"][epoch][name]
        assert saved.keys() == expected.keys(), name
        for key in saved:
            assert torch.equal(saved[key], expected[key]), (name, key)


# -- the docs' snippets are the recipe's lines ------------------------------------


def doc_blocks():
    """(language, lines) of the code blocks of the docs' recipe section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    return [
        (lang, body.strip("\n").splitlines())
        for lang, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    ]


def appears_in(block, source_lines):
    """Whether ``block``'s lines occur in order in ``source_lines``.

    Lines are compared without surrounding whitespace; consecutive block lines
    must be consecutive in the source, except across a ``...`` line, which
    stands for any number of source lines.
    """
    block = [line.strip() for line in block]
    source = [line.strip() for line in source_lines]
    pieces, piece = [], []
    for line in block:
        if line == "...":
            pieces.append(piece)
            piece = []
        elif line:
            piece.append(line)
    pieces.append(piece)
    source = [line for line in source if line]
    start = 0
    for piece in pieces:
        if not piece:
            continue
        for i in range(start, len(source) - len(piece) + 1):
            if source[i : i + len(piece)] == piece:
                start = i + len(piece)
                break
        else:
            return False
    return True


def test_the_docs_snippets_are_the_recipes_lines():
    files = {
        "python": (RECIPE_DIR / "train_reuse.py").read_text().splitlines(),
        "yaml": HPARAMS.read_text().splitlines(),
    }
    blocks = doc_blocks()
    assert {lang for lang, _ in blocks} == {"python", "yaml"}
    for lang, block in blocks:
        assert appears_in(block, files[lang]), (
            f"{lang} snippet not in the recipe:\n" + "\n".join(block)
        )


def test_the_recipe_is_consistent_with_its_yaml():
    # SpeechBrain's rules (tests/yaml_consistency.py): every key used, every
    # key read defined, every self.modules.x listed under modules:.
    assert check_yaml_vs_script(HPARAMS, RECIPE_DIR / "train_reuse.py") == []


def test_snippet_matching_rejects_what_differs():
    source = ["a = 1", "b = 2", "c = 3", "d = 4"]
    assert appears_in(["b = 2", "c = 3"], source)
    assert appears_in(["a = 1", "...", "d = 4"], source)
    assert not appears_in(["a = 1", "c = 3"], source)
    assert not appears_in(["c = 3", "...", "a = 1"], source)


# -- runs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def single_run(corpus, tmp_path_factory):
    output = tmp_path_factory.mktemp("reuse_1proc")
    recorded_run.main(recipe_args(corpus, output))
    return output


def test_one_process_trains_checkpoints_and_schedules(single_run):
    record = load_record(single_run)
    assert len(record["batches"]) == batches_per_process(1) * EPOCHS
    check_schedule(record, world_size=1)
    check_trained_and_checkpointed(record, single_run)
    log = (single_run / "train_log.txt").read_text()
    assert "reversal:" in log


def test_resumed_run_continues_the_schedule_and_the_weights(
    corpus, single_run, tmp_path
):
    per_epoch = batches_per_process(1)
    # Stop after epoch 1 (its checkpoint is saved), then resume epoch 2.
    recorded_run.main(
        recipe_args(corpus, tmp_path, f"--optimizer_step_limit={per_epoch}")
    )
    recorded_run.main(recipe_args(corpus, tmp_path))
    resumed = load_record(tmp_path)
    assert [b["epoch"] for b in resumed["batches"]] == [2] * per_epoch
    check_schedule(resumed, world_size=1)
    whole = load_record(single_run)
    assert [b["coefficient"] for b in resumed["batches"]] == [
        b["coefficient"] for b in whole["batches"][per_epoch:]
    ]
    for name in HOST + ADDED:
        for key, value in whole["final"][name].items():
            assert torch.allclose(resumed["final"][name][key], value, atol=1e-7), (
                name,
                key,
            )


def test_a_host_that_leaves_the_added_modules_out_is_refused(
    corpus, tmp_path, monkeypatch
):
    # The trap of the issue: IEMOCAP's init_optimizers optimises hparams.model
    # only; without optimize_and_checkpoint the added modules would stay random.
    monkeypatch.setattr(train_reuse, "optimize_and_checkpoint", lambda *a, **k: None)
    with pytest.raises(ModuleSetupError) as error:
        train_reuse.main(recipe_args(corpus, tmp_path))
    message = str(error.value)
    assert "'projection'" in message and "'speaker_adversary'" in message
    assert "in no optimizer" in message and "not saved by the checkpointer" in message
    assert "\n" not in message


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_process(rank, port, argv, output):
    """One of 2 gloo processes, forked from this one (no second import of torch).

    The environment is torchrun's; the recipe goes distributed from RANK and
    LOCAL_RANK as under torchrun. ``os._exit`` keeps pytest's exit handlers
    out of the child.
    """
    code = 1
    try:
        torch.set_num_threads(1)  # as DataLoader workers: no OpenMP pool after fork
        os.environ.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        recorded_run.main(argv)
        torch.distributed.destroy_process_group()
        code = 0
    except BaseException:
        (output / f"error_rank{rank}.txt").write_text(traceback.format_exc())
    finally:
        os._exit(code)


@pytest.fixture(scope="module")
def ddp_run(corpus, tmp_path_factory):
    """The recipe on 2 gloo processes (what torchrun --nproc_per_node=2 runs)."""
    output = tmp_path_factory.mktemp("reuse_2proc")
    argv = [*recipe_args(corpus, output), "--distributed_backend=gloo"]
    context = multiprocessing.get_context("fork")
    port = free_port()
    processes = [
        context.Process(target=ddp_process, args=(rank, port, argv, output))
        for rank in (0, 1)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    for process in processes:
        if process.is_alive():
            process.kill()
    errors = [path.read_text() for path in sorted(output.glob("error_rank*.txt"))]
    assert not errors, "\n".join(errors)
    assert [process.exitcode for process in processes] == [0, 0]
    return output


def test_two_processes_train_checkpoint_and_schedule_alike(ddp_run):
    records = [load_record(ddp_run, rank) for rank in (0, 1)]
    for record in records:
        # 24 utterances, 2 processes, batches of 4: 3 batches per process and
        # epoch (a length guessed from the dataset size would give 6).
        assert len(record["batches"]) == batches_per_process(2) * EPOCHS
        check_schedule(record, world_size=2)
    check_trained_and_checkpointed(records[0], ddp_run)
    # DDP kept the processes' weights identical (the adversary's forward went
    # through its wrapper, so its gradients were averaged too).
    for name in HOST + ADDED:
        for key, value in records[0]["final"][name].items():
            assert torch.equal(records[1]["final"][name][key], value), (name, key)
