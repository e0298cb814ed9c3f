"""The inference interface of an exported model: :class:`EmotionRecognizer`.

Every model folder the recipe exports (``zsser_modules.inference``) holds a
verbatim copy of this file, so that on a machine with SpeechBrain, torch and
transformers but without this project::

    from speechbrain.inference.interfaces import foreign_class
    recognizer = foreign_class(source="<model folder>",
                               pymodule_file="custom_interface.py",
                               classname="EmotionRecognizer")
    out_prob, score, index, text_lab = recognizer.classify_file("speech.wav")

The model itself is not defined here. The folder also holds verbatim copies
of the project modules that define what it runs, the very files that
training runs (one definition each), named so that they cannot clash with a
user's modules (:data:`SHIPPED_MODULES`):

- ``zsser_encoders.py`` (:mod:`zsser_modules.encoders`): the encoders that
  ``hyperparams.yaml`` builds;
- ``zsser_speaker_norm.py`` (:mod:`zsser_modules.speaker_norm`): the speaker
  normalisation module of models trained with it;
- ``zsser_audio.py`` (:mod:`zsser_modules.audio`): the audio loading and the
  duration policy, with which :class:`EmotionRecognizer` reads its files.
- ``zsser_adaptation.py`` (:mod:`zsser_modules.adaptation`): the adapted
  encoders (LoRA, bottleneck adapters, gates) that ``hyperparams.yaml``
  builds for a model trained with ``encoder_adaptation``.

They import only the standard library, torch, SpeechBrain and (lazily)
transformers / huggingface_hub. What this file holds besides the class, and
why it must be here rather than in one of them:

- :func:`model_file` and :func:`hub_origin`: ``hyperparams.yaml`` names its
  own files (the label encoder, a copied local encoder) and this file finds
  its companions through them, wherever SpeechBrain put the folder (a
  ``savedir`` of links, the hub cache): the folder must be found before any
  companion can be imported;
- ``_shipped`` and ``_yaml_module_names``: the companions are the folder's
  copies in an exported folder and the project's own modules inside the
  project, under the names ``hyperparams.yaml`` gives them; a module
  ``__getattr__`` keeps exports made before this split loadable;
- :data:`ENCODER_MODULES`, :data:`HEAD_MODULES`, :func:`model_chain`: the
  order in which the class runs the folder's modules (the export writes the
  same chain).

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from speechbrain.inference.interfaces import Pretrained

#: Name of this file in an exported model folder.
INTERFACE_FILE = "custom_interface.py"
#: Project modules copied into every exported folder -> their name there.
SHIPPED_MODULES: dict[str, str] = {
    "audio": "zsser_audio",
    "encoders": "zsser_encoders",
    "speaker_norm": "zsser_speaker_norm",
    "adaptation": "zsser_adaptation",  # after encoders: it imports them
}
# Sources of the model folders being loaded by EmotionRecognizer.from_hparams.
_LOADING: list[str] = []


def hub_origin(folder: str | os.PathLike) -> tuple[str, str] | None:
    """Return the hub repository and commit of a Hugging Face cache snapshot.

    Arguments
    ---------
    folder : str or os.PathLike
        A folder, e.g. ``<cache>/models--org--name/snapshots/<commit>``.

    Returns
    -------
    tuple of str or None
        ``(repo_id, commit)``, or None if ``folder`` is not such a snapshot.

    Example
    -------
    >>> hub_origin("/cache/models--facebook--wav2vec2-base/snapshots/0123abc")
    ('facebook/wav2vec2-base', '0123abc')
    >>> hub_origin("/data/my_model") is None
    True
    """
    parts = Path(folder).parts
    if len(parts) >= 3 and parts[-2] == "snapshots":
        if parts[-3].startswith("models--"):
            return parts[-3][len("models--") :].replace("--", "/"), parts[-1]
    return None


def _link_chain(path: Path) -> list[Path]:
    """Folders of ``path`` and of every symbolic link it leads through."""
    folders = [path.parent]
    for _ in range(16):
        if not path.is_symlink():
            break
        path = path.parent / os.readlink(path)
        folders.append(Path(os.path.normpath(path.parent)))
    return folders


def model_file(name: str) -> str:
    """Return the path of a file or folder of the model folder being loaded.

    SpeechBrain reads relative paths from the working directory, so the
    exported ``hyperparams.yaml`` names its own files through this function.
    The model folder is, in this order: the ``source`` given to
    :meth:`EmotionRecognizer.from_hparams`; under ``foreign_class``, the
    folder it fetched this file into (the last one on ``sys.path``), followed
    through symbolic links back to where it came from; the folder of this
    file. A model folder on the Hugging Face hub is completed from the hub
    (``huggingface_hub.snapshot_download``).

    Arguments
    ---------
    name : str
        Relative path inside the model folder.

    Returns
    -------
    str
        The path of ``name``.

    Raises
    ------
    FileNotFoundError
        If no candidate folder holds ``name`` (the message lists them).
    """
    candidates: list[Path] = []
    hub: list[tuple[str, str | None]] = []
    for source in _LOADING[-1:]:
        if Path(source).is_dir():
            candidates.append(Path(source))
        else:
            hub.append((source, None))
    for entry in reversed(sys.path):
        start = Path(entry or ".") / INTERFACE_FILE
        if start.is_file():
            candidates += _link_chain(start)
    candidates += _link_chain(Path(__file__))
    for folder in candidates:
        if (folder / name).exists():
            return str(folder / name)
    hub += [origin for origin in map(hub_origin, candidates) if origin]
    for repo_id, commit in hub[:1]:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id, revision=commit, allow_patterns=[name, f"{name}/*"]
        )
        if (Path(folder) / name).exists():
            return str(Path(folder) / name)
    raise FileNotFoundError(
        f"'{name}' of the exported model was not found in "
        f"{[str(c) for c in dict.fromkeys(candidates)]}. It belongs next to "
        f"hyperparams.yaml and {INTERFACE_FILE}; load the model with "
        "EmotionRecognizer.from_hparams(source=<model folder>) or "
        "foreign_class(source=<model folder>, ...), or pass its location in "
        "`overrides`."
    )


def _shipped(module: str) -> ModuleType:
    """One of :data:`SHIPPED_MODULES`: the project's, or the folder's copy.

    Inside the project this file is ``zsser_modules.custom_interface`` and
    the module is ``zsser_modules.<module>``. In an exported folder the copy
    ``zsser_<module>.py`` beside this file is imported once per process
    under that name, the name ``hyperparams.yaml`` gives its classes.
    """
    if __package__:
        return importlib.import_module(f"{__package__}.{module}")
    name = SHIPPED_MODULES[module]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, model_file(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


_MODULES = {name: _shipped(module) for module, name in SHIPPED_MODULES.items()}
audio = _MODULES["zsser_audio"]


def __getattr__(name: str) -> Any:
    """Classes of the shipped modules, by the names older exports gave them.

    Exports made before the encoders left this file name them
    ``custom_interface.<class>`` in ``hyperparams.yaml``; they still load.
    """
    for module in _MODULES.values():
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def _yaml_module_names() -> Iterator[None]:
    """While ``hyperparams.yaml`` is read, its module names mean these modules.

    ``custom_interface`` means this very module, so that a project that
    ships this file under another name builds its own classes, and
    ``zsser_<module>`` the shipped modules this one imported.
    """
    names = {Path(INTERFACE_FILE).stem: sys.modules.get(__name__), **_MODULES}
    names = {name: module for name, module in names.items() if module is not None}
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


#: Module names of the encoder, in forward order, per encoder type.
ENCODER_MODULES: dict[str, tuple[str, ...]] = {
    "ssl": ("ssl", "layer_sum"),
    "whisper": ("whisper", "layer_sum"),
    "fbank": ("fbank",),
    "fbank_stats": ("fbank_stats",),
}
#: Optional module on the encoder's output: a ``SpeakerNorm`` holding the
#: training data's global feature statistics (``speaker_norm: per_speaker``).
SPEAKER_NORM_MODULE = "speaker_norm"
#: The heads after the encoder: the shared embedding, the emotion classifier.
HEAD_MODULES: tuple[str, ...] = ("embedding", "emo_classifier")


def model_chain(encoder: str, features: Sequence[str] = ()) -> list[str]:
    """Return the modules of the inference model in forward order.

    Arguments
    ---------
    encoder : str
        Key of ``ENCODER_MODULES``.
    features : sequence of str
        Modules applied to the encoder's output (tensor in, tensor out),
        e.g. a normalisation of the frozen features (``speaker_norm``): they
        come right after the encoder's first module, before a learned layer
        weighting, as the recipe applies them to the cached features.

    Returns
    -------
    list of str
        The encoder's first module, ``features``, its other modules, then
        ``HEAD_MODULES``.

    Example
    -------
    >>> model_chain("ssl")
    ['ssl', 'layer_sum', 'embedding', 'emo_classifier']
    >>> model_chain("whisper", ["speaker_norm"])
    ['whisper', 'speaker_norm', 'layer_sum', 'embedding', 'emo_classifier']
    """
    if encoder not in ENCODER_MODULES:
        raise ValueError(
            f"encoder must be one of {sorted(ENCODER_MODULES)}, got {encoder!r}."
        )
    first, *rest = ENCODER_MODULES[encoder]
    return [first, *features, *rest, *HEAD_MODULES]


class EmotionRecognizer(Pretrained):
    """Classify the emotion of utterances with a model exported by the recipe.

    The model runs the modules of ``hparams.model_chain`` in order (the
    encoder on the waveforms, then tensor to tensor: e.g. ``fbank_stats ->
    embedding -> emo_classifier``); the output is the log-softmax of the
    emotion classifier, as in training (``log_softmax`` + NLL). Audio files
    are read with ``load_audio`` of ``zsser_audio.py`` (SpeechBrain's
    ``audio_io.load`` and the ``audio_normalizer`` of ``hyperparams.yaml``:
    mono mix, resampled to ``sample_rate``), the function the recipe trains
    with, and cut to the training run's ``max_duration`` (``hyperparams.yaml``;
    a folder without it: no crop): the first ``max_duration`` seconds,
    zero-padded to ``MIN_DURATION`` if shorter. Waveforms given to
    :meth:`classify_batch` and :meth:`encode_batch` get the same policy, row
    by row, and are refused if they hold non-finite samples.

    Outputs of :meth:`classify_batch` and :meth:`classify_file` follow
    SpeechBrain's ``EncoderClassifier``:

    - ``out_prob``: tensor [batch, n_emotions], log-probabilities (their
      ``exp()`` sums to 1), columns in the order of the label encoder;
    - ``score``: tensor [batch], the log-probability of the predicted emotion;
    - ``index``: tensor [batch], the index of the predicted emotion;
    - ``text_lab``: list of the predicted emotion names.

    Arguments
    ---------
    *args, **kwargs
        See ``speechbrain.inference.interfaces.Pretrained``.
    """

    HPARAMS_NEEDED = ["encoder", "sample_rate", "emotions", "label_encoder"]
    MODULES_NEEDED = list(HEAD_MODULES)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        encoder = self.hparams.encoder
        chain = getattr(self.hparams, "model_chain", None)
        self.chain = list(chain) if chain else model_chain(encoder)
        missing = [name for name in self.chain if name not in self.mods]
        if missing:
            raise ValueError(
                f"hyperparams.yaml: model_chain {self.chain} names modules "
                f"{missing} that are not in `modules`."
            )
        encoder_modules = ENCODER_MODULES.get(encoder)
        if (
            encoder_modules is None
            or self.chain[0] != encoder_modules[0]
            or not set(encoder_modules) <= set(self.chain)
        ):
            raise ValueError(
                f"hyperparams.yaml: encoder must be one of {sorted(ENCODER_MODULES)} "
                f"and model_chain must start with its modules; got {encoder!r} "
                f"and {self.chain}."
            )
        labels = self.hparams.label_encoder
        labels.expect_len(len(labels))  # read from label_encoder.txt
        decoded = [labels.ind2lab[i] for i in range(len(labels))]
        if decoded != list(self.hparams.emotions):
            raise ValueError(
                f"hyperparams.yaml: label_encoder.txt holds {decoded}, but "
                f"`emotions` says {list(self.hparams.emotions)}; the files do "
                "not belong together (export the model again)."
            )

    @classmethod
    def from_hparams(cls, source: Any, *args: Any, **kwargs: Any) -> Any:
        """Load an exported model folder (local folder or hub repository).

        As ``Pretrained.from_hparams``; while ``hyperparams.yaml`` is read,
        ``source`` is where :func:`model_file` looks first and the module
        names it uses mean this module and the shipped ones it imported.

        Arguments
        ---------
        source : str or os.PathLike
            The exported folder, or a hub repository id.
        *args : tuple
            As ``Pretrained.from_hparams``.
        **kwargs : dict
            As ``Pretrained.from_hparams`` (``savedir``, ``run_opts``, ...).

        Returns
        -------
        EmotionRecognizer
            The loaded recognizer.
        """
        local = Path(str(source)).is_dir()
        _LOADING.append(str(Path(source).absolute()) if local else str(source))
        try:
            with _yaml_module_names():
                return super().from_hparams(source, *args, **kwargs)
        finally:
            _LOADING.pop()

    @property
    def emotions(self) -> list[str]:
        """The emotion names, in the column order of ``out_prob``."""
        return list(self.hparams.emotions)

    @property
    def max_duration(self) -> float | None:
        """Seconds of each clip the model sees (the training run's; None: all)."""
        return audio.check_max_duration(getattr(self.hparams, "max_duration", None))

    @property
    def speaker_normalized(self) -> bool:
        """Whether the model was trained on speaker-normalised features."""
        return SPEAKER_NORM_MODULE in self.chain

    def load_audio(
        self,
        path: str | os.PathLike,
        savedir: Any = None,
        min_duration: float = audio.MIN_DURATION,
    ) -> torch.Tensor:
        """Read a local audio file as this model's input (``load_audio``).

        Arguments
        ---------
        path : str or os.PathLike
            Audio file (any rate, mono or multi-channel).
        savedir : None
            Unused (``Pretrained.load_audio``'s signature).
        min_duration : float
            Zero-pad shorter clips to this many seconds (``MIN_DURATION``, as
            in training; 0: no padding, e.g. to measure the true length:
            :meth:`classify_batch` pads anyway).

        Returns
        -------
        torch.Tensor
            1-D waveform at ``hparams.sample_rate``: the first
            :attr:`max_duration` seconds of the file.
        """
        return audio.load_audio(
            path,
            normalizer=self.audio_normalizer,
            max_duration=self.max_duration,
            min_duration=min_duration,
        )

    def encode_features(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder's output (before any speaker normalisation).

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
            The first module's output (e.g. pooled layers [batch, L+1, D]).

        Raises
        ------
        ValueError
            If a waveform holds non-finite samples (never a NaN output).
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        bad = {i: n for i, n in enumerate(map(audio.count_non_finite, wavs)) if n}
        if bad:
            raise ValueError(
                f"Refused: non-finite samples (NaN or Inf) in the waveforms "
                f"(row: count) {bad}. Expected finite audio; check the file or "
                "the processing that produced it."
            )
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wavs, wav_lens = audio.fit_batch_duration(
            wavs.float(),
            wav_lens.float(),
            int(self.hparams.sample_rate),
            self.max_duration,
        )
        with torch.no_grad():
            return self.mods[self.chain[0]](
                wavs.to(self.device), wav_lens.float().to(self.device)
            )

    def encode_batch(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Compute the utterance embeddings (the space of the t-SNE figure).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms, as for :meth:`encode_features`.
        wav_lens : torch.Tensor, optional
            Their relative lengths, as for :meth:`encode_features`.

        Returns
        -------
        torch.Tensor
            Embeddings [batch, emb_dim] (the input of the last module).
        """
        out = self.encode_features(wavs, wav_lens)
        with torch.no_grad():
            for name in self.chain[1:-1]:
                out = self.mods[name](out)
        return out

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
            Emotion log-probabilities [batch, n_emotions].
        score : torch.Tensor
            Log-probability of the predicted emotion [batch].
        index : torch.Tensor
            Index of the predicted emotion [batch].
        text_lab : list of str
            Predicted emotion names.
        """
        emb = self.encode_batch(wavs, wav_lens)
        with torch.no_grad():
            logits = self.mods[self.chain[-1]](emb)
        out_prob = torch.log_softmax(logits.float(), dim=-1)
        score, index = torch.max(out_prob, dim=-1)
        text_lab = self.hparams.label_encoder.decode_torch(index)
        return out_prob, score, index, text_lab

    def classify_file(
        self, path: str | os.PathLike
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
        return self.classify_batch(self.load_audio(path)[None], torch.ones(1))

    def forward(
        self, wavs: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """Same as :meth:`classify_batch`."""
        return self.classify_batch(wavs, wav_lens)

    def set_speaker_files(self, paths: Sequence[str | os.PathLike]) -> None:
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
        self.mods[SPEAKER_NORM_MODULE].fit(
            self.encode_features(self.load_audio(path))[0].cpu() for path in paths
        )
        self.mods[SPEAKER_NORM_MODULE].to(self.device)
