"""The deploy extra: its bounds hold for what is installed, and a call that needs it while it is
missing says which extra to install (the tour runs without it: tests/microscope/test_tour.py)."""

import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from typer.testing import CliRunner

from inceptionkit import create_model, extras
from inceptionkit.cli.main import app
from inceptionkit.deploy import optimize

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def deploy_requirements() -> list[Requirement]:
    return [Requirement(line) for line in tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
            ["deploy"]]


def test_the_deploy_extra_is_bounded_and_what_is_installed_fits():
    requirements = deploy_requirements()
    assert {r.name for r in requirements} == set(extras.EXTRAS["deploy"])
    core = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert not {Requirement(line).name for line in core} & set(extras.EXTRAS["deploy"])
    for requirement in requirements:
        assert any(s.operator == "<" for s in requirement.specifier), f"{requirement} has no upper bound"
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed), f"{requirement.name} {installed} is outside {requirement}"


@pytest.fixture
def without_onnxruntime(monkeypatch):
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find(name, *a))


def test_optimize_without_the_extra_names_it(without_onnxruntime):
    with pytest.raises(ImportError, match=r'optimize needs inceptionkit\'s deploy extra.*missing: onnxruntime.*'
                                          r'pip install "inceptionkit\[deploy\]"'):
        optimize(create_model("googlenet_cifar", width=0.125), check=False)


def test_the_command_line_names_the_extra_before_any_work(tmp_path, without_onnxruntime):
    result = CliRunner().invoke(app, ["export", "googlenet_cifar:random", "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2, result.output
    assert 'error: --onnx needs inceptionkit\'s deploy extra' in result.output
    assert 'pip install "inceptionkit[deploy]"' in result.output and not (tmp_path / "m.onnx").exists()
    assert torch.get_num_threads() >= 1
