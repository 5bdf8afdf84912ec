"""Packaging: every sub-package is listed, the public API is sorted and importable."""

from __future__ import annotations

import tomllib
from pathlib import Path

import semid

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"semid": "semid", "gen": "semid.gen", "evaluation": "semid.evaluation", "cli": "semid.cli"}


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for folder, name in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *relative)))
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"] == {"semid": "semid", "semid.gen": "gen", "semid.evaluation": "evaluation", "semid.cli": "cli"}


def test_public_api_sorted_and_complete():
    assert semid.__all__ == sorted(semid.__all__)
    for name in semid.__all__:
        assert hasattr(semid, name), name


def test_import_semid_stays_light():
    import subprocess
    import sys

    code = "import sys, semid; semid.available_schemes(); print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import semid pulled in heavy modules: {out}"
