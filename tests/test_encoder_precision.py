"""One precision for a frozen encoder, in every stage (issue 10, item 4).

A frozen encoder runs in ``frozen_encoder_precision`` whatever the Brain's
``--precision`` (autocast in training) and ``--eval_precision`` (fp32 by
default in validation and test) say, so the features of an utterance are
the same in training, validation, test, the feature cache and inference.
"""

import pytest
import speechbrain as sb
import torch
from encoder_utils import make_tiny_ssl, make_tiny_whisper, write_tone

from zsser_modules.audio import read_audio
from zsser_modules.encoders import (
    FbankStatsEncoder,
    SSLLayerPooling,
    WhisperLayerPooling,
)
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_ssl(tmp_path_factory.mktemp("ssl") / "wavlm")


def ssl(model_dir, precision):
    return SSLLayerPooling(
        str(model_dir), str(model_dir.parent / "hf"), precision=precision
    )


AMBIENT = {
    "no autocast": lambda: torch.autocast("cpu", enabled=False),
    "bf16 autocast": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "fp16 autocast": lambda: torch.autocast("cpu", dtype=torch.float16),
}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_ssl_features_do_not_depend_on_the_surrounding_autocast(model_dir, precision):
    encoder = ssl(model_dir, precision)
    wavs = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([1.0, 0.7])
    outs = {}
    for name, ambient in AMBIENT.items():
        with ambient():
            outs[name] = encoder(wavs, lens)
    for name, out in outs.items():
        assert out.dtype == torch.float32, name
        assert torch.equal(out, outs["no autocast"]), name
    fp32 = ssl(model_dir, "fp32")(wavs, lens)
    if precision == "bf16":  # the setting is real: bf16 differs from fp32
        assert not torch.equal(outs["no autocast"], fp32)
        assert torch.allclose(outs["no autocast"], fp32, atol=0.1, rtol=0.1)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_whisper_features_do_not_depend_on_the_surrounding_autocast(
    tmp_path, precision
):
    folder = make_tiny_whisper(tmp_path / "whisper")
    encoder = WhisperLayerPooling(
        str(folder), str(tmp_path / "hf"), precision=precision
    )
    wavs = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(2))
    lens = torch.tensor([1.0, 0.7])
    outs = {}
    for name, ambient in AMBIENT.items():
        with ambient():
            outs[name] = encoder(wavs, lens)
    for name, out in outs.items():
        assert out.dtype == torch.float32, name
        assert torch.equal(out, outs["no autocast"]), name
    assert encoder_cache_key(encoder)["settings"]["precision"] == precision
    fp32 = WhisperLayerPooling(str(folder), str(tmp_path / "hf"))(wavs, lens)
    if precision == "bf16":  # the setting is real: bf16 differs from fp32
        assert not torch.equal(outs["no autocast"], fp32)
        assert torch.allclose(outs["no autocast"], fp32, atol=0.1, rtol=0.1)


def test_fbank_stats_features_do_not_depend_on_the_surrounding_autocast():
    encoder = FbankStatsEncoder(n_mels=20)
    wavs = 0.3 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    plain = encoder(wavs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(encoder(wavs), plain)
    assert plain.dtype == torch.float32


def test_precision_is_part_of_the_cache_key(model_dir):
    keys = [encoder_cache_key(ssl(model_dir, p)) for p in ("fp32", "bf16", "fp16")]
    assert [k["settings"]["precision"] for k in keys] == ["fp32", "bf16", "fp16"]
    assert len({FeatureCache.__name__ + repr(sorted(k.items())) for k in keys}) == 3
    with pytest.raises(ValueError, match="frozen_encoder_precision"):
        ssl(model_dir, "int8")


class Recorder(sb.Brain):
    """Runs the frozen encoder live and records its output per stage."""

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        feats = self.modules.enc(wavs, lens)
        self.seen.setdefault(stage, []).append(
            (batch.id[0], feats[0].detach(), torch.is_autocast_enabled("cpu"))
        )
        return self.modules.head(feats.mean(1))

    def compute_objectives(self, predictions, batch, stage):
        return predictions.float().pow(2).mean()


def test_same_features_in_training_evaluation_cache_and_inference(tmp_path, model_dir):
    """--precision=bf16 (autocast in training), fp32 evaluation: same features."""
    from speechbrain.dataio.dataset import DynamicItemDataset

    from zsser_modules.audio import audio_pipeline

    files = {
        f"u{i}": str(write_tone(tmp_path / f"u{i}.wav", 0.4 + 0.2 * i, seed=i))
        for i in range(3)
    }
    data = DynamicItemDataset(
        {u: {"wav": w} for u, w in files.items()},
        dynamic_items=[audio_pipeline()],
        output_keys=["id", "sig"],
    )
    encoder = ssl(model_dir, "bf16")
    brain = Recorder(
        modules={"enc": encoder, "head": torch.nn.Linear(64, 1)},
        opt_class=lambda params: torch.optim.SGD(params, lr=0.1),
        run_opts={"device": "cpu", "precision": "bf16", "noprogressbar": True},
    )
    brain.seen = {}
    loader = {"batch_size": 1}
    brain.fit(range(1), data, data, loader, loader)
    brain.evaluate(data, test_loader_kwargs=loader)
    # training ran under bf16 autocast, evaluation without it
    assert {amp for _, _, amp in brain.seen[sb.Stage.TRAIN]} == {True}
    assert {amp for _, _, amp in brain.seen[sb.Stage.TEST]} == {False}

    cache = FeatureCache(tmp_path / "cache", encoder_cache_key(encoder))
    cache.fill(encoder, list(files.items()), batch_size=1, progressbar=False)
    inference = ssl(model_dir, "bf16")  # what the exported folder rebuilds
    for stage in (sb.Stage.TRAIN, sb.Stage.VALID, sb.Stage.TEST):
        for utt_id, feats, _ in brain.seen[stage]:
            assert torch.equal(feats, cache.get(utt_id, files[utt_id])), stage
            live = inference(read_audio(files[utt_id])[None])[0]
            assert torch.equal(feats, live), stage
