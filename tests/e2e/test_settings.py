"""SPEC §7: every setting is a flag, an SSEHUB_* variable and a TOML key;
precedence flag > environment > file > default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from ssehub.config import ConfigError, Settings, load_settings
from tests.support.fixtures import Serve
from tests.support.serve import ServeProcess, free_port
from tests.support.sse import SSEStream, subscribe_target

FILE = """
port = 9001
heartbeat = 3.5
retry = 1111
history_size = 7
slow-consumer = "disconnect"
cors_origins = ["https://file.example"]
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "ssehub.toml"
    path.write_text(FILE)
    return path


def test_defaults_without_anything() -> None:
    assert load_settings({}, environ={}) == Settings()
    assert load_settings(None, environ={"UNRELATED": "1", "SSEHUB_": "x"}) == Settings()


def test_file_over_default(config_file: Path) -> None:
    s = load_settings({}, config_file=config_file, environ={})
    assert (s.port, s.heartbeat, s.retry, s.history_size) == (9001, 3.5, 1111, 7)
    assert s.slow_consumer == "disconnect"  # dashed keys are accepted
    assert s.cors_origins == ("https://file.example",)
    assert s.history_bytes == Settings().history_bytes  # untouched keys keep their default
    # SSEHUB_CONFIG names the file too; an explicit config_file wins over it
    assert load_settings({}, environ={"SSEHUB_CONFIG": str(config_file)}).retry == 1111
    other = config_file.with_name("other.toml")
    other.write_text("retry = 4444\n")
    assert load_settings({}, config_file=other, environ={"SSEHUB_CONFIG": str(config_file)}).retry == 4444


def test_env_over_file(config_file: Path) -> None:
    env = {"SSEHUB_HEARTBEAT": "2.5", "SSEHUB_CORS_ORIGINS": "https://x.example, https://y.example",
           "SSEHUB_SLOW_CONSUMER": "gap", "SSEHUB_CORS_CREDENTIALS": "yes"}
    s = load_settings({}, config_file=config_file, environ=env)
    assert s.heartbeat == 2.5
    assert s.cors_origins == ("https://x.example", "https://y.example")
    assert s.slow_consumer == "gap" and s.cors_credentials is True
    assert (s.port, s.retry) == (9001, 1111)  # from the file


def test_flag_over_env_and_file(config_file: Path) -> None:
    env = {"SSEHUB_HEARTBEAT": "2.5", "SSEHUB_RETRY": "2222", "SSEHUB_CORS_CREDENTIALS": "true",
           "SSEHUB_CORS_ORIGINS": "https://x.example"}
    flags = {"heartbeat": "0.5", "retry": None, "cors_credentials": False, "history_size": "9"}
    s = load_settings(flags, config_file=config_file, environ=env)
    assert s.heartbeat == 0.5  # flag > env > file
    assert s.retry == 2222  # a flag not given (None) does not hide the environment
    assert s.cors_credentials is False  # --no-cors-credentials beats the environment
    assert s.history_size == 9  # flag > file
    assert s.port == 9001  # file > default


@pytest.mark.parametrize(("flags", "env", "text"), [
    ({}, {"SSEHUB_PORT": "eighty"}, "port"),
    ({}, {"SSEHUB_CORS_CREDENTIALS": "maybe"}, "cors_credentials"),
    ({"heartbeat": "0"}, {}, "heartbeat"),
    ({"slow_consumer": "drop"}, {}, "slow_consumer"),
    ({"history_size": "0"}, {}, "history_size"),
    ({"cors_origins": "*", "cors_credentials": True}, {}, "cors_credentials"),
    ({"colour": "red"}, {}, "colour"),
])
def test_invalid_values_are_config_errors(flags: dict[str, Any], env: dict[str, str], text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(flags, environ=env)
    assert text in info.value.message


def test_file_errors(tmp_path: Path) -> None:
    bad_key = tmp_path / "typo.toml"
    bad_key.write_text("heartbeet = 1\n")
    with pytest.raises(ConfigError, match="heartbeet"):
        load_settings({}, config_file=bad_key, environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, config_file=broken, environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, config_file=tmp_path / "missing.toml", environ={})


async def test_serve_subprocess_precedence(
    serve: Serve, tmp_path: Path, sse_streams: list[SSEStream]
) -> None:
    file_port, env_port = free_port(), free_port()
    config = tmp_path / "serve.toml"
    config.write_text(f"port = {file_port}\nheartbeat = 0.25\nretry = 1111\nhistory_size = 7\n")
    hub: ServeProcess = await serve(
        "--retry", "3333", port=None,
        env={"SSEHUB_CONFIG": str(config), "SSEHUB_PORT": str(env_port), "SSEHUB_RETRY": "2222"})
    assert hub.port == env_port  # env > file
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{file_port}/healthz")
        for i in range(9):
            await http.post(hub.url + "/publish", json={"topic": "p", "data": str(i)})
    stream = await SSEStream.open(hub.port, subscribe_target("p", last_event_id="earliest"))
    sse_streams.append(stream)
    events = await stream.read_events(7)
    assert [e.data for e in events] == [str(i) for i in range(2, 9)]  # history_size 7 from the file
    assert bytes(stream.raw).startswith(b"retry: 3333\n")  # flag > env > file
    # heartbeat 0.25 s from the file (the default, 15 s, would not show within the deadline)
    await stream.read_until(lambda s: b"\n:\n" in s.raw, timeout=5, what="a heartbeat comment")
