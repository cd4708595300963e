"""Providers from Settings and TOML; request bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssehub.config import ConfigError, Settings, load_settings
from ssehub.errors import BadRequest, MalformedBody, NotFound
from ssehub.relay import ChatRequest, Providers, parse_chat_request

TOML = """
llm_provider = "deepseek"

[[providers]]
name = "siliconflow"
base_url = "https://api.siliconflow.cn/v1"
api_key_env = "SILICONFLOW_API_KEY"
models = ["deepseek-ai/DeepSeek-R1", "Qwen/QwQ-32B"]
params = { temperature = 0.6 }

[[providers]]
name = "deepseek"
base_url = "https://api.deepseek.com"
api_key_env = "DEEPSEEK_API_KEY"
models = ["deepseek-reasoner"]
headers = { "X-Custom" = "yes" }

[[providers]]
name = "ollama"
base_url = "http://localhost:11434/v1"
"""


def test_no_configuration_means_the_demo() -> None:
    p = Providers.from_settings(Settings(), {})
    assert p.demo_only and p.default.name == "demo"
    assert p.resolve(None, None)[1] == "ssehub-demo"
    with pytest.raises(NotFound):  # fault models only with simulator_faults
        p.resolve("demo", "ssehub-demo+drop")
    with pytest.raises(NotFound):
        p.resolve(None, "gpt-4o")
    faulty = Providers.from_settings(Settings(simulator_faults=True), {})
    assert faulty.resolve("demo", "ssehub-demo+drop")[1] == "ssehub-demo+drop"


def test_environment_provider(tmp_path: Path) -> None:
    env = {"SSEHUB_LLM_BASE_URL": "https://api.siliconflow.cn/v1", "SSEHUB_LLM_API_KEY": "sk-1",
           "SSEHUB_LLM_MODEL": "deepseek-ai/DeepSeek-R1"}
    p = Providers.from_settings(load_settings(environ=env), env)
    provider, model = p.resolve(None, None)
    assert (provider.name, model, provider.api_key) == ("default", "deepseek-ai/DeepSeek-R1", "sk-1")
    assert provider.url() == "https://api.siliconflow.cn/v1/chat/completions"
    assert "sk-1" not in repr(provider) and "sk-1" not in str(p.public())
    assert provider.request_headers()["authorization"] == "Bearer sk-1"
    no_model = Providers.from_settings(Settings(llm_base_url="http://x/v1"), {})
    with pytest.raises(BadRequest, match="no default model"):
        no_model.resolve(None, None)
    with pytest.raises(NotFound, match="no models configured"):  # no list: no model at all
        no_model.resolve(None, "gpt-4.5-preview-most-expensive")
    with pytest.raises(NotFound, match="unknown model"):  # only the configured ones
        p.resolve(None, "gpt-4.5-preview-most-expensive")


def test_toml_providers(tmp_path: Path) -> None:
    path = tmp_path / "ssehub.toml"
    path.write_text(TOML, encoding="utf-8")
    settings = load_settings(config_file=path, environ={})
    env = {"SILICONFLOW_API_KEY": "sk-sf", "DEEPSEEK_API_KEY": "sk-ds"}
    p = Providers.from_settings(settings, env)
    assert p.default.name == "deepseek"
    sf, model = p.resolve("siliconflow", None)
    assert (model, sf.api_key, dict(sf.params)) == ("deepseek-ai/DeepSeek-R1", "sk-sf", {"temperature": 0.6})
    assert p.resolve(None, None)[0].request_headers()["X-Custom"] == "yes"
    with pytest.raises(NotFound, match="no models configured"):
        p.resolve("ollama", "qwen3:8b")
    with pytest.raises(NotFound):
        p.resolve("siliconflow", "gpt-4o")
    with pytest.raises(NotFound):
        p.resolve("nope", None)
    public = str(p.public())
    assert "sk-sf" not in public and "sk-ds" not in public and "X-Custom" not in public
    assert sorted(p.secrets()) == ["sk-ds", "sk-sf"]


@pytest.mark.parametrize("table", [
    {"base_url": "http://x"},
    {"name": "a"},
    {"name": "a", "base_url": "ftp://x"},
    {"name": "a", "base_url": "http://x", "api_key": "sk-in-the-file"},
    {"name": "a", "base_url": "http://x", "models": [1]},
    {"name": "a", "base_url": "http://x", "params": {"stream": False}},
    {"name": "a", "base_url": "http://x", "headers": {"x": 1}},
])
def test_bad_provider_tables(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Providers.from_settings(Settings(providers=(table,)), {})


def test_duplicate_names() -> None:
    table = {"name": "default", "base_url": "http://x"}
    with pytest.raises(ConfigError, match="two providers"):
        Providers.from_settings(Settings(llm_base_url="http://y", providers=(table,)), {})


def test_chat_request_validation() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    req = parse_chat_request({"messages": messages, "model": "m", "provider": "p", "temperature": 0.5,
                              "max_tokens": 10, "extra": "ignored"})
    assert req.params == {"temperature": 0.5, "max_tokens": 10} and (req.model, req.provider) == ("m", "p")
    assert ChatRequest.from_prompt("hi").messages == ({"role": "user", "content": "hi"},)
    for bad in ({"messages": [{"role": "user", "content": "  "}]},
                {"messages": [{"role": "user", "content": "x"}], "model": 3},
                {"messages": [{"role": "user", "content": "x"}], "temperature": True},
                {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5},
                {"messages": [{"role": "user"}]}):
        with pytest.raises(MalformedBody):
            parse_chat_request(bad)
