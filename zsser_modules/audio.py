"""Audio loading shared by training, feature caching and inference.

Data preparation never converts audio: every consumer reads the original file
through :func:`read_audio`, which returns a mono float32 waveform at the
requested rate. Using one function everywhere guarantees that the features
seen at training time and at inference time come from identical samples.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio

PathLike = Union[str, "os.PathLike[str]"]


@functools.lru_cache(maxsize=16)
def get_resampler(orig_sr: int, target_sr: int) -> torchaudio.transforms.Resample:
    """Return a resampler for one rate pair, built once per process.

    ``torchaudio.transforms.Resample`` precomputes its windowed-sinc kernel;
    caching it per ``(orig_sr, target_sr)`` avoids rebuilding the kernel for
    every file of a corpus recorded at 48 kHz.

    Arguments
    ---------
    orig_sr : int
        Sampling rate of the input signal.
    target_sr : int
        Sampling rate of the output signal.

    Returns
    -------
    torchaudio.transforms.Resample
        The cached resampler (do not modify it).

    Example
    -------
    >>> get_resampler(48000, 16000) is get_resampler(48000, 16000)
    True
    >>> get_resampler(48000, 16000)(torch.zeros(4800)).shape
    torch.Size([1600])
    """
    return torchaudio.transforms.Resample(orig_freq=orig_sr, new_freq=target_sr)


def read_audio(path: PathLike, target_sr: int = 16000) -> torch.Tensor:
    """Read an audio file as a mono float32 waveform at ``target_sr``.

    Steps: soundfile read (any format and rate soundfile supports) -> mono
    by averaging the channels -> resampling with a cached
    ``torchaudio.transforms.Resample`` when the file rate differs.

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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Audio file not found (or not a regular file): '{path}'. Check "
            "the 'wav' column of the manifest (it must hold absolute paths to "
            "existing files) or re-run data preparation if the corpus moved."
        )
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as err:  # soundfile.LibsndfileError is a RuntimeError
        raise ValueError(
            f"Could not decode audio file '{path}' ({err}). Expected a format "
            "that soundfile/libsndfile reads (wav, flac, ogg, ...); convert it "
            "or remove it from the manifest."
        ) from err
    if data.shape[0] == 0:
        raise ValueError(
            f"Audio file '{path}' holds no samples. Remove it from the manifest "
            "(data preparation should skip empty files)."
        )
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype="float32")
    wav = torch.from_numpy(np.ascontiguousarray(mono))
    if sr != target_sr:
        wav = get_resampler(int(sr), int(target_sr))(wav)
    return wav


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
