"""Load an exported model the way a user without this project does.

:func:`classify_without_project` runs ``speechbrain.inference.interfaces.
foreign_class(source=folder, pymodule_file="custom_interface.py",
classname="EmotionRecognizer")`` in a fresh interpreter (``python -I``: no
PYTHONPATH, no user site), from a working directory outside the repository,
with an import hook that makes ``zsser_modules``, ``data_prep`` and
``recipes`` unimportable (the editable install of the project stays in
site-packages, so hiding it from ``sys.path`` is not enough). The script
fails if any of them gets imported or if any loaded module comes from this
repository (other than from the Python environment, which may live inside
the checkout, as CI's does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
HIDDEN = ("zsser_modules", "data_prep", "recipes")

SCRIPT = r"""
import importlib.abc, json, sys
HIDDEN = {hidden!r}

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden)")

sys.meta_path.insert(0, Hide())
for name in HIDDEN:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{{name}} is importable: the test does not isolate")

from speechbrain.inference.interfaces import foreign_class

folder, savedir, wavs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
recognizer = foreign_class(
    source=folder,
    pymodule_file="custom_interface.py",
    classname="EmotionRecognizer",
    savedir=savedir,
)
out = {{"class": type(recognizer).__module__ + "." + type(recognizer).__name__,
       "emotions": recognizer.emotions, "files": {{}}}}
for wav in wavs:
    out_prob, score, index, text_lab = recognizer.classify_file(wav)
    out["files"][wav] = {{"out_prob": out_prob[0].tolist(), "score": float(score[0]),
                         "index": int(index[0]), "text_lab": text_lab[0]}}
loaded = [name for name in sys.modules if name.split(".")[0] in HIDDEN]
def file_of(module):  # without triggering SpeechBrain's lazy modules
    try:
        return object.__getattribute__(module, "__file__") or ""
    except AttributeError:
        return ""

files = [file_of(m) for m in list(sys.modules.values())]
# the environment's own files (a virtual env may live inside the checkout,
# as in CI) are SpeechBrain's, torch's, ...: only the project's count
env_dirs = tuple({{sys.prefix, sys.base_prefix}})
inside = [f for f in files
          if f.startswith({repo!r}) and not f.startswith(env_dirs)]
if loaded or inside:
    raise SystemExit(f"project modules were loaded: {{loaded}} {{inside[:3]}}")
print("RESULT " + json.dumps(out))
"""


def classify_without_project(
    folder: Path, wavs: list[Path], workdir: Path, env: dict | None = None
) -> dict:
    """Classify ``wavs`` with ``foreign_class`` in an interpreter without the project.

    Returns the parsed result: ``class``, ``emotions`` and, per file,
    ``out_prob`` (log-probabilities), ``score``, ``index``, ``text_lab``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "load_without_project.py"
    script.write_text(SCRIPT.format(hidden=HIDDEN, repo=str(REPO_ROOT)))
    environment = {
        key: value for key, value in os.environ.items() if key != "PYTHONPATH"
    }
    environment.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    environment.update(env or {})
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            str(folder),
            str(workdir / "savedir"),
            json.dumps([str(w) for w in wavs]),
        ],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def assert_same_predictions(isolated: dict, recognizer, wavs: list[Path]) -> None:
    """The isolated load predicts exactly what the project's recognizer does."""
    assert isolated["class"] == "custom_interface.EmotionRecognizer"
    assert isolated["emotions"] == recognizer.emotions
    for wav in wavs:
        out_prob, score, index, text_lab = recognizer.classify_file(wav)
        got = isolated["files"][str(wav)]
        assert torch.allclose(torch.tensor(got["out_prob"]), out_prob[0], atol=1e-6)
        assert got["index"] == int(index[0]) and got["text_lab"] == text_lab[0]
        assert abs(got["score"] - float(score[0])) < 1e-6
