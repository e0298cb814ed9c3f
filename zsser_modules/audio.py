"""Audio loading shared by training, feature caching and inference.

Data preparation never converts audio: every consumer reads the original file
through :func:`read_audio`, which returns a mono float32 waveform at the
requested rate with SpeechBrain's own loading and ``AudioNormalizer``
(defined once in :mod:`zsser_modules.custom_interface`, the file an exported
model carries). Using one function everywhere guarantees that the features
seen at training time and at inference time come from identical samples.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import os
from typing import Callable, Union

import torch

from zsser_modules.custom_interface import audio_normalizer, load_audio

__all__ = ["audio_normalizer", "audio_pipeline", "load_audio", "read_audio"]

PathLike = Union[str, "os.PathLike[str]"]


def read_audio(path: PathLike, target_sr: int = 16000) -> torch.Tensor:
    """Read an audio file as a mono float32 waveform at ``target_sr``.

    SpeechBrain's loading and normalisation (``speechbrain.dataio.audio_io``
    + ``AudioNormalizer``, as ``Pretrained.load_audio``), through
    :func:`zsser_modules.custom_interface.load_audio`, the function the
    exported :class:`EmotionRecognizer` reads its input files with: training
    and inference see identical samples. A 16 kHz mono file is returned
    unchanged; other rates are resampled (cached torchaudio resampler), then
    the channels averaged.

    Arguments
    ---------
    path : str or os.PathLike
        Audio file to read.
    target_sr : int
        Sampling rate of the returned waveform.

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
    >>> stereo = np.zeros((4800, 2), dtype="float32")
    >>> sf.write(f"{tmp}/a.wav", stereo, 48000)
    >>> sig = read_audio(f"{tmp}/a.wav")
    >>> sig.shape, sig.dtype
    (torch.Size([1600]), torch.float32)
    >>> import shutil; shutil.rmtree(tmp)
    """
    return load_audio(path, sample_rate=int(target_sr))


def audio_pipeline(
    target_sr: int = 16000, takes: str = "wav", provides: str = "sig"
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

    @sb_takes(takes)
    @sb_provides(provides)
    def _read(wav: str) -> torch.Tensor:
        return read_audio(wav, target_sr)

    return _read
