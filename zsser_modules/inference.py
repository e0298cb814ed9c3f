r"""Pretrained emotion recognizer: export after training, load, classify files.

The recipe ends by exporting ``<output_folder>/inference/``:

- ``hyperparams.yaml``: the inference model (encoder -> embedding MLP ->
  emotion classifier), written from the very constructor calls the recipe
  made (:func:`build_module`), the emotion list in index order, and a few
  facts about the training run;
- ``<module>.ckpt``: the weights of the best checkpoint (a frozen SSL model is
  not copied: it is reloaded from its ``source``);
- ``custom.py``: a one-line module for ``speechbrain.inference.foreign_class``.

Load it in SpeechBrain's usual ways::

    from zsser_modules.inference import EmotionRecognizer
    recognizer = EmotionRecognizer.from_hparams(source="results/.../inference")
    out_prob, score, index, text_lab = recognizer.classify_file("speech.wav")

or ``foreign_class(source=..., pymodule_file="custom.py",
classname="EmotionRecognizer")``. Audio is read with
:func:`zsser_modules.audio.read_audio`, exactly as in training: any sample
rate, mono or multi-channel.

Command line (files, or every audio file under folders: every format the
installed soundfile reads, mp3 included)::

    zsser-classify RUN_FOLDER PATH [PATH ...] --output predictions.csv
    python -m zsser_modules.inference RUN_FOLDER PATH [PATH ...]  # the same

A model trained with ``speaker_norm: per_speaker`` normalises a file with
the training data's global statistics (stored in the folder); add
``--one-speaker`` when the files are one speaker's, to use their own
statistics instead (``EmotionRecognizer.set_speaker_files``).

Bad input never ends in a traceback. A missing path, a folder without audio
or a run without an exported model: one line on stderr, exit code 2, nothing
classified. Per file, in the CSV's ``warning`` column (no label, no
probabilities): an unreadable file, a file with non-finite samples (NaN,
Inf: refused, with their count), a clip shorter than ``MIN_SECONDS`` or
silent (RMS below ``SILENCE_DBFS``). Exit code 2 if a file was unreadable or
refused, else 0.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import soundfile
import torch
from speechbrain.inference.interfaces import Pretrained

from zsser_modules.audio import read_audio

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

#: soundfile formats not searched for in folders: RAW has no header (its rate
#: and encoding are unknown), MAT4/MAT5 share ``.mat`` with MATLAB data files.
#: Such files are still classified when given by name.
UNSEARCHED_FORMATS: tuple[str, ...] = ("RAW", "MAT4", "MAT5")
# File suffixes of soundfile formats whose name is not their suffix.
_FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "AIFF": (".aiff", ".aif", ".aifc"),
    "AU": (".au", ".snd"),
    "IRCAM": (".sf", ".ircam"),
    "MPC2K": (".mpc",),
    "NIST": (".nist", ".sph"),
    "OGG": (".ogg", ".oga", ".opus"),
    "PAF": (".paf", ".fap"),
    "RF64": (".rf64",),
    "SVX": (".svx", ".8svx", ".iff"),
    "WAVEX": (".wav",),
}
#: Clips shorter than this (seconds) get a warning instead of a label.
MIN_SECONDS = 0.5
#: Clips whose RMS level is below this (dB relative to full scale) are
#: flagged as silent instead of labelled.
SILENCE_DBFS = -60.0


def audio_suffixes() -> tuple[str, ...]:
    """File suffixes of every format the installed soundfile (libsndfile) reads.

    Returns
    -------
    tuple of str
        Lower-case suffixes with the dot, sorted (``UNSEARCHED_FORMATS`` left
        out).

    Example
    -------
    >>> {".wav", ".flac", ".ogg"} <= set(audio_suffixes())
    True
    >>> ".mp3" in audio_suffixes()  # libsndfile >= 1.1 reads mp3
    True
    """
    suffixes = set()
    for name in soundfile.available_formats():
        if name not in UNSEARCHED_FORMATS:
            suffixes.update(_FORMAT_SUFFIXES.get(name, ("." + name.lower(),)))
    return tuple(sorted(suffixes))


#: Audio file suffixes the command line looks for in folders (any case).
AUDIO_SUFFIXES: tuple[str, ...] = audio_suffixes()


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


def clip_warning(
    wav: torch.Tensor,
    sample_rate: int,
    min_seconds: float = MIN_SECONDS,
    silence_dbfs: float = SILENCE_DBFS,
) -> str | None:
    """Why a (finite) clip should not get a label, or None if it may.

    Arguments
    ---------
    wav : torch.Tensor
        1-D waveform.
    sample_rate : int
        Its sampling rate.
    min_seconds : float
        Shortest duration that gets a label.
    silence_dbfs : float
        RMS level (dB full scale) under which the clip counts as silent.

    Returns
    -------
    str or None
        ``"too short: ..."``, ``"silent: ..."`` or None.

    Example
    -------
    >>> clip_warning(torch.zeros(10), 16000)
    'too short: 0.001 s, the minimum is 0.5 s'
    >>> clip_warning(torch.zeros(16000), 16000)
    'silent: RMS level -inf dBFS, below -60 dBFS'
    >>> clip_warning(0.1 * torch.randn(16000), 16000) is None
    True
    """
    seconds = wav.numel() / sample_rate
    if seconds < min_seconds:
        return f"too short: {seconds:.3f} s, the minimum is {min_seconds:g} s"
    rms = float(wav.double().square().mean().sqrt())
    level = 20 * torch.log10(torch.tensor(rms, dtype=torch.float64)).item()
    if level < silence_dbfs:
        return f"silent: RMS level {level:.0f} dBFS, below {silence_dbfs:g} dBFS"
    return None


#: Name of the attribute where :func:`build_module` records a constructor call.
SPEC_ATTRIBUTE = "_zsser_constructor"

#: Module names of the inference model, in forward order, per encoder type.
ENCODER_MODULES: dict[str, tuple[str, ...]] = {
    "ssl": ("ssl", "layer_sum"),
    "whisper": ("whisper", "layer_sum"),
    "fbank": ("fbank",),
    "fbank_stats": ("fbank_stats",),
}
HEAD_MODULES: tuple[str, ...] = ("embedding", "emo_classifier")
#: Optional module between the encoder and the heads: a
#: ``zsser_modules.speaker_norm.SpeakerNorm`` holding the training data's
#: global feature statistics (runs with ``speaker_norm: per_speaker``).
SPEAKER_NORM_MODULE = "speaker_norm"
#: Encoders loaded from a pretrained checkpoint (``ssl_source``): their
#: weights are reloaded from the source when frozen, fine-tuned with lr_ssl.
PRETRAINED_ENCODERS: tuple[str, ...] = ("ssl", "whisper")


def build_module(
    builder: Callable[..., torch.nn.Module], **kwargs: Any
) -> torch.nn.Module:
    """Call a module constructor and remember the call, for :func:`export_inference`.

    The recipe declares its modules in YAML as ``!name:`` constructors (a
    ``functools.partial``) and completes them with sizes known only at run
    time (encoder width, number of speakers). Recording the full call lets
    the exported ``hyperparams.yaml`` rebuild the same module with no
    duplicated architecture description.

    Arguments
    ---------
    builder : callable
        A class, or a ``functools.partial`` of a class with keyword arguments
        only (what HyperPyYAML's ``!name:`` produces).
    **kwargs : dict
        The remaining keyword arguments.

    Returns
    -------
    torch.nn.Module
        ``builder(**kwargs)``, carrying the constructor call.

    Example
    -------
    >>> builder = functools.partial(torch.nn.Linear, bias=False)
    >>> layer = build_module(builder, in_features=3, out_features=2)
    >>> constructor_spec(layer)
    ('torch.nn.modules.linear.Linear', {'bias': False, 'in_features': 3, 'out_features': 2})
    """  # noqa: E501
    target, bound = builder, {}
    while isinstance(target, functools.partial):
        if target.args:
            raise ValueError(
                f"build_module: {target!r} has positional arguments; declare the "
                "module in YAML with keyword arguments only."
            )
        bound = {**target.keywords, **bound}
        target = target.func
    if not isinstance(target, type):
        raise TypeError(
            f"build_module expects a class or a partial of one, got {target!r}."
        )
    module = target(**bound, **kwargs)
    setattr(
        module,
        SPEC_ATTRIBUTE,
        (f"{target.__module__}.{target.__qualname__}", {**bound, **kwargs}),
    )
    return module


def constructor_spec(module: torch.nn.Module) -> tuple[str, dict[str, Any]]:
    """Return the ``(class path, keyword arguments)`` recorded by :func:`build_module`.

    Arguments
    ---------
    module : torch.nn.Module
        A module made by :func:`build_module`.

    Returns
    -------
    tuple
        The dotted class path and the keyword arguments of the call.

    Example
    -------
    >>> spec = constructor_spec(build_module(torch.nn.ReLU))
    >>> spec
    ('torch.nn.modules.activation.ReLU', {})
    """
    spec = getattr(module, SPEC_ATTRIBUTE, None)
    if spec is None:
        raise ValueError(
            f"{type(module).__name__} was not made with build_module: its "
            "constructor call is unknown, so it cannot be exported."
        )
    return spec


def spec_only(module: torch.nn.Module) -> torch.nn.Module:
    """Return a parameter-free stand-in carrying ``module``'s constructor call.

    :func:`export_inference` needs only the constructor call of a module
    listed in ``weights_from_source`` (its weights are reloaded from its
    source). A recipe that releases such a module once it is no longer
    needed, e.g. a frozen SSL model whose features are cached, keeps this
    stand-in to export it.

    Arguments
    ---------
    module : torch.nn.Module
        A module made by :func:`build_module`.

    Returns
    -------
    torch.nn.Module
        An empty module with the same recorded constructor call.

    Example
    -------
    >>> layer = build_module(torch.nn.Linear, in_features=300, out_features=300)
    >>> stub = spec_only(layer)
    >>> constructor_spec(stub) == constructor_spec(layer), len(stub.state_dict())
    (True, 0)
    """
    stub = torch.nn.Module()
    setattr(stub, SPEC_ATTRIBUTE, constructor_spec(module))
    return stub


def _yaml_value(value: Any, where: str) -> str:
    """Write a plain value (number, string, bool, None, list) as inline YAML."""
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    try:
        return json.dumps(value)
    except TypeError:
        raise ValueError(
            f"Cannot export {where}={value!r} ({type(value).__name__}) to YAML: "
            "only numbers, strings, booleans, null and lists can be exported. "
            "Leave this argument at its default in the YAML constructor."
        ) from None


def _portable(key: str, value: Any) -> Any:
    """Make an existing relative ``source``/``save_path`` absolute (cwd-proof)."""
    if key in ("source", "save_path") and isinstance(value, (str, Path)):
        if Path(value).exists() and not Path(value).is_absolute():
            return str(Path(value).resolve())
    return value


def export_inference(
    folder: PathLike,
    encoder: str,
    modules: Mapping[str, torch.nn.Module],
    classes: Sequence[str],
    sample_rate: int = 16000,
    weights_from_source: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write an inference folder loadable by :class:`EmotionRecognizer`.

    Arguments
    ---------
    folder : path-like
        Output folder (created; its previous files are overwritten).
    encoder : str
        ``"ssl"``, ``"whisper"``, ``"fbank"`` or ``"fbank_stats"`` (see
        ``ENCODER_MODULES``).
    modules : mapping
        Name -> module made by :func:`build_module`, with the trained weights.
        Must hold the encoder modules of ``encoder`` plus ``embedding`` and
        ``emo_classifier``, and ``speaker_norm`` (a ``SpeakerNorm``) for a
        model trained on speaker-normalised features; other entries are
        ignored.
    classes : sequence of str
        Emotion names in index order.
    sample_rate : int
        Rate at which audio is read.
    weights_from_source : sequence of str
        Modules whose weights are not saved because their constructor reloads
        them (e.g. ``("ssl",)`` for a frozen SSL model).
    metadata : mapping, optional
        Plain facts about the training run, stored under ``trained_on``.

    Returns
    -------
    pathlib.Path
        ``<folder>/hyperparams.yaml``.

    Example
    -------
    >>> import tempfile
    >>> from zsser_modules.encoders import FbankEncoder
    >>> fbank = build_module(functools.partial(FbankEncoder, n_mels=20,
    ...     channels=[16, 16, 16, 16, 48], emb_dim=8, attention_channels=8,
    ...     se_channels=8))
    >>> from speechbrain.lobes.models.VanillaNN import VanillaNN
    >>> from speechbrain.nnet.linear import Linear
    >>> modules = {"fbank": fbank,
    ...     "embedding": build_module(VanillaNN, input_shape=[None, 8],
    ...                               dnn_blocks=1, dnn_neurons=6),
    ...     "emo_classifier": build_module(Linear, input_size=6, n_neurons=4)}
    >>> folder = Path(tempfile.mkdtemp()) / "inference"
    >>> export_inference(folder, "fbank", modules,
    ...                  ["neutral", "happy", "angry", "sad"]).name
    'hyperparams.yaml'
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['custom.py', 'embedding.ckpt', 'emo_classifier.ckpt', 'fbank.ckpt',
     'hyperparams.yaml']
    """
    if encoder not in ENCODER_MODULES:
        raise ValueError(
            f"encoder must be one of {sorted(ENCODER_MODULES)}, got {encoder!r}."
        )
    names = ENCODER_MODULES[encoder] + HEAD_MODULES
    if SPEAKER_NORM_MODULE in modules:  # speaker_norm: per_speaker
        names = ENCODER_MODULES[encoder] + (SPEAKER_NORM_MODULE,) + HEAD_MODULES
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(
            f"export_inference: modules {missing} are missing (got {sorted(modules)})."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    lines = [
        "# Emotion recognizer exported by recipes/train.py (best checkpoint).",
        "# Load: zsser_modules.inference.EmotionRecognizer.from_hparams(",
        "#           source=<this folder>)",
        f"# Model: {' -> '.join(names)} -> softmax over `emotions`.",
        "",
        f"encoder: {_yaml_value(encoder, 'encoder')}",
        f"sample_rate: {int(sample_rate)}",
        f"emotions: {_yaml_value(list(classes), 'emotions')}",
        "label_encoder: !apply:zsser_modules.labels.build_label_encoder "
        "[!ref <emotions>]",
    ]
    if metadata:
        lines.append("trained_on:")
        for key, value in metadata.items():
            lines.append(f"    {key}: {_yaml_value(value, key)}")
    for name in names:
        target, kwargs = constructor_spec(modules[name])
        lines += ["", f"{name}: !new:{target}"]
        for key, value in kwargs.items():
            value = _portable(key, value)
            lines.append(f"    {key}: {_yaml_value(value, f'{name}.{key}')}")
    lines += ["", "modules:"]
    lines += [f"    {name}: !ref <{name}>" for name in names]
    saved = [name for name in names if name not in weights_from_source]
    lines += ["", "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer"]
    lines += ["    loadables:"]
    lines += [f"        {name}: !ref <{name}>" for name in saved]
    hparams_file = folder / "hyperparams.yaml"
    hparams_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    for name in saved:
        torch.save(modules[name].state_dict(), folder / f"{name}.ckpt")
    (folder / "custom.py").write_text(
        '"""Entry point for speechbrain.inference.foreign_class."""\n\n'
        "from zsser_modules.inference import EmotionRecognizer  # noqa: F401\n",
        encoding="utf-8",
    )
    return hparams_file


class EmotionRecognizer(Pretrained):
    """Classify the emotion of utterances with a model exported by the recipe.

    The model is ``encoder -> embedding MLP -> emotion classifier``; the
    emotion probabilities are the softmax of the classifier output. Audio
    files are read with :func:`zsser_modules.audio.read_audio` (mono mix,
    resampled to ``sample_rate``), the function used in training.

    Return format of :meth:`classify_batch` and :meth:`classify_file` (the
    tuple of SpeechBrain's ``EncoderClassifier``, but with probabilities
    rather than log-probabilities):

    - ``out_prob``: tensor [batch, n_emotions], probabilities summing to 1,
      columns in the order of ``hparams.emotions``;
    - ``score``: tensor [batch], the probability of the predicted emotion;
    - ``index``: tensor [batch], the index of the predicted emotion;
    - ``text_lab``: list of the predicted emotion names.

    Arguments
    ---------
    *args, **kwargs
        See ``speechbrain.inference.interfaces.Pretrained``; use
        :meth:`from_hparams` (``source`` = the exported folder).

    Example
    -------
    >>> import tempfile
    >>> from zsser_modules.encoders import FbankEncoder
    >>> from speechbrain.lobes.models.VanillaNN import VanillaNN
    >>> from speechbrain.nnet.linear import Linear
    >>> fbank = build_module(functools.partial(FbankEncoder, n_mels=20,
    ...     channels=[16, 16, 16, 16, 48], emb_dim=8, attention_channels=8,
    ...     se_channels=8))
    >>> modules = {"fbank": fbank,
    ...     "embedding": build_module(VanillaNN, input_shape=[None, 8],
    ...                               dnn_blocks=1, dnn_neurons=6),
    ...     "emo_classifier": build_module(Linear, input_size=6, n_neurons=4)}
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = export_inference(folder, "fbank", modules,
    ...                      ["neutral", "happy", "angry", "sad"])
    >>> recognizer = EmotionRecognizer.from_hparams(source=str(folder))
    >>> out_prob, score, index, text_lab = recognizer.classify_batch(
    ...     torch.randn(2, 16000), torch.tensor([1.0, 0.7]))
    >>> out_prob.shape, bool(torch.allclose(out_prob.sum(-1), torch.ones(2)))
    (torch.Size([2, 4]), True)
    >>> text_lab[0] in ("neutral", "happy", "angry", "sad")
    True
    """

    HPARAMS_NEEDED = ["encoder", "sample_rate", "emotions", "label_encoder"]
    MODULES_NEEDED = list(HEAD_MODULES)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        encoder = self.hparams.encoder
        if encoder not in ENCODER_MODULES:
            raise ValueError(
                f"hyperparams.yaml: encoder must be one of {sorted(ENCODER_MODULES)}, "
                f"got {encoder!r}."
            )
        missing = [name for name in ENCODER_MODULES[encoder] if name not in self.mods]
        if missing:
            raise ValueError(
                f"hyperparams.yaml: encoder {encoder!r} needs the modules {missing}."
            )

    @property
    def emotions(self) -> list[str]:
        """The emotion names, in the column order of ``out_prob``."""
        return list(self.hparams.emotions)

    def encode_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the utterance embeddings (the space of the t-SNE figure).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] (or [time]) at ``hparams.sample_rate``,
            right-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch] (1.0 = longest). Default: all 1.

        Returns
        -------
        torch.Tensor
            Embeddings [batch, emb_dim].

        Raises
        ------
        ValueError
            If a waveform holds non-finite samples (never a NaN output).
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        bad = [count_non_finite(row) for row in wavs]
        if any(bad):
            rows = {i: n for i, n in enumerate(bad) if n}
            raise ValueError(
                f"Refused: non-finite samples (NaN or Inf) in the waveforms "
                f"(row: count) {rows}. Expected finite audio; check the file or "
                "the processing that produced it."
            )
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs = wavs.float().to(self.device)
        wav_lens = wav_lens.float().to(self.device)
        with torch.no_grad():
            encoded = self.encode_features(wavs, wav_lens)
            if SPEAKER_NORM_MODULE in self.mods:
                encoded = self.mods[SPEAKER_NORM_MODULE](encoded)
            if "layer_sum" in ENCODER_MODULES[self.hparams.encoder]:
                encoded = self.mods.layer_sum(encoded)
            return self.mods.embedding(encoded)

    def encode_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder's output (before any speaker normalisation), no autograd."""
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        with torch.no_grad():
            return self.mods[self.hparams.encoder](
                wavs.float().to(self.device), wav_lens.float().to(self.device)
            )

    @property
    def speaker_normalized(self) -> bool:
        """Whether the model was trained on speaker-normalised features."""
        return SPEAKER_NORM_MODULE in self.mods

    def set_speaker_files(self, paths: Sequence[PathLike]) -> None:
        """Normalise with the statistics of these files, taken as one speaker.

        For a model trained with ``speaker_norm: per_speaker`` only: its
        exported statistics (the training data's, all speakers pooled) are
        replaced by the element-wise mean and std of these files' encoder
        features, as the recipe does for every speaker of every split. Reload
        the model to go back to the exported statistics.

        Arguments
        ---------
        paths : sequence of path-like
            Audio files of one speaker (the more, the closer to training).
        """
        if not self.speaker_normalized:
            raise ValueError(
                "This model was trained without speaker normalisation "
                "(speaker_norm: none): there are no speaker statistics to set."
            )
        rate = int(self.hparams.sample_rate)
        self.mods[SPEAKER_NORM_MODULE].fit(
            self.encode_features(read_audio(path, target_sr=rate)[None])[0].cpu()
            for path in paths
        )
        self.mods[SPEAKER_NORM_MODULE].to(self.device)

    def classify_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Classify a batch of waveforms.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms [batch, time] (or [time]) at ``hparams.sample_rate``.
        wav_lens : torch.Tensor, optional
            Relative lengths [batch]. Default: all 1.

        Returns
        -------
        out_prob : torch.Tensor
            Emotion probabilities [batch, n_emotions].
        score : torch.Tensor
            Probability of the predicted emotion [batch].
        index : torch.Tensor
            Index of the predicted emotion [batch].
        text_lab : list of str
            Predicted emotion names.
        """
        emb = self.encode_batch(wavs, wav_lens)
        with torch.no_grad():
            out_prob = torch.softmax(self.mods.emo_classifier(emb), dim=-1)
        score, index = torch.max(out_prob, dim=-1)
        text_lab = self.hparams.label_encoder.decode_torch(index)
        return out_prob, score, index, text_lab

    def classify_file(
        self, path: PathLike
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Classify one audio file (any rate, mono or multi-channel).

        Arguments
        ---------
        path : str or os.PathLike
            Audio file readable by soundfile (wav, flac, ogg, ...).

        Returns
        -------
        tuple
            ``(out_prob, score, index, text_lab)`` for a batch of one, as in
            :meth:`classify_batch`.
        """
        wav = read_audio(path, target_sr=int(self.hparams.sample_rate))
        return self.classify_batch(wav.unsqueeze(0), torch.ones(1))

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Same as :meth:`classify_batch`."""
        return self.classify_batch(wavs, wav_lens)


def find_inference_folder(run_folder: PathLike) -> Path:
    """Return the exported model folder of a run (or the folder itself).

    Arguments
    ---------
    run_folder : path-like
        A run's output folder (holding ``inference/``) or an inference folder.

    Returns
    -------
    pathlib.Path
        The folder holding the exported ``hyperparams.yaml`` and ``custom.py``.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> (run / "inference").mkdir()
    >>> for name in ("hyperparams.yaml", "custom.py"):
    ...     _ = (run / "inference" / name).write_text("")
    >>> find_inference_folder(run).name
    'inference'
    """
    run_folder = Path(run_folder)
    for folder in (run_folder / "inference", run_folder):
        if (folder / "hyperparams.yaml").is_file() and (folder / "custom.py").is_file():
            return folder
    raise FileNotFoundError(
        f"No exported model in '{run_folder}': expected "
        f"'{run_folder / 'inference' / 'hyperparams.yaml'}', written by "
        "recipes/train.py at the end of training. Pass a run's output folder "
        "(or its inference/ subfolder) of a run that finished."
    )


class BadInputError(ValueError):
    """Input of the command line that cannot be used (one line says why)."""


def find_audio_files(paths: Sequence[PathLike]) -> list[Path]:
    """Expand files and folders into a list of audio files.

    A file is kept as given (whatever its suffix); a folder contributes every
    file under it (recursively) whose suffix is in ``AUDIO_SUFFIXES`` (every
    format the installed soundfile reads), any case, in sorted order.

    Arguments
    ---------
    paths : sequence of path-like
        Files and folders.

    Returns
    -------
    list of pathlib.Path
        The audio files, without duplicates, in order.

    Raises
    ------
    BadInputError
        For missing paths and folders without audio files (all of them named
        in one message, one line each).

    Example
    -------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("b/x.WAV", "a.flac", "c.mp3", "notes.txt"):
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / name).write_bytes(b"")
    >>> [p.relative_to(root).as_posix() for p in find_audio_files([root])]
    ['a.flac', 'b/x.WAV', 'c.mp3']
    >>> find_audio_files([root / "missing.wav"])
    Traceback (most recent call last):
    ...
    zsser_modules.inference.BadInputError: no such file or folder: '...missing.wav'
    """
    found: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not inside:
                problems.append(
                    f"no audio file in folder '{path}' (expected files readable "
                    f"by soundfile: {', '.join(AUDIO_SUFFIXES)})"
                )
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"no such file or folder: '{path}'")
    if problems:
        raise BadInputError("\n".join(problems))
    return list(dict.fromkeys(found))


def _classify_one(
    recognizer: EmotionRecognizer,
    path: Path,
    min_seconds: float,
    silence_dbfs: float,
) -> tuple[str, list[str], str, str]:
    """Classify one file for the CSV: ``(emotion, probabilities, warning, kind)``.

    ``kind`` is ``"ok"``, ``"flagged"`` (silent or too short),
    ``"refused"`` (non-finite samples) or ``"unreadable"``.
    """
    rate = int(recognizer.hparams.sample_rate)
    try:
        wav = read_audio(path, target_sr=rate)
    except (OSError, ValueError, RuntimeError) as err:
        return "", [], f"unreadable: {err}", "unreadable"
    bad = count_non_finite(wav)
    if bad:
        return (
            "",
            [],
            f"refused: {bad} of {wav.numel()} samples are not finite (NaN or Inf)",
            "refused",
        )
    warning = clip_warning(wav, rate, min_seconds, silence_dbfs)
    if warning is not None:
        return "", [], warning, "flagged"
    try:
        out_prob, _, _, text_lab = recognizer.classify_batch(wav[None], torch.ones(1))
    except (ValueError, RuntimeError) as err:  # e.g. shorter than one frame
        return "", [], f"refused: {err}", "refused"
    return text_lab[0], [f"{p:.6f}" for p in out_prob[0].tolist()], "", "ok"


def _error(message: str) -> int:
    """Print a command-line error (one line per problem) and return exit code 2."""
    for line in str(message).splitlines():
        print(f"zsser-classify: error: {line}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: classify audio files with a run's exported model, write a CSV.

    Arguments
    ---------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``); see ``--help``.

    Returns
    -------
    int
        Exit code: 0 if every file was read, 2 on bad input (a missing path,
        a folder without audio, no exported model: nothing is classified; or
        some file unreadable or refused: the CSV holds every file). The CSV
        has the columns ``path``, ``emotion``, one probability column per
        emotion (named after it) and ``warning`` (why a file has no label).

    Example
    -------
    >>> main(["/no/such/run", "speech.wav"])
    2
    """
    parser = argparse.ArgumentParser(
        prog="zsser-classify",
        description="Classify the emotion of audio files with a model exported "
        "by recipes/train.py; write one CSV row per file. Files shorter than "
        "--min-seconds, silent files, files with non-finite samples and "
        "unreadable files get no label but a `warning`.",
    )
    parser.add_argument("run_folder", help="run output folder (or its inference/)")
    parser.add_argument(
        "paths",
        nargs="+",
        help="audio files, or folders searched for every format soundfile reads",
    )
    parser.add_argument("--output", default="predictions.csv", help="CSV to write")
    parser.add_argument("--device", default="cpu", help="e.g. cpu or cuda:0")
    parser.add_argument(
        "--savedir", default=None, help="where to link the model files (optional)"
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=MIN_SECONDS,
        help=f"shorter clips get a warning, not a label (default {MIN_SECONDS})",
    )
    parser.add_argument(
        "--silence-dbfs",
        type=float,
        default=SILENCE_DBFS,
        help="clips with a lower RMS level (dB full scale) are flagged as "
        f"silent (default {SILENCE_DBFS:g})",
    )
    parser.add_argument(
        "--one-speaker",
        action="store_true",
        help="the files are one speaker's: a model trained with speaker_norm: "
        "per_speaker normalises them with their own statistics instead of the "
        "training data's global ones (docs/recipe.md, Speaker normalisation)",
    )
    args = parser.parse_args(argv)

    try:
        folder = find_inference_folder(args.run_folder)
        files = find_audio_files(args.paths)
    except (FileNotFoundError, BadInputError) as err:
        return _error(str(err))
    try:
        recognizer = EmotionRecognizer.from_hparams(
            source=str(folder.resolve()),
            savedir=args.savedir,
            run_opts={"device": args.device},
        )
    except (OSError, ValueError, RuntimeError) as err:
        message = " ".join(str(err).split())
        return _error(f"could not load the model of '{folder}': {message}")
    if args.one_speaker:
        if not recognizer.speaker_normalized:
            return _error(
                f"--one-speaker: the model of '{folder}' was trained without "
                "speaker normalisation (speaker_norm: none); drop --one-speaker."
            )
        try:
            recognizer.set_speaker_files(files)
        except (OSError, ValueError, RuntimeError) as err:
            message = " ".join(str(err).split())
            return _error(f"--one-speaker: could not compute the statistics: {message}")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    counts = {"ok": 0, "flagged": 0, "refused": 0, "unreadable": 0}
    problems: list[str] = []
    with open(output, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "emotion", *recognizer.emotions, "warning"])
        for path in files:
            emotion, probs, warning, kind = _classify_one(
                recognizer, path, args.min_seconds, args.silence_dbfs
            )
            counts[kind] += 1
            if kind in ("refused", "unreadable"):
                problems.append(f"{path}: {' '.join(warning.split())}")
            if not probs:
                probs = [""] * len(recognizer.emotions)
            writer.writerow([str(path), emotion, *probs, warning])
    print(
        f"Wrote {len(files)} rows to {output}: {counts['ok']} classified, "
        f"{counts['flagged']} flagged (silent or shorter than "
        f"{args.min_seconds:g} s), {counts['refused']} refused (non-finite "
        f"samples), {counts['unreadable']} unreadable."
    )
    if problems:
        return _error("\n".join(problems))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
