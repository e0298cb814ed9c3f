"""Audio loading shared by training, feature caching and inference.

Data preparation never converts audio: every consumer reads the original file
through :func:`read_audio`, which returns a mono float32 waveform at the
requested rate with SpeechBrain's own loading and ``AudioNormalizer``, then
applies the duration policy (head crop to ``max_duration`` seconds, zero
padding to ``MIN_DURATION``), all defined once in
:mod:`zsser_modules.custom_interface`, the file an exported model carries.
Using one function everywhere guarantees that the features seen at training
time and at inference time come from identical samples.

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

import os
from typing import Any, Callable, Union

import torch

from zsser_modules.custom_interface import (
    MIN_DURATION,
    audio_normalizer,
    check_max_duration,
    duration_samples,
    fit_batch_duration,
    fit_duration,
    load_audio,
)

__all__ = [
    "MIN_DURATION",
    "PolicyDuration",
    "audio_normalizer",
    "audio_pipeline",
    "check_max_duration",
    "duration_samples",
    "fit_batch_duration",
    "fit_duration",
    "load_audio",
    "read_audio",
]

PathLike = Union[str, "os.PathLike[str]"]


def read_audio(
    path: PathLike,
    target_sr: int = 16000,
    max_duration: float | None = None,
    min_duration: float = MIN_DURATION,
) -> torch.Tensor:
    """Read an audio file as a mono float32 waveform at ``target_sr``.

    SpeechBrain's loading and normalisation (``speechbrain.dataio.audio_io``
    + ``AudioNormalizer``, as ``Pretrained.load_audio``), through
    :func:`zsser_modules.custom_interface.load_audio`, the function the
    exported :class:`EmotionRecognizer` reads its input files with: training
    and inference see identical samples. A 16 kHz mono file is returned
    unchanged; other rates are resampled (cached torchaudio resampler), then
    the channels averaged. Then the duration policy: the first
    ``max_duration`` seconds at ``target_sr`` (the crop comes after the
    resampling), zero-padded to ``min_duration`` seconds if shorter.

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
        1-D float32 tensor of samples in [-1, 1] (for integer PCM files).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If soundfile cannot decode the file, the file holds no samples, or
        ``max_duration`` is not None or a number above ``MIN_DURATION``.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> tmp = tempfile.mkdtemp()
    >>> stereo = np.zeros((4800, 2), dtype="float32")
    >>> sf.write(f"{tmp}/a.wav", stereo, 48000)
    >>> sig = read_audio(f"{tmp}/a.wav")
    >>> sig.shape, sig.dtype
    (torch.Size([1600]), torch.float32)
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
