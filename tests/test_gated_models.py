"""A gated hub model (Gemma-3-27B-it) without access is one line in base_generator, before any download."""

from __future__ import annotations

import pytest

from bootstrap_embeddings.base_models import materialize_generator
from bootstrap_embeddings.errors import UserError

MODEL = "google/gemma-3-27b-it"


def _gated_error():
    from huggingface_hub.errors import GatedRepoError

    # the real one needs an HTTP response; the code only looks at its type
    err = GatedRepoError.__new__(GatedRepoError)
    Exception.__init__(err, "403 Client Error: Cannot access gated repo")
    return err


class Info:
    sha = "0123abc"
    safetensors = None
    gated = "manual"


def _hub(monkeypatch, *, token: str | None, has_access: bool) -> list[str]:
    """A hub that says MODEL is gated; returns the list of access checks it was asked."""
    asked: list[str] = []

    class Api:
        def model_info(self, model_id):
            return Info()

        def auth_check(self, model_id):
            asked.append(model_id)
            if not has_access:
                raise _gated_error()

    monkeypatch.setattr("huggingface_hub.HfApi", Api)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: token)
    return asked


def test_no_token_is_one_line_naming_the_key_the_page_and_how_to_log_in(monkeypatch, tmp_path):
    asked = _hub(monkeypatch, token=None, has_access=False)
    with pytest.raises(UserError) as err:
        materialize_generator(MODEL, tmp_path / "generator")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"generator.model: {MODEL} is gated on the Hugging Face hub and "
                              "no token is configured")
    assert f"https://huggingface.co/{MODEL}" in message
    assert "hf auth login" in message and "HF_TOKEN" in message
    assert asked == []  # known without asking the hub
    assert not (tmp_path / "generator" / "source.json").exists()


def test_token_without_access_says_so(monkeypatch, tmp_path):
    asked = _hub(monkeypatch, token="hf_x", has_access=False)
    with pytest.raises(UserError, match=r"the configured token has no access to it"):
        materialize_generator(MODEL, tmp_path / "generator")
    assert asked == [MODEL]


def test_token_with_access_writes_the_pointer(monkeypatch, tmp_path):
    _hub(monkeypatch, token="hf_x", has_access=True)
    info = materialize_generator(MODEL, tmp_path / "generator")
    assert info["kind"] == "hub" and info["revision"] == "0123abc"


def test_offline_a_cached_gated_model_needs_no_token(monkeypatch, tmp_path):
    """Offline the hub cannot be asked; a copy in the local cache was downloaded with access."""
    from pathlib import Path

    class Api:
        def model_info(self, model_id):
            raise OSError("offline")

    snapshot = tmp_path / "snapshots" / "cafe" / "config.json"
    monkeypatch.setattr("huggingface_hub.HfApi", Api)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    monkeypatch.setattr("huggingface_hub.try_to_load_from_cache", lambda *a: str(snapshot))
    info = materialize_generator(MODEL, tmp_path / "generator")
    assert info["revision"] == Path(snapshot).parent.name
