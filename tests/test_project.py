"""The project configuration: found upwards from the working directory, every mistake one
line naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfinterop.errors import UserError
from tfinterop.project import find_config, load_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_found_upwards_relative_to_its_file(tmp_path: Path) -> None:
    config = write(
        tmp_path / "pyproject.toml",
        '[tool.tfinterop]\nfixtures = ["models", "more"]\nbuild-dir = "out"\n'
        'default-consumers = ["python", "c"]\nruntimes = ["2.15.1"]\n'
        "tolerance = { atol = 1e-6 }\n",
    )
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    loaded = load_config(deep)
    assert loaded.path == config
    assert loaded.fixtures == [tmp_path / "models", tmp_path / "more"]
    assert loaded.build_dir == tmp_path / "out"
    assert loaded.default_consumers == ["python", "c"] and loaded.runtimes == ["2.15.1"]
    assert (loaded.atol, loaded.rtol) == (1e-6, 0.0)


def test_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.tfinterop]\nfixtures = ["f"]\n')
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "x"\n')
    assert find_config(tmp_path / "sub") == tmp_path / "pyproject.toml"
    own = write(tmp_path / "sub" / "tfinterop.toml", 'fixtures = ["g"]\n')
    assert find_config(tmp_path / "sub") == own
    assert load_config(tmp_path / "sub").fixtures == [tmp_path / "sub" / "g"]


def test_no_configuration_is_an_empty_one(tmp_path: Path) -> None:
    loaded = load_config(tmp_path)
    assert loaded.path is None and loaded.fixtures == [] and loaded.consumers == []


def test_a_project_consumer(tmp_path: Path) -> None:
    write(
        tmp_path / "tfinterop.toml",
        '[consumer.mine]\ncommand = "bin/infer --fast"\nbuild = ["make", "-C", "native"]\n'
        'capabilities = ["frozen", "png_input"]\ndirectory = "service"\n',
    )
    (spec,) = load_config(tmp_path).consumers
    assert spec.name == "mine" and spec.command == ("bin/infer", "--fast")
    assert spec.build == ("make", "-C", "native")
    assert spec.capabilities == {"frozen", "png_input"}
    assert spec.directory == (tmp_path / "service").resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fixture = ['m']\n", "tfinterop.toml fixture: unknown key (known: fixtures,"),
        ("fixtures = 'm'\n", "tfinterop.toml fixtures: expected a list of strings, got 'm'"),
        ("tolerance = { atol = -1 }\n", "tolerance.atol: expected a number >= 0, got -1"),
        ("tolerance = { atl = 1 }\n", "tolerance: expected a table with atol and/or rtol"),
        ("build-dir = 3\n", "build-dir: expected a path string"),
        ("[consumer.x]\nbuild = 'make'\n", "consumer.x: no command"),
        ("[consumer.x]\ncommand = ''\n", "consumer.x.command: the command is empty"),
        ("[consumer.x]\ncommand = 'a'\nshell = 1\n", "consumer.x.shell: unknown key"),
        (
            "[consumer.x]\ncommand = 'a'\ncapabilities = ['savedmodel']\n",
            "consumer.x.capabilities: unknown 'savedmodel' (known:",
        ),
        ("fixtures = [\n", "tfinterop.toml: not valid TOML:"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "tfinterop.toml", text)
    with pytest.raises(UserError) as caught:
        load_config(tmp_path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(tmp_path / "tfinterop.toml") in str(caught.value)
