"""Every process serves the current model (bot/serving/model_pull.py, bot/console/model_server.py,
bot/training/model_switch.py).

Fast tests here; on real servers in tests/test_scale_faults.py."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from bot.serving.model_pull import etag, model_fingerprint


def fake_model(path: Path, model_id: str, extra: bytes = b"") -> Path:
    """A tar.gz with a Rasa-style metadata.json (enough for the fingerprint and the model server)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("components/x.bin", extra or b"weights"),
                           ("metadata.json", json.dumps({"model_id": model_id}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_fingerprint_is_the_model_id_and_follows_the_file(tmp_path):
    path = fake_model(tmp_path / "m.tar.gz", "aaa111")
    assert model_fingerprint(path) == "aaa111" and etag("aaa111") == '"aaa111"'
    replacement = fake_model(tmp_path / "new.tar.gz", "bbb222", b"other weights")
    replacement.replace(path)  # what a switch does
    assert model_fingerprint(path) == "bbb222"


def test_a_file_that_is_no_model_is_refused(tmp_path):
    from bot.training.model_switch import SwitchError, model_id_of

    empty = tmp_path / "x.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ValueError):
        model_fingerprint(empty)
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(SwitchError):
        model_id_of(tmp_path / "junk.tar.gz")


@pytest.mark.model
def test_a_process_whose_model_server_is_down_serves_its_local_model():
    """Rasa ignores `-m` when a model server is configured: started while the console is down it
    would serve nothing. It serves the local file, fingerprinted as the model server would."""
    import asyncio

    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    from bot.devtools.cluster import free_port
    from bot.serving import model_pull
    from tests.conftest import MODEL, require_model

    require_model()
    model_pull.install()
    import rasa.core.agent as agent_module

    endpoints = AvailableEndpoints(model=EndpointConfig(f"http://127.0.0.1:{free_port()}/model",
                                                        wait_time_between_pulls=0))
    agent = asyncio.run(agent_module.load_agent(model_path=str(MODEL), endpoints=endpoints))
    assert agent.processor is not None
    assert agent.fingerprint == etag(model_fingerprint(MODEL)) == etag(agent.model_id)
    assert endpoints.model.headers[model_pull.PROCESS_HEADER] == model_pull.process_name()
