"""Every setting the Makefile takes from the command line (``NAME ?= default``)
is explained in the README, with its default."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_names_every_makefile_setting_and_its_default():
    settings = re.findall(r"^(\w+) \?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert ("PORT", "8000") in settings and ("HOST", "127.0.0.1") in settings
    readme = (ROOT / "README.md").read_text()
    for name, default in settings:
        assert f"make run {name}=" in readme, name
        assert re.search(rf"{name}=\S+` \(default {re.escape(default)}", readme) or re.search(
            rf"\(default {re.escape(default)}[;)]", readme
        ), name
