"""eSpeak NG through ctypes, one private library copy per synthesiser.

:func:`espeak_paths` finds the library and its voice data (the
``espeakng-loader`` package, or ``ZSSER_ESPEAK_LIBRARY`` and
``ZSSER_ESPEAK_DATA``); :class:`EspeakSynth` synthesises a sentence with a
voice and prosody settings, byte-reproducibly.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.optional import missing_extra_message

#: eSpeak NG voice (language) name of each language code.
ESPEAK_LANGUAGE: dict[str, str] = {
    "en": "en",
    "zh": "cmn",
    "de": "de",
    "fr": "fr",
    "ur": "ur",
}


class EspeakUnavailableError(RuntimeError):
    """eSpeak NG (library or voice data) cannot be loaded or used."""


_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_WHY = "The demo corpus is synthesised with eSpeak NG, which could not be loaded."
_FIX = (
    "Fix: install the Python package 'espeakng-loader' (the demo extra: "
    'pip install "zsser[demo]", or pip install -e ".[demo]" in a clone of the '
    "repository), or point the environment variables ZSSER_ESPEAK_LIBRARY "
    "and ZSSER_ESPEAK_DATA to an eSpeak NG shared library and its "
    "espeak-ng-data folder (e.g. /usr/lib/x86_64-linux-gnu/libespeak-ng.so.1 "
    "and /usr/lib/x86_64-linux-gnu/espeak-ng-data)."
)


def espeak_paths() -> tuple[Path, Path]:
    """Locate the eSpeak NG shared library and its voice data folder.

    The environment variables ``ZSSER_ESPEAK_LIBRARY`` and
    ``ZSSER_ESPEAK_DATA`` take precedence; otherwise the copies shipped by the
    ``espeakng-loader`` package are used.

    Returns
    -------
    library : Path
        The shared library (``libespeak-ng.so`` or similar).
    data : Path
        The ``espeak-ng-data`` folder.

    Raises
    ------
    EspeakUnavailableError
        If neither is available, with what failed, why, and how to fix it.

    Example
    -------
    >>> library, data = espeak_paths()
    >>> data.name
    'espeak-ng-data'
    """
    library = os.environ.get("ZSSER_ESPEAK_LIBRARY")
    data = os.environ.get("ZSSER_ESPEAK_DATA")
    library_from = "ZSSER_ESPEAK_LIBRARY" if library else "espeakng-loader"
    data_from = "ZSSER_ESPEAK_DATA" if data else "espeakng-loader"
    if not library or not data:
        try:
            import espeakng_loader
        except ImportError:
            raise EspeakUnavailableError(
                missing_extra_message(
                    "demo",
                    "Synthesising the demo corpus (eSpeak NG)",
                    "espeakng_loader",
                )
                + "; or point ZSSER_ESPEAK_LIBRARY and ZSSER_ESPEAK_DATA to an eSpeak "
                "NG library and its espeak-ng-data folder."
            ) from None
        library = library or espeakng_loader.get_library_path()
        try:
            data = data or espeakng_loader.get_data_path()
        except RuntimeError as err:
            raise EspeakUnavailableError(
                f"{_WHY} Its voice data was not found ({err}). {_FIX}"
            ) from None
    library, data = Path(library), Path(data)
    if not library.is_file():
        raise EspeakUnavailableError(
            f"{_WHY} The shared library {library} (from {library_from}) does not "
            f"exist. {_FIX}"
        )
    if not (data / "phontab").is_file():
        raise EspeakUnavailableError(
            f"{_WHY} The voice data folder {data} (from {data_from}) does not "
            f"exist or has no 'phontab' file. {_FIX}"
        )
    return library, data


class EspeakSynth:
    """A private, freshly initialised eSpeak NG instance (22050 Hz int16).

    eSpeak NG keeps global state between utterances (pitch flutter phase,
    automatic gain control) and seeds its breath noise from the clock, so the
    output for a text depends on what was synthesised before, and when. This
    class loads its own copy of the shared library on :meth:`open` (seeding
    the noise: eSpeak's generator and the C library's ``rand()``, which the
    Klatt voices use) and unloads it on :meth:`close`: each open/close cycle starts
    from the same state, which makes a fixed sequence of utterances
    byte-reproducible. Two instances never share state.

    Arguments
    ---------
    workdir : path-like, optional
        Folder for the library copy (default: a temporary folder removed
        with the instance).

    Example
    -------
    >>> with EspeakSynth() as tts:
    ...     tts.set_voice("en+m3")
    ...     wav = tts.synth("Hello.", wpm=170, pitch=50, pitch_range=50)
    >>> wav.dtype, tts.sample_rate, 0.2 < len(wav) / tts.sample_rate < 1.0
    (dtype('int16'), 22050, True)
    """

    def __init__(self, workdir: PathLike | None = None) -> None:
        library, self.data_path = espeak_paths()
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="zsser-espeak-")
            workdir = self._tmp.name
        fd, name = tempfile.mkstemp(
            dir=workdir, prefix="private-", suffix=f"-{library.name}"
        )
        os.close(fd)
        self._copy = Path(name)
        shutil.copyfile(library, self._copy)
        self._lib: Any = None
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)
        self.sample_rate = 0
        self.version = ""

    def _collect(self, wav: Any, n_samples: int, events: Any) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0

    def open(self, seed: int = 0) -> EspeakSynth:
        """Load and initialise a fresh library instance.

        Arguments
        ---------
        seed : int
            Seed of eSpeak's internal noise generator (breathy voices).

        Returns
        -------
        EspeakSynth
            ``self``.

        Example
        -------
        >>> tts = EspeakSynth().open()
        >>> tts.version[:1].isdigit()
        True
        >>> tts.close()
        """
        if self._lib is not None:
            raise RuntimeError("EspeakSynth is already open.")
        try:
            lib = ctypes.CDLL(str(self._copy))
        except OSError as err:
            raise EspeakUnavailableError(
                f"{_WHY} Could not load the shared library {self._copy} (a "
                f"private copy of {espeak_paths()[0]}): {err}. {_FIX}"
            ) from None
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0
        )
        if rate <= 0:
            self._unload(lib)
            raise EspeakUnavailableError(
                f"{_WHY} espeak_Initialize failed (returned {rate}) with the "
                f"voice data folder {self.data_path}: the folder is incomplete or "
                f"from another eSpeak NG version. {_FIX}"
            )
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        self.sample_rate = rate
        self.version = (lib.espeak_Info(None) or b"").decode()
        # Breath noise (voices such as f2, f3, Alicia) comes from a random
        # generator that eSpeak seeds from the clock: seed it ourselves. The
        # Klatt synthesiser (variants with a "klatt" line: caleb, Reed,
        # klatt2, robosoft, ...) draws its noise from the C library's rand(),
        # whose state is the process's, not the library copy's: seed that too,
        # or such a voice depends on everything synthesised before it.
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        ctypes.CDLL(None).srand(int(seed) & 0x7FFFFFFF)
        return self

    @staticmethod
    def _unload(lib: Any) -> None:
        import _ctypes

        handle = lib._handle
        close = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary
        close(handle)

    def close(self) -> None:
        """Terminate and unload the library instance (its state is dropped).

        Example
        -------
        >>> EspeakSynth().open().close()
        """
        if self._lib is None:
            return
        lib, self._lib = self._lib, None
        lib.espeak_Terminate()
        self._unload(lib)

    def __enter__(self) -> EspeakSynth:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_voice(self, name: str) -> None:
        """Select a voice, e.g. ``"de+f2"`` (language + variant).

        Arguments
        ---------
        name : str
            eSpeak NG voice name.

        Raises
        ------
        EspeakUnavailableError
            If the voice is not found in the voice data.

        Example
        -------
        >>> with EspeakSynth() as tts:
        ...     tts.set_voice("cmn+f2")
        """
        if self._lib is None:
            raise RuntimeError("Call open() (or use a with-block) first.")
        status = self._lib.espeak_SetVoiceByName(name.encode())
        if status != 0:
            raise EspeakUnavailableError(
                f"eSpeak NG has no voice {name!r} in {self.data_path} (error "
                f"{status}). The demo needs the languages "
                f"{sorted(set(ESPEAK_LANGUAGE.values()))} and the variants of "
                "SPEAKER_VARIANTS; the data shipped by espeakng-loader has them."
            )

    def synth(
        self,
        text: str,
        wpm: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        word_gap: int = 0,
        volume: int = 100,
    ) -> np.ndarray:
        """Synthesise one text with the current voice.

        Every parameter is set for each call (eSpeak keeps them between calls).

        Arguments
        ---------
        text : str
            UTF-8 text.
        wpm : int
            Speaking rate in words per minute (80 to 450).
        pitch : int
            Base pitch, 0 to 100 (50 = the voice's own; +50 = one octave up).
        pitch_range : int
            Pitch range, 0 to 100 (50 = the voice's own, 0 = monotone).
        word_gap : int
            Extra pause between words, in units of 10 ms.
        volume : int
            Amplitude, 0 to 200 (above ~120 eSpeak's limiter changes the sound).

        Returns
        -------
        numpy.ndarray
            int16 samples at ``self.sample_rate``.

        Example
        -------
        >>> with EspeakSynth() as tts:
        ...     tts.set_voice("fr+m5")
        ...     slow = tts.synth("Bonjour à tous.", wpm=100)
        ...     fast = tts.synth("Bonjour à tous.", wpm=300)
        >>> len(slow) > len(fast)
        True
        """
        if self._lib is None:
            raise RuntimeError("Call open() (or use a with-block) first.")
        lib = self._lib
        for parameter, value in (
            (_RATE, wpm),
            (_PITCH, pitch),
            (_RANGE, pitch_range),
            (_WORDGAP, word_gap),
            (_VOLUME, volume),
        ):
            lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with error {status} on {text!r}.")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)
