"""Tests of the duration policy (docs/recipe.md, "Duration policy").

Every clip is cut to its first ``max_duration`` seconds, after resampling,
and zero-padded to ``MIN_DURATION``, by the one audio loader
(``zsser_modules.audio.load_audio``) that training, the feature
cache and the exported model share.
"""

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from encoder_utils import make_tiny_ssl, make_tiny_whisper, write_tone
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.sampler import DynamicBatchSampler
from speechbrain.lobes.models.VanillaNN import VanillaNN
from speechbrain.nnet.linear import Linear

from recipes import train
from zsser_modules.audio import (
    MIN_DURATION,
    PolicyDuration,
    audio_pipeline,
    check_max_duration,
    fit_batch_duration,
    fit_duration,
    read_audio,
)
from zsser_modules.encoders import (
    FbankEncoder,
    FbankStatsEncoder,
    SSLLayerPooling,
    WhisperLayerPooling,
)
from zsser_modules.feature_cache import FeatureCache, encoder_cache_key
from zsser_modules.inference import (
    EmotionRecognizer,
    _classify_one,
    build_module,
    export_inference,
)
from zsser_modules.labels import EMOTIONS
from zsser_modules.probe import _max_duration_arg
from zsser_modules.run import data as run_data

SR = 16000


def noise_file(path, seconds, rate, channels=1, seed=0):
    """Seeded noise with a slow pitch sweep (every second differs)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    mono = 0.2 * np.sin(2 * np.pi * (100 + 20 * t) * t) + 0.05 * rng.standard_normal(n)
    data = np.stack([mono * (1 + 0.1 * c) for c in range(channels)], axis=1)
    sf.write(str(path), data.astype(np.float32), rate, subtype="PCM_16")
    return path


# ---- the crop is exact, after resampling -----------------------------------


def test_crop_of_a_16k_file_is_its_first_samples(tmp_path):
    path = noise_file(tmp_path / "a.wav", 3.0, SR)
    data, _ = sf.read(str(path), dtype="float32")
    wav = read_audio(path, max_duration=1.25)
    assert wav.shape == (20000,)
    assert torch.equal(wav, torch.from_numpy(data[:20000]))
    # no crop, or a crop longer than the file: the whole file, unchanged
    assert torch.equal(read_audio(path), torch.from_numpy(data))
    assert torch.equal(read_audio(path, max_duration=10.0), torch.from_numpy(data))


@pytest.mark.parametrize("rate, channels", [(48000, 2), (44100, 1), (8000, 1)])
def test_crop_comes_after_resampling(tmp_path, rate, channels):
    """The crop is the exact prefix of the resampled (uncropped) waveform."""
    path = noise_file(tmp_path / "b.wav", 2.5, rate, channels)
    full = read_audio(path)
    cropped = read_audio(path, max_duration=1.0)
    assert cropped.shape == (SR,)  # 1 s at 16 kHz, whatever the file's rate
    assert torch.equal(cropped, full[:SR])
    # Cropping the file before resampling would give other last samples
    # (the resampling filter sees past the cut): not what the policy does.
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    head = torch.from_numpy(data[:rate].mean(axis=1))
    before = torchaudio.functional.resample(head, rate, SR)[:SR]
    assert not torch.equal(before, cropped)


def test_fit_duration_rounds_to_the_nearest_sample():
    wav = torch.arange(50000, dtype=torch.float32)
    assert fit_duration(wav, SR, 0.07).shape == (1120,)
    assert fit_duration(wav, SR, 15.0).shape == (50000,)
    assert torch.equal(fit_duration(wav, SR, 2.0), wav[:32000])
    assert fit_duration(wav, SR) is wav  # nothing to do: the same tensor


# ---- short clips -----------------------------------------------------------


def test_short_clip_is_zero_padded(tmp_path):
    path = tmp_path / "short.wav"
    data = (0.1 * np.random.default_rng(1).standard_normal(100)).astype("float32")
    sf.write(str(path), data, SR, subtype="FLOAT")
    wav = read_audio(path, max_duration=15.0)
    assert MIN_DURATION == 0.05 and wav.shape == (800,)
    assert torch.equal(wav[:100], torch.from_numpy(data))
    assert not wav[100:].any()
    # at another rate, the padding is done at the target rate
    sf.write(str(tmp_path / "s8k.wav"), data, 8000, subtype="FLOAT")
    assert read_audio(tmp_path / "s8k.wav").shape == (800,)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enc")
    save = str(tmp / "hf")
    return {
        "fbank_stats": FbankStatsEncoder(),
        "fbank": FbankEncoder(),
        "wav2vec2": SSLLayerPooling(
            str(make_tiny_ssl(tmp / "w2v", "wav2vec2", "group")), save_path=save
        ),
        "wavlm": SSLLayerPooling(str(make_tiny_ssl(tmp / "wavlm")), save_path=save),
        "whisper": WhisperLayerPooling(
            str(make_tiny_whisper(tmp / "whisper")), save_path=save
        ),
    }


@pytest.mark.parametrize(
    "name", ["fbank_stats", "fbank", "wav2vec2", "wavlm", "whisper"]
)
@pytest.mark.parametrize("n", [1, 100, 399])
def test_every_encoder_takes_a_padded_short_clip(encoders, name, n):
    """Under 400 samples the SSL and Whisper encoders refuse; padded, all run."""
    encoder = encoders[name].eval()
    wav = fit_duration(0.1 * torch.randn(1, n), SR)
    assert wav.shape == (1, 800)
    with torch.no_grad():
        out = encoder(wav, torch.ones(1))
    assert torch.isfinite(out).all()
    if name in ("wav2vec2", "wavlm", "whisper"):
        with pytest.raises(ValueError, match="too short|shorter than"):
            encoder(0.1 * torch.randn(1, n), torch.ones(1))


# ---- batches ---------------------------------------------------------------


def test_batch_policy_equals_the_per_clip_policy():
    torch.manual_seed(0)
    lengths = [48000, 20000, 300, 32000]
    rows = [0.1 * torch.randn(n) for n in lengths]
    wavs = torch.zeros(len(rows), max(lengths))
    for i, row in enumerate(rows):
        wavs[i, : row.numel()] = row
    rel = torch.tensor(lengths) / max(lengths)
    out, out_lens = fit_batch_duration(wavs, rel, SR, max_duration=2.0)
    assert out.shape == (4, 32000)
    for i, row in enumerate(rows):
        expected = fit_duration(row, SR, 2.0)
        n = int(torch.round(out_lens[i] * out.shape[1]))
        assert n == expected.numel()
        assert torch.equal(out[i, :n], expected)
        assert not out[i, n:].any()
    # applying it again changes nothing (the recipe's batches are fitted)
    again = fit_batch_duration(out, out_lens, SR, max_duration=2.0)
    assert again[0] is out and again[1] is out_lens
    # a batch the policy does not touch comes back as is
    ok = torch.randn(2, 8000)
    assert fit_batch_duration(ok, None, SR, 15.0)[0] is ok


# ---- settings --------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1.0, 0.01, float("inf"), float("nan"), "15", True])
def test_bad_max_duration_is_refused_in_one_line(bad):
    with pytest.raises(ValueError) as error:
        check_max_duration(bad)
    message = str(error.value)
    assert "\n" not in message and "max_duration" in message and "null" in message


def test_recipe_refuses_a_bad_max_duration(capsys):
    with pytest.raises(SystemExit) as stop:
        train.main(["hparams/demo.yaml", "--max_duration=0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_duration must be null" in err[0]


def test_probe_option():
    assert _max_duration_arg("none") is None
    assert _max_duration_arg("12") == 12.0
    with pytest.raises(Exception, match="max_duration"):
        _max_duration_arg("0")


# ---- dynamic batching sees the cropped lengths -----------------------------


def test_dynamic_batches_use_the_cropped_length():
    data = {f"u{i}": {"duration": 3.0} for i in range(10)}
    data["long"] = {"duration": "305.0"}  # MELD test dia38_utt4
    dataset = DynamicItemDataset(data)
    length = PolicyDuration(15.0)
    assert length(data["long"]) == 15.0 and length({"duration": 0.001}) == 0.05
    assert PolicyDuration(None)(data["long"]) == 305.0
    options = run_data.train_loader_options(
        {},
        {
            "language_sampling": "natural",
            "seed": 1,
            "train_dataloader_options": {"batch_size": 4, "shuffle": True},
            "dynamic_batching": True,
            "dynamic_batch_sampler": {
                "max_batch_length": 30,
                "num_buckets": 2,
                "shuffle": False,
                "batch_ordering": "ascending",
            },
            "max_duration": 15.0,
            "variant": "baseline2",
            "batch_sampler": "random",
            "hier_n_lang": 3,
            "hier_n_cls": 4,
            "hier_n_sam": 3,
            "hier_batches_per_epoch": None,
        },
        dataset,
    )
    sampler = options["batch_sampler"]
    assert isinstance(sampler, DynamicBatchSampler)
    assert max(sampler._ex_lengths.values()) == 15.0


# ---- the feature cache -----------------------------------------------------


def test_cache_key_and_entries_follow_max_duration(tmp_path):
    encoder = FbankStatsEncoder(n_mels=20).eval()
    keys = {d: encoder_cache_key(encoder, max_duration=d) for d in (None, 15.0, 2.0)}
    assert len({str(sorted(k.items())) for k in keys.values()}) == 3
    assert keys[2.0]["max_duration"] == 2.0 and keys[None]["max_duration"] is None
    caches = {d: FeatureCache(tmp_path / "cache", k) for d, k in keys.items()}
    assert len({c.root for c in caches.values()}) == 3  # never in one folder

    path = noise_file(tmp_path / "long.wav", 5.0, 44100, 2)
    items = [("u", path)]
    for d, cache in caches.items():
        assert cache.fill(encoder, items, progressbar=False)["computed"] == 1
        with torch.no_grad():
            live = encoder(read_audio(path, max_duration=d)[None], torch.ones(1))[0]
        assert torch.equal(cache.get("u", path), live)
    assert not torch.equal(caches[2.0].get("u", path), caches[None].get("u", path))
    # 15 s does not touch a 5 s clip: the same features in another folder
    assert torch.equal(caches[15.0].get("u", path), caches[None].get("u", path))


# ---- training and the exported model see the same samples -------------------


def small_model(n_mels=20):
    dim = 6 * n_mels  # mean and std of fbanks, deltas and delta-deltas
    torch.manual_seed(0)
    return {
        "fbank_stats": build_module(FbankStatsEncoder, n_mels=n_mels),
        "embedding": build_module(
            VanillaNN, input_shape=[None, dim], dnn_blocks=1, dnn_neurons=8
        ),
        "emo_classifier": build_module(Linear, input_size=8, n_neurons=len(EMOTIONS)),
    }


def trained_path_log_probs(modules, wav_path, max_duration, cache_dir=None):
    """The recipe's path: audio_pipeline (or the feature cache) + PaddedBatch."""
    data = DynamicItemDataset({"long": {"wav": str(wav_path)}})
    data.add_dynamic_item(audio_pipeline(SR, max_duration=max_duration))
    data.set_output_keys(["id", "sig"])
    batch = PaddedBatch([data[0]])
    encoder = modules["fbank_stats"].eval()
    with torch.no_grad():
        if cache_dir is None:
            feats = encoder(batch.sig.data, batch.sig.lengths)
        else:
            key = encoder_cache_key(encoder, sample_rate=SR, max_duration=max_duration)
            cache = FeatureCache(cache_dir, key)
            cache.fill(encoder, [("long", wav_path)], progressbar=False)
            feats = cache.get("long", wav_path)[None]
        emb = modules["embedding"].eval()(feats)
        return torch.log_softmax(modules["emo_classifier"](emb), dim=-1), batch


@pytest.mark.parametrize("cached", [False, True])
def test_exported_model_equals_the_trained_model_on_a_long_file(tmp_path, cached):
    long_file = noise_file(tmp_path / "long.wav", 20.0, 44100, channels=2)
    modules = small_model()
    expected, batch = trained_path_log_probs(
        modules, long_file, 15.0, tmp_path / "cache" if cached else None
    )
    assert batch.sig.data.shape == (1, 15 * SR)  # training saw the first 15 s

    folder = tmp_path / "inference"
    export_inference(
        folder,
        "fbank_stats",
        modules,
        EMOTIONS,
        weights_from_source=["fbank_stats"],
        max_duration=15.0,
    )
    assert "max_duration: 15.0" in (folder / "hyperparams.yaml").read_text()
    recognizer = EmotionRecognizer.from_hparams(source=str(folder))
    assert recognizer.max_duration == 15.0
    assert recognizer.load_audio(long_file).shape == (15 * SR,)
    out_prob = recognizer.classify_file(long_file)[0]
    assert torch.allclose(out_prob, expected, atol=1e-6)
    # a raw uncropped waveform given to classify_batch gets the same crop
    full = read_audio(long_file)
    assert full.shape == (20 * SR,)
    assert torch.allclose(recognizer.classify_batch(full[None])[0], expected, atol=1e-6)
    # the command line (zsser-classify) too
    emotion, probs, warning, kind = _classify_one(recognizer, long_file, 0.5, -60.0)
    assert kind == "ok" and warning == ""
    assert np.allclose([float(p) for p in probs], expected.exp()[0].tolist(), atol=1e-5)
    # the crop matters on this file: the whole clip gives other probabilities
    uncropped, _ = trained_path_log_probs(modules, long_file, None)
    assert not torch.allclose(uncropped, expected, atol=1e-4)

    # the self-contained copy loaded without the project applies it too
    from speechbrain.inference.interfaces import foreign_class

    foreign = foreign_class(
        source=str(folder),
        pymodule_file="custom_interface.py",
        classname="EmotionRecognizer",
        savedir=str(tmp_path / "foreign"),
    )
    assert torch.allclose(foreign.classify_file(long_file)[0], expected, atol=1e-6)


def test_an_export_without_max_duration_does_not_crop(tmp_path):
    """Folders exported before the policy load as they were: whole clips."""
    modules = small_model()
    folder = tmp_path / "old"
    export_inference(
        folder, "fbank_stats", modules, EMOTIONS, weights_from_source=["fbank_stats"]
    )
    text = (folder / "hyperparams.yaml").read_text()
    assert "max_duration: null" in text
    lines = [line for line in text.splitlines() if "max_duration" not in line]
    (folder / "hyperparams.yaml").write_text("\n".join(lines) + "\n")
    recognizer = EmotionRecognizer.from_hparams(source=str(folder))
    assert recognizer.max_duration is None
    path = write_tone(tmp_path / "t.wav", seconds=3.0, sample_rate=SR)
    assert recognizer.load_audio(path).shape == (3 * SR,)


def test_command_line_reports_the_true_length_and_classifies_padded_clips(tmp_path):
    folder = tmp_path / "inference"
    export_inference(
        folder,
        "fbank_stats",
        small_model(),
        EMOTIONS,
        weights_from_source=["fbank_stats"],
        max_duration=15.0,
    )
    recognizer = EmotionRecognizer.from_hparams(source=str(folder))
    path = noise_file(tmp_path / "tiny.wav", 0.01, SR)  # 160 samples
    assert _classify_one(recognizer, path, 0.5, -60.0)[2].startswith(
        "too short: 0.010 s"
    )
    emotion, probs, warning, kind = _classify_one(recognizer, path, 0.0, -200.0)
    assert kind == "ok" and emotion in EMOTIONS and len(probs) == len(EMOTIONS)
    expected = recognizer.classify_batch(read_audio(path)[None])[0]
    assert np.allclose([float(p) for p in probs], expected.exp()[0].tolist(), atol=1e-5)
