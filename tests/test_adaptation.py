"""Parameter-efficient adaptation (zsser_modules/adaptation.py) and
language-matched backbones (zsser_modules/backbones.py).

Tiny random wav2vec 2.0, WavLM and Whisper models (tests/encoder_utils.py);
the real Whisper-base only when ZSSER_WHISPER_BASE names its folder
(../shared/real/whisper_base.sh), skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from encoder_utils import make_tiny_ssl, make_tiny_whisper
from speechbrain.nnet.adapters import HoulsbyAdapterLinear
from speechbrain.utils.checkpoints import Checkpointer

from zsser_modules.adaptation import (
    AdaptationError,
    AdaptedSSLLayerPooling,
    AdaptedWhisperLayerPooling,
    BottleneckAdapter,
    GatedLoRA,
    check_adaptation,
    is_adapted,
)
from zsser_modules.backbones import (
    PAPER_SSL_SOURCES,
    BackboneError,
    backbone_language,
    resolve_ssl_source,
)
from zsser_modules.encoders import SSLLayerPooling, WhisperLayerPooling
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key

REAL = os.environ.get("ZSSER_WHISPER_BASE")
needs_real = pytest.mark.skipif(
    not (REAL and Path(REAL, "model.safetensors").is_file()),
    reason="set ZSSER_WHISPER_BASE to a Whisper-base folder (whisper_base.sh)",
)
KINDS = ("lora", "adapter", "lora+adapter")
SMALL = {"lora_rank": 2, "lora_alpha": 4.0, "adapter_size": 4}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("adaptation")
    return {
        "wav2vec2": make_tiny_ssl(
            root / "w2v", kind="wav2vec2", feat_extract_norm="group"
        ),
        "wavlm": make_tiny_ssl(root / "wavlm", kind="wavlm"),
        "whisper": make_tiny_whisper(root / "whisper"),
        "hf": root / "hf",
    }


def build(folders, family, **kwargs):
    """An adapted encoder of the tiny model of ``family``."""
    cls = AdaptedWhisperLayerPooling if family == "whisper" else AdaptedSSLLayerPooling
    return cls(str(folders[family]), save_path=str(folders["hf"]), **kwargs)


def frozen(folders, family):
    """The plain frozen encoder of the same model."""
    cls = WhisperLayerPooling if family == "whisper" else SSLLayerPooling
    return cls(str(folders[family]), save_path=str(folders["hf"]))


def batch(seed=0):
    """Two clips (1 s and 0.6 s) in a padded batch."""
    wavs = torch.randn(2, 16000, generator=torch.Generator().manual_seed(seed))
    return wavs, torch.tensor([1.0, 0.6])


def train_steps(encoder, steps=3, lr=1e-2):
    """A few Adam steps on the adapter parameters (a regression loss)."""
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    target = torch.randn(2, encoder.num_layers, encoder.output_size)
    encoder.train()
    for step in range(steps):
        optimizer.zero_grad()
        wavs, lens = batch(step)
        loss = (encoder(wavs, lens) - target).square().mean()
        loss.backward()
        optimizer.step()
    encoder.eval()


def backbone_state(encoder):
    """Copies of every tensor that is not an adapter's."""
    adapters = set(encoder.adapter_names)
    return {
        name: tensor.detach().clone()
        for name, tensor in encoder.state_dict().items()
        if name not in adapters
    }


# ---------------------------------------------------------------------------
# SpeechBrain's classes: the faults our subclasses fix (measured, pinned)


def test_speechbrain_houlsby_adapter_freezes_nothing_and_does_not_start_at_identity():
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 8)
    adapter = HoulsbyAdapterLinear(linear, 2)
    x = torch.randn(3, 8)
    assert linear.weight.requires_grad  # "frozen" by a module attribute only
    assert not torch.equal(adapter(x), linear(x))  # random up-projection


def test_our_adapter_and_lora_freeze_the_layer_and_start_at_identity():
    x = torch.randn(3, 8)
    for gate in (True, False):
        for wrapper in (
            BottleneckAdapter(torch.nn.Linear(8, 8), 2, gate=gate),
            GatedLoRA(torch.nn.Linear(8, 8), 2, 4.0, gate=gate),
        ):
            inner = getattr(wrapper, "pretrained_linear", None) or (
                wrapper.pretrained_module
            )
            assert not any(p.requires_grad for p in inner.parameters())
            assert torch.equal(wrapper(x), inner(x))
            trainable = {n for n, p in wrapper.named_parameters() if p.requires_grad}
            assert ("gate.logit" in trainable) == gate
            assert all(n.startswith(("adapter_", "gate.")) for n in trainable)


# ---------------------------------------------------------------------------
# Adapted encoders: freezing, identity at step 0, training, state


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
@pytest.mark.parametrize("adaptation", KINDS)
def test_only_adapters_train_and_the_backbone_stays_bitwise_equal(
    folders, family, adaptation
):
    torch.manual_seed(0)
    encoder = build(folders, family, adaptation=adaptation, **SMALL)
    reference = frozen(folders, family)
    assert is_adapted(encoder) and not is_adapted(reference)
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable == list(encoder.adapter_names) and trainable
    assert all(
        ".adapter_down_proj." in n
        or ".adapter_up_proj." in n
        or n.endswith(".gate.logit")
        for n in trainable
    )
    lora, adapters = check_adaptation(adaptation)
    assert len(encoder.adapted_layers) == 2 * (len(lora) + len(adapters))  # 2 layers

    # The adapted model equals the pretrained one before the first step.
    encoder.eval()
    wavs, lens = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(wavs, lens), reference(wavs, lens), rtol=0, atol=1e-6
        )

    before_backbone = backbone_state(encoder)
    before_adapters = encoder.adapter_state_dict()
    train_steps(encoder)
    after_backbone = backbone_state(encoder)
    assert before_backbone.keys() == after_backbone.keys()
    assert all(
        torch.equal(before_backbone[k], after_backbone[k]) for k in before_backbone
    )
    after_adapters = encoder.adapter_state_dict()
    unchanged = [
        k for k in after_adapters if torch.equal(after_adapters[k], before_adapters[k])
    ]
    assert unchanged == []
    with torch.no_grad():
        assert not torch.allclose(encoder(wavs, lens), reference(wavs, lens), atol=1e-4)


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_without_gates_no_gate_parameter_and_identity_at_step_0(folders, family):
    encoder = build(
        folders, family, adaptation="lora+adapter", gate=False, **SMALL
    ).eval()
    assert not any("gate" in n for n in encoder.adapter_names)
    wavs, lens = batch()
    with torch.no_grad():
        torch.testing.assert_close(
            encoder(wavs, lens), frozen(folders, family)(wavs, lens), rtol=0, atol=1e-6
        )


@pytest.mark.parametrize("family", ["wav2vec2", "whisper"])
def test_adapter_state_round_trips_through_state_dict_and_checkpoints(
    folders, family, tmp_path
):
    torch.manual_seed(0)
    trained = build(folders, family, adaptation="lora+adapter", **SMALL)
    train_steps(trained, steps=2)
    wavs, lens = batch(5)
    with torch.no_grad():
        expected = trained(wavs, lens)

    fresh = build(folders, family, adaptation="lora+adapter", **SMALL).eval()
    result = fresh.load_state_dict(trained.adapter_state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    with torch.no_grad():
        assert torch.equal(fresh(wavs, lens), expected)

    # SpeechBrain's Checkpointer: the file holds the adapter tensors only.
    checkpointer = Checkpointer(tmp_path / "ckpt", {"encoder": trained})
    saved = checkpointer.save_checkpoint()
    on_disk = torch.load(saved.paramfiles["encoder"], weights_only=True)
    assert sorted(on_disk) == sorted(trained.adapter_names)
    other = build(folders, family, adaptation="lora+adapter", **SMALL).eval()
    Checkpointer(tmp_path / "ckpt", {"encoder": other}).recover_if_possible()
    with torch.no_grad():
        assert torch.equal(other(wavs, lens), expected)

    # A full state dict still loads as torch does.
    full = build(folders, family, adaptation="lora+adapter", **SMALL).eval()
    full.load_state_dict(trained.state_dict())
    with torch.no_grad():
        assert torch.equal(full(wavs, lens), expected)


def test_checkpoint_averaging_and_bf16_autocast(folders, tmp_path):
    """SpeechBrain's checkpoint averaging (selection_average) loads adapter states."""
    from zsser_modules.selection import average_into

    torch.manual_seed(0)
    encoder = build(folders, "wav2vec2", adaptation="lora+adapter", **SMALL)
    checkpointer = Checkpointer(tmp_path / "ckpt", {"encoder": encoder})
    states = []
    for epoch in range(2):
        train_steps(encoder, steps=2)
        states.append(encoder.adapter_state_dict())
        checkpointer.save_checkpoint(meta={"epoch": epoch})
    average_into(checkpointer.find_checkpoints(max_key="epoch"), {"encoder": encoder})
    got = encoder.adapter_state_dict()
    for name in got:
        torch.testing.assert_close(got[name], (states[0][name] + states[1][name]) / 2)
    # The Brain's --precision=bf16: autocast around the forward pass.
    encoder.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder(*batch())
    out.float().square().mean().backward()
    assert all(
        p.grad is not None for n, p in encoder.named_parameters() if p.requires_grad
    )


def _ddp_worker(rank, folder, hf, port, out):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    torch.manual_seed(rank)  # different adapter init per rank: DDP broadcasts rank 0's
    encoder = AdaptedSSLLayerPooling(
        folder, save_path=hf, adaptation="lora+adapter", **SMALL
    )
    before = backbone_state(encoder)
    model = torch.nn.parallel.DistributedDataParallel(encoder)  # no unused parameters
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2
    )
    encoder.train()
    for step in range(3):
        optimizer.zero_grad()
        wavs, lens = batch(10 * step + rank)  # each rank its own data
        model(wavs, lens).square().mean().backward()
        optimizer.step()
    unchanged = all(
        torch.equal(before[k], v) for k, v in backbone_state(encoder).items()
    )
    torch.save(
        {"adapters": encoder.adapter_state_dict(), "backbone": unchanged},
        f"{out}/{rank}.pt",
    )
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_keeps_ranks_in_step(folders, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(
        _ddp_worker,
        args=(str(folders["wav2vec2"]), str(folders["hf"]), port, str(tmp_path)),
        nprocs=2,
    )
    ranks = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["backbone"] and ranks[1]["backbone"]
    for name, tensor in ranks[0]["adapters"].items():
        assert torch.equal(tensor, ranks[1]["adapters"][name]), name


def test_a_partial_or_mismatched_adapter_state_is_refused(folders):
    encoder = build(folders, "wav2vec2", adaptation="lora+adapter", **SMALL)
    state = encoder.adapter_state_dict()
    partial = dict(list(state.items())[:-1])
    with pytest.raises(AdaptationError, match="missing"):
        encoder.load_state_dict(partial)
    lora_only = build(folders, "wav2vec2", adaptation="lora", **SMALL)
    with pytest.raises(AdaptationError, match="unexpected"):
        lora_only.load_state_dict(state)


def test_adapted_encoders_are_never_cached(folders, tmp_path):
    encoder = build(folders, "wav2vec2", adaptation="lora", **SMALL)
    with pytest.raises(ValueError, match="never cached"):
        encoder_cache_key(encoder)
    cache = FeatureCache(
        tmp_path / "cache", encoder_cache_key(frozen(folders, "wav2vec2"))
    )
    encoder.requires_grad_(False)  # even with its adapters frozen
    with pytest.raises(ValueError, match="never cached"):
        cache.fill(encoder, [])


def test_layers_above_the_highest_kept_one_are_not_adapted(folders):
    encoder = build(folders, "wav2vec2", adaptation="lora", layers=[0, 1], **SMALL)
    assert encoder.adapted_layers == ["0.attention.q_proj", "0.attention.v_proj"]
    with pytest.raises(AdaptationError, match="nothing to adapt"):
        build(folders, "wav2vec2", adaptation="lora", layers=[0], **SMALL)


def test_wavlm_attention_targets_are_refused_and_its_ffn_adapts(folders):
    with pytest.raises(AdaptationError, match="cannot be adapted on wavlm"):
        build(folders, "wavlm", adaptation="lora", **SMALL)
    encoder = build(
        folders,
        "wavlm",
        adaptation="lora+adapter",
        lora_targets=["ffn_in"],
        adapter_targets=["ffn_out"],
        **SMALL,
    )
    before = backbone_state(encoder)
    train_steps(encoder, steps=3)
    assert all(torch.equal(before[k], v) for k, v in backbone_state(encoder).items())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"adaptation": "none"}, "encoder_adaptation must be one of"),
        ({"adaptation": "prefix"}, "encoder_adaptation must be one of"),
        ({"adaptation": "lora", "lora_targets": ["query"]}, "lora_targets must be"),
        ({"adaptation": "lora", "lora_targets": []}, "lora_targets must be"),
        (
            {"adaptation": "lora+adapter", "lora_targets": ["attn_out"]},
            "share",
        ),
        ({"adaptation": "lora", "freeze": False}, "takes no 'freeze'"),
        ({"adaptation": "lora", "lora_rank": 0}, "lora_rank"),
    ],
)
def test_bad_settings_stop_in_one_line(folders, kwargs, match):
    kwargs = {**SMALL, **kwargs}
    with pytest.raises(AdaptationError, match=match) as error:
        build(folders, "wav2vec2", **kwargs)
    assert "\n" not in str(error.value)


def test_the_backbone_ignores_the_brain_train_mode_for_dropout_but_not_layerdrop(
    folders,
):
    encoder = build(folders, "wav2vec2", adaptation="lora", **SMALL)
    encoder.train()
    assert encoder.hf_model.training  # dropout as in fine-tuning
    assert encoder.hf_model.config.layerdrop == 0.0
    assert encoder.hf_model.config.apply_spec_augment is False
    wavs, lens = batch()
    assert encoder(wavs, lens).shape[1] == encoder.num_layers  # no layer dropped


# ---------------------------------------------------------------------------
# Language-matched backbones


def test_each_paper_task_resolves_to_its_source_language_model():
    from zsser_modules.labels import PAPER_TASKS

    assert len(PAPER_TASKS) == 9
    for task in PAPER_TASKS:
        source, target = task.split("_")
        for variant in ("proposed", "baseline1", "upper_bound"):
            language = backbone_language(source, target, variant)
            got = resolve_ssl_source(PAPER_SSL_SOURCES, language, check=False)
            assert (language, got) == (source, PAPER_SSL_SOURCES[source])
    assert backbone_language("en", "de", "upper_bound") == "en"  # not the target's


def test_one_model_for_every_task_and_local_folders(tmp_path):
    assert resolve_ssl_source(str(tmp_path), "de") == str(tmp_path)
    folder = tmp_path / "w2v_de"
    folder.mkdir()
    hub_id = PAPER_SSL_SOURCES["de"]
    assert resolve_ssl_source(
        PAPER_SSL_SOURCES, "de", local_dirs={hub_id: str(folder)}
    ) == str(folder)
    assert resolve_ssl_source({"de": str(folder)}, "de") == str(folder)


def test_a_missing_model_stops_in_one_line_naming_the_key(tmp_path, monkeypatch):
    cases = [
        (({"en": "facebook/wav2vec2-base-960h"}, "ur"), {}, "ssl_source"),
        (({"de": str(tmp_path / "absent")}, "de"), {}, r"ssl_source\[de\]"),
        (
            (PAPER_SSL_SOURCES, "fr"),
            {"local_dirs": {PAPER_SSL_SOURCES["fr"]: str(tmp_path / "absent")}},
            "ssl_local_dirs",
        ),
    ]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cases.append(
        (
            (PAPER_SSL_SOURCES, "zh"),
            {"cache_dir": str(tmp_path / "hf")},
            "ssl_local_dirs",
        )
    )
    for args, kwargs, key in cases:
        with pytest.raises(BackboneError, match=key) as error:
            resolve_ssl_source(*args, **kwargs)
        assert "\n" not in str(error.value)


def test_a_cached_hub_id_resolves_offline(tmp_path, monkeypatch):
    """A hub id whose snapshot is in the cache needs no local folder."""
    repo = tmp_path / "hf" / "models--org--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_ssl_source(
        {"en": "org/tiny"}, "en", cache_dir=str(tmp_path / "hf")
    ) == ("org/tiny")


# ---------------------------------------------------------------------------
# The real Whisper-base (optional)


@needs_real
def test_real_whisper_base_adapts_loss_decreases_only_adapters_and_head_change(
    tmp_path,
):
    torch.manual_seed(0)
    encoder = AdaptedWhisperLayerPooling(REAL, save_path=str(tmp_path / "hf"))
    head = torch.nn.Linear(encoder.output_size, 2)
    t = torch.arange(32000) / 16000
    clips = torch.stack(
        [torch.sin(2 * torch.pi * f * t) * 0.3 for f in (180.0, 220.0, 600.0, 700.0)]
    )
    clips = clips + 0.01 * torch.randn(clips.shape)
    labels = torch.tensor([0, 0, 1, 1])
    lens = torch.tensor([1.0, 0.7, 1.0, 0.8])
    before_backbone = backbone_state(encoder)
    before_adapters = encoder.adapter_state_dict()
    before_head = {k: v.clone() for k, v in head.state_dict().items()}
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        [{"params": params, "lr": 5e-3}, {"params": head.parameters(), "lr": 1e-2}]
    )
    encoder.train()
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        pooled = encoder(clips, lens).mean(dim=1)
        loss = torch.nn.functional.cross_entropy(head(pooled), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    n_adapter = sum(t.numel() for t in before_adapters.values())
    n_backbone = sum(t.numel() for t in before_backbone.values())
    print(
        f"Whisper-base adapted: {n_adapter} adapter / {n_backbone} frozen; losses",
        losses,
    )
    assert losses[-1] < losses[0]
    assert all(
        torch.equal(before_backbone[k], v) for k, v in backbone_state(encoder).items()
    )
    after = encoder.adapter_state_dict()
    assert all(not torch.equal(after[k], before_adapters[k]) for k in after)
    assert all(not torch.equal(head.state_dict()[k], v) for k, v in before_head.items())


# ---------------------------------------------------------------------------
# Run identity: the adaptation keys change no run that does not adapt


def test_adaptation_keys_leave_the_identity_of_unadapted_runs_alone():
    from zsser_modules.run_identity import RunIdentity

    hparams = str(Path(__file__).resolve().parents[1] / "hparams" / "en_de.yaml")
    frozen = [hparams, "--encoder_adaptation=none"]  # the paper tasks adapt
    base = RunIdentity.from_argv(frozen).hash
    assert RunIdentity.from_argv([*frozen, "--lora_rank=4"]).hash == base
    assert RunIdentity.from_argv([*frozen, "--ssl_local_dirs={a/b: /x}"]).hash == base
    lora = RunIdentity.from_argv([hparams, "--encoder_adaptation=lora"])
    assert lora.hash != base
    assert RunIdentity.from_argv([hparams]).hash != base  # lora+adapter by default
    rank4 = RunIdentity.from_argv(
        [hparams, "--encoder_adaptation=lora", "--lora_rank=4"]
    )
    assert ("lora_rank", 4, 8) in rank4.differences(lora)
