"""``python data_prep/esd.py DATA_FOLDER SAVE_FOLDER``: the ESD manifest.

Runs :mod:`zsser_modules.data_prep.esd` (``--help`` lists the options)
from a checkout, installed or not. Where the package is installed,
``python -m zsser_modules.data_prep.esd`` is the same command.
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout
    runpy.run_module("zsser_modules.data_prep.esd", run_name="__main__", alter_sys=True)
