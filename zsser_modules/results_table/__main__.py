"""``python -m zsser_modules.results_table RESULTS_FOLDER [options]``."""

from zsser_modules.results_table.write import main

if __name__ == "__main__":
    main()
