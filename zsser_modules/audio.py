"""Audio loading and the duration policy: training and inference read alike.

Data preparation never converts audio: every consumer reads the original file
through :func:`load_audio` (:func:`read_audio` in the recipe), which returns a
mono float32 waveform at the requested rate with SpeechBrain's own loading
and ``AudioNormalizer``, then applies the duration policy. Every exported
model folder carries a verbatim copy of this file (``zsser_audio.py``) and
its ``EmotionRecognizer`` reads its input files with :func:`load_audio`, so
the features seen at training time and at inference time come from
identical samples. This file imports only the standard library, torch and
SpeechBrain.

Duration policy (docs/recipe.md, "Duration policy")
---------------------------------------------------
- ``max_duration`` (seconds; the recipe's default 15.0, None: no crop): every
  clip is cut to its first ``round(max_duration * sample_rate)`` samples,
  AFTER resampling to ``sample_rate`` (the crop is the exact prefix of the
  uncropped waveform, whatever the file's rate).
- ``MIN_DURATION`` (0.05 s): a shorter clip is right-padded with zeros (the
  encoders need at least 400 to 640 samples at 16 kHz).
- Manifests keep the true durations. :class:`PolicyDuration` gives the
  length a clip has after the policy, for duration-bucketed batches.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, Union

import torch
import torch.nn.functional as F

PathLike = Union[str, "os.PathLike[str]"]


#: Shortest clip an encoder is given, in seconds (800 samples at 16 kHz).
#: A shorter clip is right-padded with zeros to this length. The frozen SSL
#: encoders (wav2vec2, WavLM, HuBERT: a 400-sample convolutional receptive
#: field) and Whisper (a 400-sample analysis window) refuse fewer than 400
#: samples, and the trainable filterbank + ECAPA-TDNN encoder fails on a
#: clip alone under about 640 samples (reflect padding of its dilated
#: convolutions); 0.05 s clears all of them.
MIN_DURATION: float = 0.05


def duration_samples(seconds: float, sample_rate: int) -> int:
    """Number of samples of ``seconds`` at ``sample_rate`` (nearest integer).

    Arguments
    ---------
    seconds : float
        A duration.
    sample_rate : int
        Samples per second.

    Returns
    -------
    int
        ``round(seconds * sample_rate)``.

    Example
    -------
    >>> duration_samples(15.0, 16000), duration_samples(0.05, 16000)
    (240000, 800)
    """
    return int(round(float(seconds) * int(sample_rate)))


def check_max_duration(max_duration: Any) -> float | None:
    """Validate ``max_duration``: None (no crop) or seconds above ``MIN_DURATION``.

    Arguments
    ---------
    max_duration : float or None
        The setting (seconds).

    Returns
    -------
    float or None
        The value as a float, or None.

    Raises
    ------
    ValueError
        One line: what was expected, what was found, how to fix it.

    Example
    -------
    >>> check_max_duration(15), check_max_duration(None)
    (15.0, None)
    >>> check_max_duration(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: max_duration must be null (no crop) or a number of seconds ...
    """
    if max_duration is None:
        return None
    bad = isinstance(max_duration, bool) or not isinstance(max_duration, (int, float))
    if bad or not MIN_DURATION < float(max_duration) < float("inf"):
        raise ValueError(
            "max_duration must be null (no crop) or a number of seconds above "
            f"{MIN_DURATION:g} (MIN_DURATION), got {max_duration!r}; set e.g. "
            "--max_duration=15.0."
        )
    return float(max_duration)


def fit_duration(
    wav: torch.Tensor,
    sample_rate: int,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """Apply the duration policy to one waveform (time on the last axis).

    Keeps the first ``round(max_duration * sample_rate)`` samples (a
    deterministic head crop; None: no crop), then right-pads with zeros to
    ``round(min_duration * sample_rate)`` samples. A waveform the policy
    does not change is returned as is (the same tensor).

    Arguments
    ---------
    wav : torch.Tensor
        Waveform ``[..., time]`` at ``sample_rate``.
    sample_rate : int
        Its rate.
    max_duration : float, optional
        Longest kept duration in seconds (None: keep everything).
    min_duration : float
        Shortest duration in seconds; shorter waveforms are zero-padded.

    Returns
    -------
    torch.Tensor
        The cropped or padded waveform.

    Example
    -------
    >>> fit_duration(torch.ones(40000), 16000, max_duration=2.0).shape
    torch.Size([32000])
    >>> short = fit_duration(torch.ones(100), 16000)
    >>> short.shape, float(short[:100].sum()), float(short[100:].abs().sum())
    (torch.Size([800]), 100.0, 0.0)
    """
    max_duration = check_max_duration(max_duration)
    if max_duration is not None:
        keep = duration_samples(max_duration, sample_rate)
        if wav.shape[-1] > keep:
            wav = wav[..., :keep]
    shortest = duration_samples(min_duration, sample_rate)
    if wav.shape[-1] < shortest:
        wav = F.pad(wav, (0, shortest - wav.shape[-1]))
    return wav


def fit_batch_duration(
    wavs: torch.Tensor,
    wav_lens: torch.Tensor | None,
    sample_rate: int,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply :func:`fit_duration` to every row of a right-padded batch.

    Each row keeps its first ``round(max_duration * sample_rate)`` valid
    samples and is zero-padded to ``round(min_duration * sample_rate)``
    valid samples; the relative lengths are recomputed for the new width.
    A batch the policy leaves unchanged is returned as is, so applying it
    twice, or to a batch of already fitted waveforms (the recipe's), changes
    nothing.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveforms ``[batch, time]``, right-padded.
    wav_lens : torch.Tensor or None
        Relative lengths ``[batch]`` (1.0 = ``time``); None: all 1.
    sample_rate : int
        Rate of the waveforms.
    max_duration : float, optional
        Longest kept duration in seconds (None: no crop).
    min_duration : float
        Shortest duration in seconds.

    Returns
    -------
    wavs : torch.Tensor
        ``[batch, new_time]``; samples past a row's length are zeros.
    wav_lens : torch.Tensor
        The relative lengths in ``new_time``.

    Example
    -------
    >>> wavs, lens = fit_batch_duration(torch.ones(2, 48000),
    ...                                 torch.tensor([1.0, 0.5]), 16000, 2.0)
    >>> wavs.shape, lens.tolist()
    (torch.Size([2, 32000]), [1.0, 0.75])
    """
    max_duration = check_max_duration(max_duration)
    width = wavs.shape[-1]
    if wav_lens is None:
        wav_lens = torch.ones(wavs.shape[0], device=wavs.device)
    lengths = torch.round(wav_lens.double() * width).long().clamp(0, width)
    keep = lengths
    if max_duration is not None:
        keep = lengths.clamp(max=duration_samples(max_duration, sample_rate))
    shortest = duration_samples(min_duration, sample_rate)
    new_lengths = keep.clamp(min=shortest)
    if bool((new_lengths == lengths).all()):
        return wavs, wav_lens
    new_width = int(new_lengths.max())
    if new_width > width:
        wavs = F.pad(wavs, (0, new_width - width))
    wavs = wavs[..., :new_width]
    steps = torch.arange(new_width, device=wavs.device)
    valid = steps[None, :] < keep.to(wavs.device)[:, None]
    wavs = wavs.masked_fill(~valid, 0.0)
    return wavs, (new_lengths.double() / new_width).to(wav_lens.dtype)


@functools.lru_cache(maxsize=8)
def audio_normalizer(sample_rate: int = 16000) -> Any:
    """Return SpeechBrain's ``AudioNormalizer`` for a rate, one per process.

    It averages the channels to mono and resamples with cached resamplers
    (``speechbrain.dataio.preprocess.AudioNormalizer``, what
    ``Pretrained.load_audio`` uses).

    Arguments
    ---------
    sample_rate : int
        Rate of the returned signals.

    Returns
    -------
    speechbrain.dataio.preprocess.AudioNormalizer
        The shared normaliser (do not modify it).

    Example
    -------
    >>> audio_normalizer(16000) is audio_normalizer(16000)
    True
    >>> audio_normalizer(16000)(torch.zeros(4800, 2), 48000).shape
    torch.Size([1600])
    """
    from speechbrain.dataio.preprocess import AudioNormalizer

    return AudioNormalizer(sample_rate=int(sample_rate))


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = 16000,
    normalizer: Any = None,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    SpeechBrain's ``Pretrained.load_audio`` for a local file:
    ``speechbrain.dataio.audio_io.load`` (soundfile: any format and rate it
    reads) then ``AudioNormalizer`` (resampling with a cached torchaudio
    resampler when the rate differs, mean of the channels), with one-line
    errors; then the duration policy (:func:`fit_duration`), applied AFTER
    resampling: the result is exactly the first ``round(max_duration *
    sample_rate)`` samples of the uncropped waveform at ``sample_rate``,
    whatever the file's own rate, zero-padded to ``min_duration`` if
    shorter. The recipe reads its training audio (and its feature cache)
    with this function and :class:`EmotionRecognizer` its input files, with
    the same ``max_duration``, so both see identical samples; a 16 kHz mono
    file no longer than ``max_duration`` is returned unchanged.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file to read.
    sample_rate : int
        Rate of the returned waveform (ignored when ``normalizer`` is given).
    normalizer : speechbrain.dataio.preprocess.AudioNormalizer, optional
        Normaliser to use (default: :func:`audio_normalizer` of
        ``sample_rate``).
    max_duration : float, optional
        Keep the first ``max_duration`` seconds (None: the whole file).
    min_duration : float
        Zero-pad shorter waveforms to this many seconds (``MIN_DURATION``).

    Returns
    -------
    torch.Tensor
        1-D float32 tensor of samples in [-1, 1] (for integer PCM files).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If soundfile cannot decode the file, or the file holds no samples.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros((4800, 2), dtype="float32"), 48000)
    >>> sig = load_audio(f"{tmp}/a.wav")
    >>> sig.shape, sig.dtype
    (torch.Size([1600]), torch.float32)
    >>> load_audio(f"{tmp}/a.wav", max_duration=0.08).shape  # first 0.08 s
    torch.Size([1280])
    >>> import shutil; shutil.rmtree(tmp)
    """
    from speechbrain.dataio import audio_io

    if normalizer is None:
        normalizer = audio_normalizer(int(sample_rate))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Audio file not found (or not a regular file): '{path}'. Check "
            "the path (in a recipe: the 'wav' column of the manifest, which "
            "must hold absolute paths to existing files; re-run data "
            "preparation if the corpus moved)."
        )
    try:
        signal, rate = audio_io.load(str(path), channels_first=False)
    except RuntimeError as err:  # audio_io wraps soundfile's errors
        cause = err.__cause__ or err
        raise ValueError(
            f"Could not decode audio file '{path}' ({cause}). Expected a format "
            "that soundfile/libsndfile reads (wav, flac, ogg, ...); convert it "
            "or remove it from the manifest."
        ) from err
    if signal.shape[0] == 0:
        raise ValueError(
            f"Audio file '{path}' holds no samples. Remove it from the manifest "
            "(data preparation should skip empty files)."
        )
    wav = normalizer(signal, rate)
    return fit_duration(wav, int(normalizer.sample_rate), max_duration, min_duration)


def count_non_finite(wavs: torch.Tensor) -> int:
    """Number of NaN or infinite samples.

    Arguments
    ---------
    wavs : torch.Tensor
        Waveform(s), any shape.

    Returns
    -------
    int
        How many samples are not finite.

    Example
    -------
    >>> count_non_finite(torch.tensor([0.1, float("nan"), float("inf")]))
    2
    """
    return int((~torch.isfinite(wavs)).sum())


def read_audio(
    path: PathLike,
    target_sr: int = 16000,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """:func:`load_audio` under the recipe's argument name ``target_sr``.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file to read.
    target_sr : int
        Sampling rate of the returned waveform.
    max_duration : float, optional
        Keep the first ``max_duration`` seconds (None: the whole file).
    min_duration : float
        Zero-pad shorter waveforms to this many seconds.

    Returns
    -------
    torch.Tensor
        1-D float32 waveform at ``target_sr``.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros((4800, 2), dtype="float32"), 48000)
    >>> read_audio(f"{tmp}/a.wav", max_duration=0.06).shape
    torch.Size([960])
    >>> import shutil; shutil.rmtree(tmp)
    """
    return load_audio(
        path,
        sample_rate=int(target_sr),
        max_duration=max_duration,
        min_duration=min_duration,
    )


def audio_pipeline(
    target_sr: int = 16000,
    takes: str = "wav",
    provides: str = "sig",
    max_duration: float | None = None,
) -> Callable[[str], torch.Tensor]:
    """Build a SpeechBrain dynamic item that reads audio with :func:`read_audio`.

    Arguments
    ---------
    target_sr : int
        Sampling rate of the produced signal.
    takes : str
        Manifest column holding the audio path.
    provides : str
        Name of the produced dynamic item.
    max_duration : float, optional
        Keep the first ``max_duration`` seconds of every clip (None: all).

    Returns
    -------
    Callable
        A function decorated with ``speechbrain.utils.data_pipeline.takes`` /
        ``provides``, to pass to ``sb.dataio.dataset.add_dynamic_item``.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> from speechbrain.dataio.dataset import DynamicItemDataset
    >>> tmp = tempfile.mkdtemp()
    >>> sf.write(f"{tmp}/a.wav", np.zeros(800, dtype="float32"), 8000)
    >>> data = DynamicItemDataset({"u1": {"wav": f"{tmp}/a.wav"}})
    >>> data.add_dynamic_item(audio_pipeline())
    >>> data.set_output_keys(["id", "sig"])
    >>> data[0]["sig"].shape
    torch.Size([1600])
    >>> import shutil; shutil.rmtree(tmp)
    """
    from speechbrain.utils.data_pipeline import provides as sb_provides
    from speechbrain.utils.data_pipeline import takes as sb_takes

    max_duration = check_max_duration(max_duration)

    @sb_takes(takes)
    @sb_provides(provides)
    def _read(wav: str) -> torch.Tensor:
        return read_audio(wav, target_sr, max_duration=max_duration)

    return _read


class PolicyDuration:
    """Length of a manifest row after the duration policy, in seconds.

    ``min(max(duration, MIN_DURATION), max_duration)``: the length the
    waveform has once read, for SpeechBrain's ``DynamicBatchSampler``
    (``length_func``), so a 5-minute clip cut to 15 s is batched as 15 s.
    Picklable (DataLoader workers).

    Arguments
    ---------
    max_duration : float, optional
        The crop (None: no crop).
    key : str
        The manifest column of the true duration.

    Example
    -------
    >>> length = PolicyDuration(15.0)
    >>> length({"duration": "305.2"}), length({"duration": 3.0})
    (15.0, 3.0)
    >>> length({"duration": 0.01})
    0.05
    """

    def __init__(self, max_duration: float | None, key: str = "duration"):
        self.max_duration = check_max_duration(max_duration)
        self.key = key

    def __call__(self, item: dict[str, Any]) -> float:
        """The policy's length of ``item`` (a manifest row), in seconds."""
        seconds = max(float(item[self.key]), MIN_DURATION)
        if self.max_duration is not None:
            seconds = min(seconds, self.max_duration)
        return seconds
