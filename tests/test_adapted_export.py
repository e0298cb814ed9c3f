"""An adapted encoder's exported model folder (issue 21, item 5).

A tiny random wav2vec 2.0 (base-style: group norm in its first convolution)
adapted with LoRA + bottleneck adapters + gates, with the recipe's heads,
all made by ``build_module`` as the recipe makes them, trained a few steps
and exported by ``export_inference``. The folder holds the adapters' and
gates' tensors only (``ssl.ckpt``) and ``zsser_adaptation.py``, a verbatim
copy of ``zsser_modules/adaptation.py``; the frozen backbone is named by its
source: a hub id pinned to its commit (an offline fake hub cache: no weight
file in the folder), or a local folder copied in as ``ssl_model/``, as for a
frozen encoder. ``foreign_class`` loads it in an interpreter without the
project (tests/isolation_utils.py) and predicts what the trained model does.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from encoder_utils import make_tiny_ssl, write_tone
from isolation_utils import assert_same_predictions, classify_without_project
from speechbrain.lobes.models.VanillaNN import VanillaNN
from speechbrain.nnet.linear import Linear

from zsser_modules import custom_interface
from zsser_modules.adaptation import AdaptedSSLLayerPooling
from zsser_modules.encoders import WeightedLayerSum
from zsser_modules.inference import EmotionRecognizer, build_module, export_inference
from zsser_modules.labels import EMOTIONS

pytestmark = pytest.mark.slow

REPO = "tiny-org/tiny-w2v-base"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".h5", ".msgpack")


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("adapted_audio")
    return [
        write_tone(folder / "mono_16k.wav", seconds=0.6, sample_rate=16000),
        write_tone(
            folder / "stereo_44k.wav", seconds=0.8, sample_rate=44100, channels=2
        ),
    ]


def fake_hub(root: Path) -> tuple[Path, str]:
    """A Hugging Face cache holding one commit of ``REPO`` (offline)."""
    repo = root / f"models--{REPO.replace('/', '--')}"
    commit = "c" * 40
    make_tiny_ssl(
        repo / "snapshots" / commit, kind="wav2vec2", feat_extract_norm="group"
    )
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return root, commit


def adapted_model(source: str, save_path: Path) -> dict[str, torch.nn.Module]:
    """The recipe's SSL model chain with an adapted encoder (build_module)."""
    torch.manual_seed(0)
    ssl = build_module(
        functools.partial(
            AdaptedSSLLayerPooling,
            source=source,
            adaptation="lora+adapter",
            gate=True,
            lora_rank=2,
            lora_alpha=4.0,
            adapter_size=4,
        ),
        save_path=str(save_path),
    )
    return {
        "ssl": ssl,
        "layer_sum": build_module(WeightedLayerSum, num_layers=ssl.num_layers),
        "embedding": build_module(
            VanillaNN, input_shape=[None, ssl.output_size], dnn_neurons=8
        ),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }


def forward(modules, wavs, lens):
    """The chain's log-probabilities (as EmotionRecognizer computes them)."""
    out = modules["ssl"](wavs, lens)
    for name in ("layer_sum", "embedding", "emo_classifier"):
        out = modules[name](out)
    return torch.log_softmax(out, dim=-1)


def train_a_few_steps(modules, steps=3):
    """Adam on everything that requires gradients (adapters, gates, heads)."""
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=5e-2)
    generator = torch.Generator().manual_seed(1)
    for module in modules.values():
        module.train()
    for _ in range(steps):
        wavs = torch.randn(3, 16000, generator=generator)
        lens = torch.tensor([1.0, 0.8, 0.55])
        labels = torch.randint(0, 4, (3,), generator=generator)
        optimizer.zero_grad()
        loss = torch.nn.functional.nll_loss(forward(modules, wavs, lens), labels)
        loss.backward()
        optimizer.step()
    for module in modules.values():
        module.eval()


def expected(modules, wav):
    """The trained model's log-probabilities on one file."""
    with torch.no_grad():
        return forward(modules, custom_interface.load_audio(wav)[None], torch.ones(1))[
            0
        ]


@pytest.fixture(scope="module")
def hub_export(tmp_path_factory):
    """Adapted on a hub id (fake offline cache), trained, exported."""
    root = tmp_path_factory.mktemp("adapted_hub")
    cache, commit = fake_hub(root / "hf")
    modules = adapted_model(REPO, cache)
    assert modules["ssl"].revision == commit
    initial = modules["ssl"].adapter_state_dict()
    train_a_few_steps(modules)
    folder = root / "model"
    export_inference(folder, "ssl", modules, EMOTIONS)
    return modules, folder, cache, commit, initial


def test_the_folder_holds_adapters_not_the_backbone(hub_export):
    modules, folder, _, commit, initial = hub_export
    ssl = modules["ssl"]
    state = torch.load(folder / "ssl.ckpt", weights_only=True)
    assert set(state) == set(ssl.adapter_names)  # adapters and gates only
    assert any(name.endswith("gate.logit") for name in state)
    trained = ssl.adapter_state_dict()
    for name, tensor in state.items():
        assert torch.equal(tensor, trained[name])
    assert any(not torch.equal(state[n], initial[n]) for n in state)  # trained
    weights = [p.name for p in folder.rglob("*") if p.suffix in WEIGHT_SUFFIXES]
    assert weights == []  # the frozen backbone comes from the hub
    shipped = Path(custom_interface.__file__).with_name("adaptation.py")
    assert (folder / "zsser_adaptation.py").read_bytes() == shipped.read_bytes()
    text = (folder / "hyperparams.yaml").read_text()
    assert "ssl: !new:zsser_adaptation.AdaptedSSLLayerPooling" in text
    assert f'    source: "{REPO}"' in text and f'    revision: "{commit}"' in text
    assert '    adaptation: "lora+adapter"' in text
    assert "zsser_modules" not in text and "save_path" not in text


def test_foreign_class_without_the_project_predicts_the_trained_model(
    hub_export, wavs, tmp_path
):
    modules, folder, cache, _, _ = hub_export
    isolated = classify_without_project(
        folder, wavs, tmp_path / "run", env={"HF_HUB_CACHE": str(cache)}
    )
    for wav in wavs:
        got = torch.tensor(isolated["files"][str(wav)]["out_prob"])
        assert torch.allclose(got, expected(modules, wav), atol=1e-5)
    recognizer = EmotionRecognizer.from_hparams(
        source=str(folder), overrides={"ssl": {"save_path": str(cache)}}
    )
    assert_same_predictions(isolated, recognizer, wavs)


def test_a_local_backbone_is_copied_as_for_a_frozen_encoder(tmp_path, wavs):
    local = make_tiny_ssl(tmp_path / "w2v", kind="wav2vec2", feat_extract_norm="group")
    modules = adapted_model(str(local), tmp_path / "hf")
    train_a_few_steps(modules, steps=2)
    folder = tmp_path / "model"
    export_inference(folder, "ssl", modules, EMOTIONS)
    state = torch.load(folder / "ssl.ckpt", weights_only=True)
    assert set(state) == set(modules["ssl"].adapter_names)
    assert (folder / "ssl_model" / "model.safetensors").is_file()  # the backbone
    text = (folder / "hyperparams.yaml").read_text()
    assert '!apply:custom_interface.model_file ["ssl_model"]' in text
    isolated = classify_without_project(folder, wavs, tmp_path / "run")
    for wav in wavs:
        got = torch.tensor(isolated["files"][str(wav)]["out_prob"])
        assert torch.allclose(got, expected(modules, wav), atol=1e-5)


def test_an_adapted_encoder_cannot_be_exported_without_its_adapters(
    hub_export, tmp_path
):
    modules = hub_export[0]
    with pytest.raises(ValueError, match="adapted encoders: their adapters"):
        export_inference(
            tmp_path, "ssl", modules, EMOTIONS, weights_from_source=["ssl"]
        )


def test_an_adapted_whisper_exports_and_predicts_the_trained_model(tmp_path, wavs):
    """The same for Whisper (LoRA + adapters + gates), its backbone a local folder."""
    from encoder_utils import make_tiny_whisper

    from zsser_modules.adaptation import AdaptedWhisperLayerPooling

    local = make_tiny_whisper(tmp_path / "whisper")
    torch.manual_seed(0)
    encoder = build_module(
        functools.partial(
            AdaptedWhisperLayerPooling,
            source=str(local),
            adaptation="lora+adapter",
            gate=True,
            lora_rank=2,
            lora_alpha=4.0,
            adapter_size=4,
        ),
        save_path=str(tmp_path / "hf"),
    )
    chain = adapted_chain_heads(encoder)
    modules = {"ssl": encoder, **chain}  # forward() and training take "ssl"
    train_a_few_steps(modules, steps=2)
    exported = {"whisper": encoder, **chain}
    folder = tmp_path / "model"
    export_inference(folder, "whisper", exported, EMOTIONS)
    state = torch.load(folder / "whisper.ckpt", weights_only=True)
    assert set(state) == set(encoder.adapter_names)  # adapters and gates only
    isolated = classify_without_project(folder, wavs, tmp_path / "run")
    for wav in wavs:
        got = torch.tensor(isolated["files"][str(wav)]["out_prob"])
        assert torch.allclose(got, expected(modules, wav), atol=1e-5)


def adapted_chain_heads(encoder) -> dict[str, torch.nn.Module]:
    """The recipe's heads above an adapted encoder (build_module)."""
    return {
        "layer_sum": build_module(WeightedLayerSum, num_layers=encoder.num_layers),
        "embedding": build_module(
            VanillaNN, input_shape=[None, encoder.output_size], dnn_neurons=8
        ),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=4),
    }
