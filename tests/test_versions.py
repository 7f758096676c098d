"""Releases: pyproject's version, CHANGELOG.md's newest release and the commit it names
agree, and the running program says its version."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import __version__
from app.cli import cli

ROOT = Path(__file__).parent.parent
# "## 0.9.0 (cut from c412ce2, 2026-11-28)"
RELEASE = re.compile(r"^## (\d+\.\d+\.\d+) \(cut from ([0-9a-f]{7,40})\b", re.MULTILINE)
SEMVER = re.compile(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?")


def _pyproject_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def test_the_newest_release_in_the_changelog_is_pyprojects_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = RELEASE.findall(changelog)
    assert releases, "CHANGELOG.md names no release"
    newest, _commit = releases[0]
    assert SEMVER.fullmatch(_pyproject_version())
    assert newest == _pyproject_version()
    # Unreleased changes are collected above the newest release.
    assert changelog.index("## Unreleased") < changelog.index(f"## {newest} ")
    assert __version__ == _pyproject_version(), "reinstall: `make install`"


def test_every_release_names_a_commit_of_this_repository() -> None:
    releases = RELEASE.findall((ROOT / "CHANGELOG.md").read_text())
    git = shutil.which("git")
    inside = (
        git is not None
        and subprocess.run(
            [git, "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not inside:
        pytest.skip("not a git checkout (an unpacked archive): no commits to look up")
    assert git is not None
    for version, commit in releases:
        found = subprocess.run(
            [git, "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"],
            capture_output=True,
            check=False,
        )
        assert found.returncode == 0, f"{version} names {commit}, which is no commit here"


def test_the_command_says_its_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wijkbudget {_pyproject_version()}"
