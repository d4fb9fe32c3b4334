"""API keys on the real ASGI app (no champion needed: a request that passes the key check gets the app's
own answer): hashes from IFD_API_KEY_HASHES-style config and from a file, 401 / 403 / pass, open paths,
and key files that cannot be used named by file and line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ifd.serving.auth import ApiKeys, ApiKeysError, api_keys_from, api_keys_from_env, hash_key
from ifd.workspace import Workspace


def app_with(tmp_path: Path, **cfg: Any) -> TestClient:
    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    ws = Workspace.at(tmp_path / "ws")
    return TestClient(create_app(ws, ServeConfig(alias_poll_s=3600.0, **cfg), ModelSource(ws, poll_s=3600.0)))


def test_hashes_from_config_guard_every_path_but_health_and_metrics(tmp_path: Path) -> None:
    client = app_with(tmp_path, api_key_hashes=(hash_key("alpha"), hash_key("beta")))
    assert client.post("/v1/score", content=b"x").status_code == 401
    assert client.post("/v1/score", content=b"x", headers={"authorization": "Bearer gamma"}).status_code == 403
    assert client.post("/v1/score", content=b"x", headers={"authorization": "Basic alpha"}).status_code == 401  # not a bearer key
    for headers in ({"authorization": "bearer alpha"}, {"x-api-key": "beta"}):
        passed = client.post("/v1/score", content=b"x", headers={**headers, "content-type": "text/plain"})
        assert passed.status_code == 415  # past the key check: the app's own answer
    assert client.get("/openapi.json").status_code == 401  # closed unless listed open
    assert client.get("/healthz").status_code == 503  # open (and honest: no champion yet)
    assert client.get("/metrics").status_code == 200


def test_no_keys_configured_means_open(tmp_path: Path) -> None:
    assert api_keys_from(None, None) is None and api_keys_from_env({}) is None
    assert app_with(tmp_path).post("/v1/score", content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_env_hashes_and_file_hashes_combine(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text(f"# team keys\n\n{hash_key('from-file')}  ops  # rotated monthly\n")
    keys = api_keys_from_env({"IFD_API_KEYS_FILE": str(f), "IFD_API_KEY_HASHES": f" {hash_key('from-env')} ,"})
    assert keys is not None and keys.check("from-file") and keys.check("from-env")
    assert not keys.check("from-fil") and not keys.check("")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("sha256:abc\n", "line 1: expected 'sha256:<64 hex digits> [name]'"),
        (f"# ok\n{hash_key('a')}\nmd5:{'0' * 32}\n", "line 3: expected"),
        ("# only comments\n", "no API key hashes in"),
    ],
)
def test_unusable_key_files_are_refused_with_file_and_line(tmp_path: Path, content: str, words: str) -> None:
    f = tmp_path / "keys"
    f.write_text(content)
    with pytest.raises(ApiKeysError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ApiKeys(f)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApiKeysError, match="cannot be read"):
        ApiKeys(tmp_path / "nope")


def test_hash_key_is_the_sha256_of_the_stripped_key() -> None:
    assert hash_key(" s3cret\n") == "sha256:" + hashlib.sha256(b"s3cret").hexdigest()
    with pytest.raises(ApiKeysError, match="must not be empty"):
        hash_key("  ")
