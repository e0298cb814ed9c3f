"""The README's Quickstart is what CI runs: keep the two in step."""

import re

from conftest import REPO_ROOT


def _quickstart_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_quickstart_has_exactly_two_commands():
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), "each command must be one line"


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _quickstart_commands()[1]
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines
