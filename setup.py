"""Installation script for the zero-shot cross-lingual SER recipe plugin."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

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
    install_requires=[
        "speechbrain>=1.1.0",
        "torch>=2.1.0",
        "torchaudio>=2.1.0",
        "hyperpyyaml>=1.2.2",
        "ruamel.yaml>=0.17.28",
        "transformers>=4.36.0",
        "pandas>=2.0.0",
        "scikit-learn>=1.3.0",
        "soundfile>=0.12.1",
        "matplotlib>=3.7.0",
        "tqdm>=4.60.0",
        "threadpoolctl>=3.1.0",
        "numpy>=1.24.0",
        "scipy>=1.10.0",
        "filelock>=3.12.0",
        "espeakng-loader>=0.2.0",
    ],
    entry_points={
        "console_scripts": ["zsser-classify = zsser_modules.inference:main"],
    },
    extras_require={
        "dev": [
            "pytest>=7.4.0",
            "ruff>=0.5.0",
            "pytorch-metric-learning>=2.3.0",
            "pillow>=9.0.0",
            "submitit>=1.5.0",  # the grid's submitit engines are tested in CI
            "optuna>=4.0.0",  # recipes/tune.py (its tests)
        ],
        # recipes/run_grid.py --engine submitit-local/slurm/debug
        "grid": ["submitit>=1.5.0"],
        "slurm": ["submitit>=1.5.0"],
        # recipes/tune.py: zero-shot-safe tuning of the loss weights
        "tune": ["optuna>=4.0.0"],
    },
)
