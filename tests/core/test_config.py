"""Settings come from VOUCH_* variables, nested with a double underscore."""

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from core.config import Settings


def test_defaults_keep_everything_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VOUCH_DATA_DIR", "VOUCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.data_dir == Path("var")
    assert settings.sqlalchemy_url == "sqlite:///var/vouch.db"
    assert settings.chroma_path == Path("var/chroma")
    assert settings.uploads_path == Path("var/uploads")
    assert settings.chroma.host is None
    assert settings.embeddings.provider == "minilm"


def test_environment_variables_and_nested_sections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOUCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOUCH_CHROMA__HOST", "chroma.internal")
    monkeypatch.setenv("VOUCH_CHROMA__PORT", "9000")
    monkeypatch.setenv("VOUCH_EMBEDDINGS__PROVIDER", "openai")
    monkeypatch.setenv("VOUCH_EMBEDDINGS__API_KEY", "sk-secret")
    monkeypatch.setenv("VOUCH_DATABASE_URL", "postgresql+psycopg://db/vouch")
    settings = Settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg://db/vouch"
    assert (settings.chroma.host, settings.chroma.port) == ("chroma.internal", 9000)
    assert isinstance(settings.embeddings.api_key, SecretStr)
    assert settings.embeddings.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(settings)


def test_invalid_values_are_refused_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOUCH_SERVER__PORT", "99999")
    with pytest.raises(ValidationError, match=r"server\.port"):
        Settings()
