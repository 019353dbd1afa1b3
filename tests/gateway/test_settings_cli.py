"""Settings from the environment, the CLI, and that a token never shows in a repr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.settings import Settings
from tests.support import ROOT


def test_settings_read_env_and_flags_win():
    env = {"OMS_UPSTREAM_URL": "http://127.0.0.1:9", "OMS_PORT": "9001", "OMS_TOKEN": "t0k3n",
           "OMS_UPSTREAM_MAX_LIMIT": "50", "OMS_UPSTREAM_READ_TIMEOUT": "2.5"}  # fmt: skip
    settings = Settings.from_env(env, port=9002, host=None)
    assert settings.upstream_url == "http://127.0.0.1:9"
    assert settings.port == 9002
    assert settings.upstream_max_limit == 50
    assert settings.upstream_read_timeout == 2.5
    assert settings.token == "t0k3n"


def test_token_never_appears_in_repr():
    settings = Settings(token="very-secret-value")
    assert "very-secret-value" not in repr(settings)
    assert "very-secret-value" not in repr(settings.token)


@pytest.mark.parametrize(
    "env",
    [{"OMS_PORT": "eighty"}, {"OMS_UPSTREAM_MAX_LIMIT": "0"}, {"OMS_ENV": "staging"},
     {"OMS_DEFAULT_PAGE_SIZE": "600"}],
)  # fmt: skip
def test_bad_settings_are_refused_with_a_message(env):
    with pytest.raises(ValueError):
        Settings.from_env(env)


def test_serve_refuses_bad_settings_without_a_traceback(capsys):
    assert main(["serve"], environ={"OMS_PORT": "eighty"}) == 2
    assert "OMS_PORT" in capsys.readouterr().err


def test_export_schema_prints_the_sdl(capsys):
    assert main(["export-schema"], environ={}) == 0
    assert capsys.readouterr().out == (ROOT / "schema.graphql").read_text()


def test_console_script_is_installed():
    out = subprocess.run(
        [Path(sys.executable).parent / "oms-gateway", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("serve", "demo", "export-schema"):
        assert command in out.stdout
