r"""Pretrained emotion recognizer: export after training, load, classify files.

The recipe ends by exporting ``<output_folder>/inference/``
(:func:`export_inference`), a folder that loads wherever SpeechBrain, torch
and transformers are installed, without this project:

- ``hyperparams.yaml``: the inference model (encoder -> embedding MLP ->
  emotion classifier), written from the very constructor calls the recipe
  made (:func:`build_module`), the emotion list, the audio normaliser and a
  few facts about the training run; no absolute path;
- ``custom_interface.py``: a verbatim copy of
  :mod:`zsser_modules.custom_interface` (:class:`EmotionRecognizer`), with
  ``zsser_encoders.py``, ``zsser_speaker_norm.py``, ``zsser_audio.py`` and
  ``zsser_adaptation.py``, verbatim copies of :mod:`zsser_modules.encoders`,
  ``.speaker_norm``, ``.audio`` and ``.adaptation``: the one definition the
  project trains with;
- ``label_encoder.txt``: SpeechBrain's ``CategoricalEncoder`` file;
- ``<module>.ckpt``: the weights of the best checkpoint. A frozen pretrained
  encoder is not copied: it is named by hub id and pinned commit
  (``revision``) and downloaded at that commit; one from a local folder is
  copied in as ``<module>_model/``. An adapted encoder (LoRA, bottleneck
  adapters, gates) is such a frozen encoder plus its ``<module>.ckpt``,
  which holds its adapters' and gates' tensors only.

Load it in SpeechBrain's usual ways::

    from zsser_modules.inference import EmotionRecognizer
    recognizer = EmotionRecognizer.from_hparams(source="results/.../inference")
    out_prob, score, index, text_lab = recognizer.classify_file("speech.wav")

or, anywhere, ``foreign_class(source=..., pymodule_file="custom_interface.py",
classname="EmotionRecognizer")``. ``out_prob`` holds log-probabilities (as
SpeechBrain's classifiers). Audio is read with
:func:`zsser_modules.audio.load_audio` (SpeechBrain's
``AudioNormalizer``), exactly as in training: any sample rate, mono or
multi-channel; the folder records the training run's ``max_duration`` and
the model sees the same first ``max_duration`` seconds of every file as in
training (docs/recipe.md, "Duration policy").

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
import importlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Union

import soundfile
import torch

from zsser_modules import custom_interface
from zsser_modules.audio import check_max_duration, count_non_finite
from zsser_modules.custom_interface import (
    ENCODER_MODULES,  # noqa: F401  (re-exported: recipes/train.py)
    HEAD_MODULES,  # noqa: F401
    INTERFACE_FILE,
    SHIPPED_MODULES,
    EmotionRecognizer,
    hub_origin,
    model_chain,
)
from zsser_modules.encoders import MODEL_FILE_PATTERNS
from zsser_modules.labels import build_label_encoder

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

#: Module name of the exported interface (``custom_interface.py``).
INTERFACE_MODULE = Path(INTERFACE_FILE).stem
#: The exported label encoder (SpeechBrain's ``CategoricalEncoder`` format).
LABEL_FILE = "label_encoder.txt"
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
    recorded = {**bound, **kwargs}
    # What the module resolved while loading and an export must pin (the
    # commit hash of a pretrained encoder from the hub: ``revision``).
    export_arguments = getattr(module, "export_arguments", None)
    if callable(export_arguments):
        recorded.update(export_arguments())
    setattr(
        module,
        SPEC_ATTRIBUTE,
        (f"{target.__module__}.{target.__qualname__}", recorded),
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


class _Yaml(str):
    """A YAML expression written as it is (a tag), not as a JSON value."""


def _yaml_value(value: Any, where: str) -> str:
    """Write a plain value (number, string, bool, None, list) as inline YAML."""
    if isinstance(value, _Yaml):
        return str(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    try:
        text = json.dumps(value)
    except TypeError:
        raise ValueError(
            f"Cannot export {where}={value!r} ({type(value).__name__}) to YAML: "
            "only numbers, strings, booleans, null and lists can be exported. "
            "Leave this argument at its default in the YAML constructor."
        ) from None
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str) and os.path.isabs(item) and Path(item).exists():
            raise ValueError(
                f"Cannot export {where}={item!r}: an absolute path of this "
                "machine would not exist where the model is loaded. Leave this "
                "argument at its default, or make it a pretrained `source`."
            )
    return text


def _interface_target(target: str, where: str) -> str:
    """Class path in the exported YAML: our classes by their file in the folder."""
    exported = {f"{__package__}.{m}": name for m, name in SHIPPED_MODULES.items()}
    exported[custom_interface.__name__] = INTERFACE_MODULE
    for module, name in exported.items():
        if target.startswith(f"{module}."):
            return name + target[len(module) :]
    if target.split(".")[0] == __package__:
        files = [f"{m.replace('.', '/')}.py" for m in exported]
        raise ValueError(
            f"Cannot export {where}: its class {target} is defined in a module "
            "that exported folders do not carry, and the folder must load "
            f"without this project. Define (move) the class in one of {files}."
        )
    return target


def _copy_model_folder(source: Path, destination: Path) -> list[str]:
    """Copy (hard-link if possible) what a pretrained model folder loads from."""
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    for patterns in MODEL_FILE_PATTERNS:
        files = sorted({f for pattern in patterns for f in source.glob(pattern)})
        if any(f.match(patterns[-1]) for f in files):
            break
    for file in files:
        try:
            os.link(file, destination / file.name)
        except OSError:  # another file system, or no hard links
            shutil.copy2(file, destination / file.name)
    return [file.name for file in files]


def _pretrained_source(
    name: str, kwargs: dict[str, Any], folder: Path
) -> tuple[dict[str, Any], list[str]]:
    """Portable ``source``/``revision`` of a pretrained encoder; comment lines.

    A hub id is kept with the commit hash it was loaded at (``revision``,
    recorded by :func:`build_module`); a Hugging Face cache snapshot folder
    becomes its hub id and commit; any other local folder is copied into the
    exported folder as ``<name>_model/`` (hard links when possible) and named
    relatively through ``custom_interface.model_file``.
    """
    kwargs = dict(kwargs)
    kwargs.pop("save_path", None)  # the loading machine's default HF cache
    source = str(kwargs["source"])
    revision = kwargs.pop("revision", None)
    if Path(source).is_dir():
        origin = hub_origin(Path(source).absolute())
        if origin is None:
            copied = folder / f"{name}_model"
            _copy_model_folder(Path(source), copied)
            kwargs["source"] = _Yaml(
                f'!apply:{INTERFACE_MODULE}.model_file ["{copied.name}"]'
            )
            return kwargs, [
                f"# {name}: trained from a local folder, copied here as "
                f"{copied.name}/ (frozen weights included)."
            ]
        source, revision = origin
    kwargs["source"] = source
    if revision is None:
        return kwargs, [
            f"# {name}: hub model {source}, revision NOT pinned (unknown at "
            "export): it loads the newest."
        ]
    kwargs["revision"] = revision
    return kwargs, [
        f"# {name}: hub model {source} at commit {revision}; frozen weights "
        "are not stored here, they are downloaded from the hub at that commit."
    ]


def _adapter_state(module: torch.nn.Module) -> Callable[[], Any] | None:
    """``module.adapter_state_dict`` of an adapted encoder, else None.

    An adapted encoder (``zsser_modules.adaptation``) exports only its
    adapters' and gates' tensors: its frozen backbone is loaded from its
    ``source`` (the hub at the pinned commit, or the copied local folder),
    and its ``load_state_dict`` takes exactly such an adapter-only state.
    """
    if not getattr(module, "is_adapted", False):
        return None
    return getattr(module, "adapter_state_dict", None)


def export_inference(
    folder: PathLike,
    encoder: str,
    modules: Mapping[str, torch.nn.Module],
    classes: Sequence[str],
    sample_rate: int = 16000,
    weights_from_source: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    features: Sequence[str] = (),
    max_duration: float | None = None,
) -> Path:
    """Write a model folder that loads anywhere SpeechBrain does.

    The folder holds ``hyperparams.yaml`` (the modules rebuilt from the very
    constructor calls the recipe made, :func:`build_module`; a class of
    ``zsser_modules.<module>`` named ``zsser_<module>.<class>``),
    ``custom_interface.py`` (a verbatim copy of
    :mod:`zsser_modules.custom_interface`: :class:`EmotionRecognizer`) and
    the verbatim copies of the modules it runs (``SHIPPED_MODULES``:
    ``zsser_encoders.py``, ``zsser_speaker_norm.py``, ``zsser_audio.py``,
    ``zsser_adaptation.py``), all
    importing only SpeechBrain, torch and transformers, ``label_encoder.txt``
    (SpeechBrain's ``CategoricalEncoder`` format) and ``<module>.ckpt``
    weights. No absolute path is written. A pretrained encoder from the hub
    is named by its hub id and the commit it was loaded at; a frozen one is
    not stored (``weights_from_source``) but downloaded at that commit. A
    pretrained encoder from a local folder is copied into the folder (hard
    links when possible). Load it with :class:`EmotionRecognizer`'s
    ``from_hparams`` or, without this project, with
    ``foreign_class(source=folder, pymodule_file="custom_interface.py",
    classname="EmotionRecognizer")``.

    Arguments
    ---------
    folder : path-like
        Output folder (created; its previous files are overwritten).
    encoder : str
        ``"ssl"``, ``"whisper"``, ``"fbank"`` or ``"fbank_stats"`` (see
        ``ENCODER_MODULES``).
    modules : mapping
        Name -> module made by :func:`build_module`, with the trained weights.
        Must hold the modules of ``model_chain(encoder, features)``; other
        entries are ignored.
    classes : sequence of str
        Emotion names in index order.
    sample_rate : int
        Rate at which audio is read.
    weights_from_source : sequence of str
        Modules whose weights are not saved because their constructor reloads
        them (e.g. ``("ssl",)`` for a frozen SSL model). An adapted encoder
        (``zsser_modules.adaptation``) must not be listed: its
        ``<module>.ckpt`` holds its adapters and gates only (its backbone
        comes from its source, as a frozen encoder's).
    metadata : mapping, optional
        Plain facts about the training run, stored under ``trained_on``.
    features : sequence of str
        Modules applied to the encoder output before the heads (tensor in,
        tensor out, e.g. a normalisation with stored statistics); their
        classes must be defined in a module of ``SHIPPED_MODULES``.
    max_duration : float, optional
        The training run's ``max_duration`` (seconds; None: no crop), written
        to ``hyperparams.yaml``: the loaded model cuts every input to its
        first ``max_duration`` seconds, as training did.

    Returns
    -------
    pathlib.Path
        ``<folder>/hyperparams.yaml``.

    Example
    -------
    >>> import tempfile
    >>> from zsser_modules.encoders import FbankStatsEncoder
    >>> from speechbrain.lobes.models.VanillaNN import VanillaNN
    >>> from speechbrain.nnet.linear import Linear
    >>> modules = {"fbank_stats": build_module(FbankStatsEncoder, n_mels=20),
    ...     "embedding": build_module(VanillaNN, input_shape=[None, 120],
    ...                               dnn_blocks=1, dnn_neurons=6),
    ...     "emo_classifier": build_module(Linear, input_size=6, n_neurons=4)}
    >>> folder = Path(tempfile.mkdtemp()) / "inference"
    >>> export_inference(folder, "fbank_stats", modules,
    ...                  ["neutral", "happy", "angry", "sad"],
    ...                  weights_from_source=["fbank_stats"]).name
    'hyperparams.yaml'
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['custom_interface.py', 'embedding.ckpt', 'emo_classifier.ckpt',
     'hyperparams.yaml', 'label_encoder.txt', 'zsser_adaptation.py',
     'zsser_audio.py', 'zsser_encoders.py', 'zsser_speaker_norm.py']
    >>> rec = EmotionRecognizer.from_hparams(source=str(folder))
    >>> out_prob, score, index, text_lab = rec.classify_batch(torch.randn(2, 16000))
    >>> out_prob.shape, bool(torch.allclose(out_prob.exp().sum(-1), torch.ones(2)))
    (torch.Size([2, 4]), True)
    >>> text_lab[0] in ("neutral", "happy", "angry", "sad")
    True
    """
    names = model_chain(encoder, features)
    max_duration = check_max_duration(max_duration)
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(
            f"export_inference: modules {missing} are missing (got {sorted(modules)})."
        )
    adapted = [name for name in names if callable(_adapter_state(modules[name]))]
    lost = sorted(set(adapted) & set(weights_from_source))
    if lost:
        raise ValueError(
            f"export_inference: {lost} are adapted encoders: their adapters are "
            "trained weights, which weights_from_source would drop (only the "
            "frozen backbone comes from the source); remove them from "
            "weights_from_source."
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    lines = [
        "# Emotion recognizer exported by the zero-shot SER recipe (best",
        "# checkpoint). Loads where SpeechBrain, torch and transformers are",
        "# installed, without the recipe:",
        "#   from speechbrain.inference.interfaces import foreign_class",
        "#   rec = foreign_class(source=<this folder>, classname='EmotionRecognizer',",
        "#                       pymodule_file='custom_interface.py')",
        "#   out_prob, score, index, text_lab = rec.classify_file('speech.wav')",
        "# out_prob: log-probabilities over `emotions` (label_encoder.txt).",
        f"# Model: {' -> '.join(names)} -> log-softmax.",
        "# Code: custom_interface.py (EmotionRecognizer) and the modules it runs,",
        f"# {', '.join(f'{n}.py' for n in SHIPPED_MODULES.values())} (verbatim",
        "# copies of the recipe's own modules).",
        "",
        f"encoder: {_yaml_value(encoder, 'encoder')}",
        f"sample_rate: {int(sample_rate)}",
        "# Seconds of each input the model sees: its first max_duration seconds",
        "# (as in training; null: all), zero-padded to MIN_DURATION if shorter.",
        f"max_duration: {_yaml_value(max_duration, 'max_duration')}",
        f"emotions: {_yaml_value(list(classes), 'emotions')}",
        f"model_chain: {_yaml_value(names, 'model_chain')}",
        "",
        "# Audio files: SpeechBrain's loading, mono mix, resampled (as in training)",
        "audio_normalizer: !new:speechbrain.dataio.preprocess.AudioNormalizer",
        "    sample_rate: !ref <sample_rate>",
        "",
        "label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder",
    ]
    if metadata:
        lines += ["", "trained_on:"]
        for key, value in metadata.items():
            lines.append(f"    {key}: {_yaml_value(value, key)}")
    for name in names:
        target, kwargs = constructor_spec(modules[name])
        comments: list[str] = []
        if "source" in kwargs:  # a pretrained encoder (SSL, Whisper)
            kwargs, comments = _pretrained_source(name, kwargs, folder)
        if name in adapted:
            comments.append(
                f"# {name}: adapted, the backbone frozen: {name}.ckpt holds "
                "only the adapters and gates."
            )
        lines += ["", *comments, f"{name}: !new:{_interface_target(target, name)}"]
        for key, value in kwargs.items():
            lines.append(f"    {key}: {_yaml_value(value, f'{name}.{key}')}")
    lines += ["", "modules:"]
    lines += [f"    {name}: !ref <{name}>" for name in names]
    saved = [name for name in names if name not in weights_from_source]
    lines += ["", "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer"]
    lines += ["    loadables:"]
    lines += [f"        {name}: !ref <{name}>" for name in saved]
    lines += ["        label_encoder: !ref <label_encoder>"]
    lines += ["    paths:"]
    lines += [
        f'        label_encoder: !apply:{INTERFACE_MODULE}.model_file ["{LABEL_FILE}"]'
    ]
    hparams_file = folder / "hyperparams.yaml"
    hparams_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    for name in saved:
        module = modules[name]
        state = _adapter_state(module)  # an adapted encoder: adapters only
        state = state() if callable(state) else module.state_dict()
        torch.save(state, folder / f"{name}.ckpt")
    build_label_encoder(list(classes)).save(folder / LABEL_FILE)
    shutil.copyfile(custom_interface.__file__, folder / INTERFACE_FILE)
    for module, name in SHIPPED_MODULES.items():
        shipped = importlib.import_module(f"{__package__}.{module}")
        shutil.copyfile(shipped.__file__, folder / f"{name}.py")
    (folder / "custom.py").unlink(missing_ok=True)  # written by older exports
    return hparams_file


def find_inference_folder(run_folder: PathLike) -> Path:
    """Return the exported model folder of a run (or the folder itself).

    Arguments
    ---------
    run_folder : path-like
        A run's output folder (holding ``inference/``) or an inference folder.

    Returns
    -------
    pathlib.Path
        The folder holding the exported ``hyperparams.yaml`` (and
        ``custom_interface.py``; ``custom.py`` in exports of older versions).

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> (run / "inference").mkdir()
    >>> for name in ("hyperparams.yaml", "custom_interface.py"):
    ...     _ = (run / "inference" / name).write_text("")
    >>> find_inference_folder(run).name
    'inference'
    """
    run_folder = Path(run_folder)
    for folder in (run_folder / "inference", run_folder):
        interface = [folder / name for name in (INTERFACE_FILE, "custom.py")]
        if (folder / "hyperparams.yaml").is_file() and any(
            path.is_file() for path in interface
        ):
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
        # unpadded (the warning names the true length); cut to max_duration
        wav = recognizer.load_audio(path, min_duration=0.0)
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
    probabilities = out_prob[0].exp().tolist()  # out_prob: log-probabilities
    return text_lab[0], [f"{p:.6f}" for p in probabilities], "", "ok"


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
