"""Every command's ``--help`` renders (argparse formats help texts only when asked: a stray
``%`` in one crashes it with a traceback)."""

from __future__ import annotations

import pytest

from tfinterop.cli import COMMANDS, make_parser


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        make_parser().parse_args([command, "--help"])
    assert exited.value.code == 0
    assert f"usage: tfinterop {command}" in capsys.readouterr().out


def test_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        make_parser().parse_args(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert all(command in shown for command in COMMANDS)
