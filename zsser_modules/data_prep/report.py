"""What a preparation found, wrote, skipped and warned about.

The reasons an item is not written (:data:`SKIP_REASONS`) or is written with
a warning, the :class:`SkipItem` a corpus parser raises, and
:class:`PrepReport`, logged as a summary and saved as
``<corpus>_report.json`` beside the manifest.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsser_modules.data_prep.manifest import PathLike
from zsser_modules.data_prep.speakers import _single_emotion_speakers
from zsser_modules.labels import ALL_EMOTIONS, LANGUAGES

if TYPE_CHECKING:
    from zsser_modules.data_prep.audio_files import AudioInfo

# Reasons for which an item is not written. "class not kept" is a choice of
# the user (keep_all_classes), the others are problems of the input.
CLASS_NOT_KEPT = "class not kept"
UNKNOWN_LABEL = "unknown label"
UNPARSABLE_NAME = "unparsable name"
DUPLICATE_ID = "duplicate ID"
EMPTY_FILE = "empty file"
ZERO_LENGTH = "zero-length audio"
UNREADABLE = "unreadable audio"
MISSING_AUDIO = "missing audio"
NO_METADATA = "no metadata row"

#: Every skip reason, in the order the report lists them.
SKIP_REASONS: tuple[str, ...] = (
    CLASS_NOT_KEPT,
    UNKNOWN_LABEL,
    UNPARSABLE_NAME,
    DUPLICATE_ID,
    EMPTY_FILE,
    ZERO_LENGTH,
    UNREADABLE,
    MISSING_AUDIO,
    NO_METADATA,
)

# Warnings: the item is written, the oddity is counted in the report.
LABEL_DISAGREEMENT = "label disagreement"
UNEXPECTED_SAMPLE_RATE = "unexpected sample rate"


class SkipItem(Exception):
    """Raised by a corpus parser for an item that must be skipped and counted.

    Arguments
    ---------
    reason : str
        One of ``SKIP_REASONS`` (e.g. ``UNPARSABLE_NAME``).
    detail : str
        What exactly was wrong, shown in the report's examples.

    Example
    -------
    >>> err = SkipItem(UNPARSABLE_NAME, "expected 03a01Wa.wav")
    >>> err.reason, err.detail
    ('unparsable name', 'expected 03a01Wa.wav')
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class PrepReport:
    """Counts of what a preparation found, wrote, skipped and warned about.

    Every skipped item is counted under a reason (``SKIP_REASONS``) with a few
    example paths; warnings count oddities of written items (e.g. a label
    cross-check disagreement). :meth:`finalize` adds counts per emotion,
    language and speaker, audio formats and speaker-emotion confounding.
    The report is logged as a short summary and saved as JSON beside the
    manifest.

    Arguments
    ---------
    corpus : str
        Corpus name.
    data_folder : path-like, optional
        The folder that was read.
    options : mapping, optional
        The options of the preparation.
    max_examples : int
        Example items kept per reason.

    Example
    -------
    >>> report = PrepReport("demo")
    >>> report.n_found = 3
    >>> report.skip(UNKNOWN_LABEL, "/x/c.wav", "label 'Z'")
    >>> rows = [dict(ID="demo_a", emo="sad", spk_id="demo_s1", lang="en",
    ...              corpus="demo", duration=1.0),
    ...         dict(ID="demo_b", emo="angry", spk_id="demo_s1", lang="en",
    ...              corpus="demo", duration=2.0)]
    >>> report.finalize(rows)
    >>> report.n_problems, report.n_written, report.confounding["n_confounded"]
    (1, 2, 0)
    >>> print(report.summary())
    demo: 3 files found, 2 rows written; 1 skipped for problems, 0 not kept (class)
      emotions: angry 1, sad 1
      SKIPPED: unknown label 1 (examples in the report JSON)
      speakers: 1, confounded with emotion (single emotion, spk_confounded=1): 0 of 1
    """

    def __init__(
        self,
        corpus: str,
        data_folder: PathLike | None = None,
        options: Mapping[str, Any] | None = None,
        max_examples: int = 5,
    ) -> None:
        self.corpus = corpus
        self.data_folder = None if data_folder is None else str(data_folder)
        self.options = dict(options or {})
        self.max_examples = max_examples
        self.n_found = 0
        self.n_written = 0
        self.manifest: str | None = None
        self.skipped: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.not_kept: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.counts: dict[str, dict[str, int]] = {}
        self.audio: dict[str, Any] = {}
        self.confounding: dict[str, Any] = {}
        self.notes: dict[str, Any] = {}
        self.formats: Counter[str] = Counter()

    def _example(self, reason: str, item: Any, detail: str) -> None:
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(f"{item} ({detail})" if detail else str(item))

    def skip(
        self, reason: str, item: Any, detail: str = "", emotion: str | None = None
    ) -> None:
        """Count an item that is not written.

        Arguments
        ---------
        reason : str
            Why (one of ``SKIP_REASONS``).
        item : Any
            The file or row (shown in the examples).
        detail : str
            What exactly was wrong.
        emotion : str, optional
            For ``CLASS_NOT_KEPT``: the canonical emotion that was dropped.

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.skip(CLASS_NOT_KEPT, "x.wav", emotion="fear")
        >>> report.skipped[CLASS_NOT_KEPT], report.not_kept["fear"]
        (1, 1)
        """
        self.skipped[reason] += 1
        if emotion is not None:
            self.not_kept[emotion] += 1
        self._example(reason, item, detail)

    def warn(self, reason: str, item: Any, detail: str = "", count: int = 1) -> None:
        """Count an oddity of an item that is still written.

        Arguments
        ---------
        reason : str
            Short name of the oddity, e.g. ``LABEL_DISAGREEMENT``.
        item : Any
            The file or row.
        detail : str
            Details shown in the examples.
        count : int
            How many occurrences to add (default 1).

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.warn(LABEL_DISAGREEMENT, "x.wav", "folder sad, txt happy")
        >>> report.warnings[LABEL_DISAGREEMENT]
        1
        """
        self.warnings[reason] += count
        self._example(reason, item, detail)

    def record_audio(self, info: AudioInfo) -> None:
        """Count the format (sample rate, channels) of a written file.

        Arguments
        ---------
        info : AudioInfo
            Header information of the file.

        Example
        -------
        >>> from zsser_modules.data_prep.audio_files import AudioInfo
        >>> report = PrepReport("demo")
        >>> report.record_audio(AudioInfo(1.0, 16000, 1, 16000))
        >>> report.formats
        Counter({'16000 Hz, 1 ch': 1})
        """
        self.formats[f"{info.sample_rate} Hz, {info.channels} ch"] += 1

    @property
    def n_problems(self) -> int:
        """Items skipped because of a problem of the input (not by choice)."""
        return sum(n for r, n in self.skipped.items() if r != CLASS_NOT_KEPT)

    def finalize(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add counts of the written rows (emotion, language, speaker, corpus).

        Arguments
        ---------
        rows : sequence of mappings
            The written manifest rows (keys ``emo``, ``lang``, ``spk_id``,
            ``corpus``, ``duration``).

        Example
        -------
        >>> report = PrepReport("demo")
        >>> report.finalize([dict(emo="sad", lang="en", spk_id="demo_a",
        ...                       corpus="demo", duration=1.0)])
        >>> report.counts["emotion"], report.confounding["n_confounded"]
        ({'sad': 1}, 1)
        """
        self.n_written = len(rows)

        def ordered(counter: Counter, order: Sequence[str] = ()) -> dict[str, int]:
            keys = [k for k in order if k in counter]
            keys += sorted(k for k in counter if k not in keys)
            return {k: counter[k] for k in keys}

        self.counts = {
            "emotion": ordered(Counter(r["emo"] for r in rows), ALL_EMOTIONS),
            "language": ordered(Counter(r["lang"] for r in rows), LANGUAGES),
            "corpus": ordered(Counter(r["corpus"] for r in rows)),
            "speaker": ordered(Counter(r["spk_id"] for r in rows)),
        }
        total = sum(float(r["duration"]) for r in rows)
        self.audio = {"hours": round(total / 3600, 3), "formats": dict(self.formats)}
        confounded, n_speakers = _single_emotion_speakers(
            (r["spk_id"] for r in rows), (r["emo"] for r in rows)
        )
        self.confounding = {
            "n_speakers": n_speakers,
            "n_confounded": len(confounded),
            "confounded_speakers": sorted(confounded),
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serializable dict.

        Returns
        -------
        dict
            Every field of the report.

        Example
        -------
        >>> PrepReport("demo").to_dict()["skipped"]["unknown label"]
        0
        """
        skipped = {r: self.skipped.get(r, 0) for r in SKIP_REASONS}
        skipped.update({r: n for r, n in self.skipped.items() if r not in skipped})
        return {
            "corpus": self.corpus,
            "data_folder": self.data_folder,
            "manifest": self.manifest,
            "options": self.options,
            "n_found": self.n_found,
            "n_written": self.n_written,
            "n_skipped_problems": self.n_problems,
            "skipped": skipped,
            "not_kept_by_emotion": dict(sorted(self.not_kept.items())),
            "warnings": dict(self.warnings),
            "examples": self.examples,
            "counts": self.counts,
            "audio": self.audio,
            "confounding": self.confounding,
            "notes": self.notes,
        }

    def save(self, path: PathLike) -> Path:
        """Save the report as JSON (UTF-8, indented).

        Arguments
        ---------
        path : path-like
            Output file, conventionally ``<save_folder>/<corpus>_report.json``.

        Returns
        -------
        Path
            ``path``.

        Example
        -------
        >>> import json, tempfile
        >>> out = PrepReport("demo").save(f"{tempfile.mkdtemp()}/demo_report.json")
        >>> json.loads(out.read_text())["corpus"]
        'demo'
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        return path

    def summary(self) -> str:
        """Return a short, human-readable summary (first line: the totals).

        Returns
        -------
        str
            A few lines: totals, emotions, skipped items by reason, warnings
            and speaker-emotion confounding.

        Example
        -------
        >>> print(PrepReport("demo").summary().splitlines()[0])
        demo: 0 files found, 0 rows written; 0 skipped for problems, 0 not kept (class)
        """
        lines = [
            f"{self.corpus}: {self.n_found} files found, {self.n_written} rows "
            f"written; {self.n_problems} skipped for problems, "
            f"{self.skipped.get(CLASS_NOT_KEPT, 0)} not kept (class)"
        ]
        if self.counts.get("emotion"):
            emos = ", ".join(f"{k} {v}" for k, v in self.counts["emotion"].items())
            lines.append(f"  emotions: {emos}")
        if self.not_kept:
            dropped = ", ".join(f"{k} {v}" for k, v in sorted(self.not_kept.items()))
            lines.append(f"  not kept (class not kept): {dropped}")
        problems = {r: n for r, n in self.skipped.items() if r != CLASS_NOT_KEPT and n}
        if problems:
            text = ", ".join(f"{r} {n}" for r, n in problems.items())
            lines.append(f"  SKIPPED: {text} (examples in the report JSON)")
        if self.warnings:
            text = ", ".join(f"{r} {n}" for r, n in self.warnings.items())
            lines.append(f"  warnings: {text}")
        if self.confounding:
            c = self.confounding
            lines.append(
                f"  speakers: {c['n_speakers']}, confounded with emotion (single "
                f"emotion, spk_confounded=1): {c['n_confounded']} of {c['n_speakers']}"
            )
        return "\n".join(lines)
