"""The `solvers` extra installs the sandbox image's solver stack with the image's pins, and
`dev` includes it, so the local sandbox imports what the Docker one does."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from or_env.cli import SOLVER_MODULES

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
# Printing helpers that reference programs import; the image does not pin them.
HELPERS = {"rich", "tabulate"}


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def image_solver_pins() -> dict[str, str]:
    """The pins of the image's first section ("Solvers and modeling layers ..."), the
    packages policy code imports; the section after it pins their dependencies."""
    text = (ROOT / "sandbox_image" / "requirements.txt").read_text()
    section = text.split("# Their dependencies.")[0]
    pins = {}
    for line in section.splitlines():
        line = line.split("#")[0].strip()
        if line:
            pins[name_of(line)] = line.split("==")[1].strip()
    return pins


SOLVERS = {name_of(r): r for r in EXTRAS["solvers"]}


@pytest.mark.parametrize("package", sorted(image_solver_pins()))
def test_solvers_extra_pins_what_the_image_pins(package: str) -> None:
    assert SOLVERS.get(package) == f"{package}=={image_solver_pins()[package]}"


def test_solvers_extra_holds_only_the_image_stack_and_the_printing_helpers() -> None:
    assert set(SOLVERS) == set(image_solver_pins()) | HELPERS


def test_dev_installs_the_solvers() -> None:
    assert "or-env[solvers]" in EXTRAS["dev"]
    assert not {name_of(r) for r in EXTRAS["dev"]} & (set(SOLVERS) - {"or-env"})


def test_sandbox_check_probes_every_package_of_the_extra() -> None:
    # Import names equal the distribution names for every package of the stack.
    assert set(SOLVER_MODULES) == set(SOLVERS)
