#!/usr/bin/env python3
"""Write the hyperparameter files of ``hparams/`` from one template.

Every file a user gives to ``recipes/train.py`` is a standalone HyperPyYAML
file, as in any SpeechBrain recipe: ``load_hyperpyyaml(open(file))`` gives the
whole configuration. So that the files cannot drift apart, they are all
written from ``hparams/template/common.yaml``:

* ``hparams/<source>_<target>.yaml`` for the paper's nine tasks
  (:data:`zsser_modules.labels.PAPER_TASKS`): the template with
  ``source_lang`` and ``target_lang`` set;
* ``hparams/<name>.yaml`` for every ``hparams/template/<name>.keys.yaml``
  (``demo.keys.yaml``; for a pair, e.g. ``en_de.keys.yaml``, on top of its
  ``source_lang`` and ``target_lang``): the template with that file's keys
  set. Its comment
  block at the top becomes the generated file's header; each key replaces the
  template's line (or block) of that key, and the comment lines just above it
  are added to the template's comment. A key that the template does not
  define is refused.

Lines of the template or of a keys file that start with ``##`` are notes
about the template itself and are not copied. To change a hyperparameter
for every file, edit the template; then regenerate::

    python recipes/generate_hparams.py          # write hparams/*.yaml
    python recipes/generate_hparams.py --check  # exit 1 if one is stale

Any other ordered pair of languages (e.g. Urdu as a target, or English from
ESD with ``--language_corpus="{en: esd}"``) is written on demand, outside ``hparams/``::

    python recipes/generate_hparams.py --pair ur_en --out-dir my_hparams

``tests/test_hparams.py`` fails while a generated file is out of date.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from zsser_modules.labels import LANGUAGES, PAPER_TASKS

HPARAMS_DIR = Path(__file__).resolve().parents[1] / "hparams"
#: Folder of the template and of the ``*.keys.yaml`` files.
TEMPLATE_DIR_NAME = "template"
#: The template every generated file starts from.
TEMPLATE_NAME = "common.yaml"
#: Suffix of a file of keys that gives one generated file.
KEYS_SUFFIX = ".keys.yaml"
#: Language and corpus of each language, for the headers of the pair files.
LANGUAGE_NAMES = {
    "en": "English (MELD)",
    "zh": "Mandarin (ESD)",
    "de": "German (EmoDB)",
    "fr": "French (CaFE)",
    "ur": "Urdu (URDU)",
}
_KEY_LINE = re.compile(r"^([A-Za-z_]\w*)\s*:")
_INLINE_COMMENT = re.compile(r"\s+#\s.*$")


@dataclass
class KeyBlock:
    """One top-level key of a YAML text: its comment lines and its lines."""

    key: str
    comments: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _drop_template_notes(text: str) -> list[str]:
    """The lines of ``text`` without the template's own ``##`` notes."""
    return [line for line in text.splitlines() if not line.startswith("##")]


def _block_end(lines: list[str], start: int) -> int:
    """Index after the key line ``start`` and its indented continuation lines."""
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
        end += 1
    return end


def parse_keys(text: str, name: str = "keys file") -> tuple[list[str], list[KeyBlock]]:
    r"""Split a keys file into its header and its key blocks.

    Arguments
    ---------
    text : str
        The keys file (``##`` lines are dropped).
    name : str
        Its name, for error messages.

    Returns
    -------
    header : list of str
        The lines before the first blank line, if the file starts with a
        comment (the generated file's header).
    blocks : list of KeyBlock
        Every top-level key, with the comment lines just above it.

    Example
    -------
    >>> header, blocks = parse_keys("# Demo\n\n# why\nseed: 2\nx:\n    a: 1\n")
    >>> header
    ['# Demo']
    >>> [(b.key, b.comments, b.lines) for b in blocks]
    [('seed', ['# why'], ['seed: 2']), ('x', [], ['x:', '    a: 1'])]
    """
    lines = _drop_template_notes(text)
    header: list[str] = []
    start = 0
    if lines and lines[0].startswith("#"):
        while start < len(lines) and lines[start].strip():
            header.append(lines[start])
            start += 1
    blocks: list[KeyBlock] = []
    comments: list[str] = []
    i = start
    while i < len(lines):
        line = lines[i]
        match = _KEY_LINE.match(line)
        if match:
            end = _block_end(lines, i)
            blocks.append(KeyBlock(match.group(1), comments, lines[i:end]))
            comments, i = [], end
            continue
        if line.startswith("#"):
            comments.append(line)
        elif not line.strip():
            comments = []
        else:
            raise ValueError(
                f"{name}, line {i + 1}: expected a top-level 'key: value' line or a "
                f"comment, found {line!r}. Indent a nested value under its key."
            )
        i += 1
    keys = [block.key for block in blocks]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{name} sets {repeated} more than once: keep one of each.")
    return header, blocks


def _inline_comment(line: str) -> str:
    """The trailing ``  # ...`` of a one-line ``key: value``, or ''."""
    if "'" in line or '"' in line:
        return ""
    match = _INLINE_COMMENT.search(line)
    return match.group(0) if match else ""


def render(template: str, header: list[str], blocks: list[KeyBlock]) -> str:
    r"""The template with each block's key set, under ``header``.

    Arguments
    ---------
    template : str
        The template's text (``##`` lines are dropped).
    header : list of str
        First lines of the generated file.
    blocks : list of KeyBlock
        Keys to set. A one-line value without its own comment keeps the
        template line's trailing comment.

    Returns
    -------
    str
        The generated file.

    Raises
    ------
    ValueError
        If a key is not a top-level key of the template.

    Example
    -------
    >>> template = "## note\n# The seed\nseed: 1  # any int\nlr: 0.1\n"
    >>> print(render(template, ["# Mine"], [KeyBlock("seed", ["# two"], ["seed: 2"])]))
    # Mine
    # The seed
    # two
    seed: 2  # any int
    lr: 0.1
    <BLANKLINE>
    """
    lines = _drop_template_notes(template)
    where = {}
    for i, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if match:
            where[match.group(1)] = i
    unknown = [block.key for block in blocks if block.key not in where]
    if unknown:
        raise ValueError(
            f"{unknown} are not keys of the template {TEMPLATE_NAME}: fix the name, "
            "or add the key (with its default) to the template."
        )
    # Replace from the bottom up so that earlier line numbers stay valid.
    for block in sorted(blocks, key=lambda b: where[b.key], reverse=True):
        start = where[block.key]
        end = _block_end(lines, start)
        new = list(block.lines)
        if len(new) == 1 and end == start + 1 and not _inline_comment(new[0]):
            new[0] += _inline_comment(lines[start])
        lines[start:end] = block.comments + new
    return "\n".join(header + lines) + "\n"


def _notice(keys_file: str = "") -> list[str]:
    """The lines that say a file is generated, and from what."""
    sources = f"hparams/{TEMPLATE_DIR_NAME}/{TEMPLATE_NAME}"
    if keys_file:
        sources += f"\n# and hparams/{TEMPLATE_DIR_NAME}/{keys_file}"
    return (
        f"# Generated by recipes/generate_hparams.py from {sources}:\n"
        "# edit those, not this file, then run: python recipes/generate_hparams.py"
    ).splitlines()


def _is_pair(name: str) -> bool:
    """Whether ``name`` is ``<source>_<target>`` of two different languages."""
    source, _, target = name.partition("_")
    return source in LANGUAGES and target in LANGUAGES and source != target


def _pair_order(pair: str) -> tuple[int, ...]:
    """Paper tasks first, in their order; then other pairs by language order."""
    if pair in PAPER_TASKS:
        return (0, PAPER_TASKS.index(pair))
    source, _, target = pair.partition("_")
    return (1, LANGUAGES.index(source), LANGUAGES.index(target))


def pair_file(template: str, pair: str, keys_file: Path | None = None) -> str:
    """The text of the hyperparameter file of one language pair.

    Arguments
    ---------
    template : str
        The text of ``hparams/template/common.yaml``.
    pair : str
        ``<source>_<target>``, two different languages of ``LANGUAGES``.
    keys_file : Path, optional
        A ``<pair>.keys.yaml`` whose keys go on top of the pair's.

    Returns
    -------
    str
        The standalone HyperPyYAML text.

    Raises
    ------
    ValueError
        For a malformed pair or a keys file that sets the pair's languages.

    Example
    -------
    >>> text = (HPARAMS_DIR / TEMPLATE_DIR_NAME / TEMPLATE_NAME).read_text()
    >>> print(pair_file(text, "ur_en").splitlines()[0])
    # hparams/ur_en.yaml : Urdu (URDU) -> English (MELD)
    >>> pair_file(text, "en-de")
    Traceback (most recent call last):
    ...
    ValueError: Bad pair 'en-de': expected <source>_<target> of two different languages of ['en', 'zh', 'de', 'fr', 'ur'], e.g. ur_en.
    """  # noqa: E501
    if not _is_pair(pair):
        raise ValueError(
            f"Bad pair {pair!r}: expected <source>_<target> of two different "
            f"languages of {list(LANGUAGES)}, e.g. ur_en."
        )
    source, _, target = pair.partition("_")
    name = f"{pair}.yaml"
    header = [
        f"# hparams/{name} : {LANGUAGE_NAMES[source]} -> {LANGUAGE_NAMES[target]}"
    ]
    if pair not in PAPER_TASKS:
        header.append(
            "# Not one of the paper's nine tasks: the paper reports no number for it."
        )
    blocks = [
        KeyBlock("source_lang", [], [f"source_lang: {source}"]),
        KeyBlock("target_lang", [], [f"target_lang: {target}"]),
    ]
    if keys_file is None:
        return render(template, header + _notice(), blocks)
    # A pair's own keys (e.g. its languages pool), on top of the pair.
    own_header, own = parse_keys(keys_file.read_text(encoding="utf-8"), keys_file)
    clash = [b.key for b in own if b.key in ("source_lang", "target_lang")]
    if clash:
        raise ValueError(f"{keys_file} sets {clash}: its name sets them already.")
    return render(template, header + own_header + _notice(keys_file.name), blocks + own)


def generated_files(hparams_dir: Path = HPARAMS_DIR) -> dict[str, str]:
    """The text of every generated file of ``hparams_dir``, by file name.

    Example
    -------
    >>> files = generated_files()
    >>> len(files), "en_de.yaml" in files, "en_ur.yaml" in files, "demo.yaml" in files
    (10, True, False, True)
    >>> print(files["en_de.yaml"].splitlines()[0])
    # hparams/en_de.yaml : English (MELD) -> German (EmoDB)
    """
    template_dir = Path(hparams_dir) / TEMPLATE_DIR_NAME
    template_file = template_dir / TEMPLATE_NAME
    if not template_file.is_file():
        raise FileNotFoundError(
            f"The template {template_file} is missing: restore it (git checkout)."
        )
    template = template_file.read_text(encoding="utf-8")
    keys_files = {
        path.name[: -len(KEYS_SUFFIX)] + ".yaml": path
        for path in sorted(template_dir.glob(f"*{KEYS_SUFFIX}"))
    }
    files = {}
    pairs = set(PAPER_TASKS) | {
        name[: -len(".yaml")] for name in keys_files if _is_pair(name[: -len(".yaml")])
    }
    for pair in sorted(pairs, key=_pair_order):
        name = f"{pair}.yaml"
        files[name] = pair_file(template, pair, keys_files.pop(name, None))
    for name, keys_file in keys_files.items():
        header, blocks = parse_keys(keys_file.read_text(encoding="utf-8"), keys_file)
        files[name] = render(template, header + _notice(keys_file.name), blocks)
    return files


def stale_files(hparams_dir: Path = HPARAMS_DIR) -> list[str]:
    """Files of ``hparams_dir`` that differ from the template's output.

    Also lists a ``*.yaml`` of ``hparams_dir`` that the template does not
    generate (every file to train with is generated).
    """
    hparams_dir = Path(hparams_dir)
    expected = generated_files(hparams_dir)
    stale = [
        name
        for name, text in expected.items()
        if not (hparams_dir / name).is_file()
        or (hparams_dir / name).read_text(encoding="utf-8") != text
    ]
    extra = [p.name for p in hparams_dir.glob("*.yaml") if p.name not in expected]
    return sorted(stale) + sorted(f"{name} (not generated)" for name in extra)


def write_files(hparams_dir: Path = HPARAMS_DIR) -> list[str]:
    """Write the generated files that changed; return their names."""
    hparams_dir = Path(hparams_dir)
    written = []
    for name, text in generated_files(hparams_dir).items():
        path = hparams_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(argv=None) -> int:
    """Command line: write the files, or ``--check`` that they are up to date."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file of hparams/ is not up to date",
    )
    parser.add_argument("--hparams-dir", type=Path, default=HPARAMS_DIR)
    parser.add_argument(
        "--pair",
        nargs="+",
        metavar="S_T",
        help="write these pairs' files (e.g. ur_en, a pair outside the paper's "
        "nine tasks) into --out-dir instead of regenerating hparams/",
    )
    parser.add_argument(
        "--out-dir", type=Path, help="folder of the --pair files (created)"
    )
    args = parser.parse_args(argv)
    try:
        if args.pair:
            if args.out_dir is None:
                parser.error("--pair needs --out-dir (a folder outside hparams/)")
            template_dir = args.hparams_dir / TEMPLATE_DIR_NAME
            template = (template_dir / TEMPLATE_NAME).read_text(encoding="utf-8")
            args.out_dir.mkdir(parents=True, exist_ok=True)
            for pair in args.pair:
                keys = template_dir / f"{pair}{KEYS_SUFFIX}"
                text = pair_file(template, pair, keys if keys.is_file() else None)
                (args.out_dir / f"{pair}.yaml").write_text(text, encoding="utf-8")
                print(f"Wrote {args.out_dir / f'{pair}.yaml'}.")
            return 0
        if args.check:
            stale = stale_files(args.hparams_dir)
            if stale:
                print(
                    f"Out of date in {args.hparams_dir}: {', '.join(stale)}. Run "
                    "'python recipes/generate_hparams.py' (and delete a file that "
                    "is not generated, or give it a template/*.keys.yaml).",
                    file=sys.stderr,
                )
                return 1
            print(f"hparams/ is up to date ({args.hparams_dir}).")
            return 0
        written = write_files(args.hparams_dir)
    except (OSError, ValueError) as error:
        print(f"recipes/generate_hparams.py: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {len(written)} file(s): {', '.join(written) or 'none changed'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
