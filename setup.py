"""Installation script for the zero-shot cross-lingual SER recipe plugin."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

CORE = [
    "speechbrain>=1.1.0",
    "torch>=2.1.0",
    "torchaudio>=2.1.0",  # speechbrain imports it at import time (we do not)
    "numpy>=1.24.0",
    "scipy>=1.10.0",  # speechbrain imports it at import time
    "pandas>=2.0.0",  # manifests, predictions, results tables
    "hyperpyyaml>=1.2.2",
    "ruamel.yaml>=0.17.28",
    "PyYAML>=5.1",
    "soundfile>=0.12.1",
    "tqdm>=4.60.0",
    "filelock>=3.12.0",
    "huggingface_hub>=0.8.0",  # exported models and encoders from the hub
]

# Optional features: each module imports these at first use and, if one is
# missing, stops with one line naming the extra (zsser_modules/optional.py,
# whose EXTRAS lists the import names of each extra; a test checks they agree).
SKLEARN = ["scikit-learn>=1.3.0", "threadpoolctl>=3.1.0"]
EXTRAS = {
    # pretrained encoders: --encoder=ssl (wav2vec 2.0, WavLM, HuBERT), whisper
    "encoders": ["transformers>=4.36.0"],
    # the t-SNE figure (matplotlib, scikit-learn's t-SNE), variants.png
    "plots": ["matplotlib>=3.7.0", *SKLEARN],
    # the representation probes (diagnostics: True) and zsser_modules.probe
    "probe": SKLEARN,
    # the synthetic demo corpus, and a demo run with its default settings
    # (diagnostics and the t-SNE figure)
    "demo": ["espeakng-loader>=0.2.0", "matplotlib>=3.7.0", *SKLEARN],
    # recipes/run_grid.py --engine submitit-local/slurm/debug
    "grid": ["submitit>=1.5.0"],
    # recipes/tune.py: zero-shot-safe tuning of the loss weights
    "tune": ["optuna>=4.0.0"],
}
EXTRAS["slurm"] = EXTRAS["grid"]  # the name of earlier versions
EXTRAS["all"] = sorted({r for reqs in EXTRAS.values() for r in reqs})
EXTRAS["dev"] = [
    *EXTRAS["all"],
    "pytest>=7.4.0",
    "ruff>=0.5.0",
    "pytorch-metric-learning>=2.3.0",  # SupConLoss checked against it
    "pillow>=9.0.0",
]

setup(
    name="zsser",
    version="0.1.0",
    description=(
        "SpeechBrain recipe plugin for zero-shot cross-lingual speech emotion "
        "recognition with supervised contrastive and speaker-adversarial learning."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8")
    if (HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    # One top-level package: the data preparation is zsser_modules.data_prep;
    # data_prep/*.py in the repository are its command lines, not installed.
    packages=find_packages(include=["zsser_modules", "zsser_modules.*"]),
    package_data={"zsser_modules.data_prep": ["file_lists/*.csv", "paper_splits.json"]},
    # The core (docs/install.md): what zsser_modules imports outside of an
    # optional feature. Beyond torch, torchaudio and speechbrain's own
    # dependencies it adds pandas only; the others are listed because the
    # modules import them directly. tests/test_install.py pins this list.
    install_requires=CORE,
    entry_points={
        "console_scripts": ["zsser-classify = zsser_modules.inference:main"],
    },
    extras_require=EXTRAS,
)
