"""Proposal images in an S3-compatible store (MEDIA_STORE=s3), over HTTP against a local
S3 server (moto_server, started here): what two application machines, or a container
re-created on deployment, need to see the same files."""

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.core.config import ConfigError, Settings
from app.main import create_app
from app.models.process import Phase
from app.services.media import S3Store
from tests.api.conftest import Actors
from tests.api.test_proposal_images import picture, upload
from tests.conftest import make_settings
from tests.factories import make_process, make_proposal
from tests.helpers import free_port, wait_until

BUCKET = "wijkbudget-media"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _moto_server() -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    return [str(script)] if script.exists() else [shutil.which("moto_server") or "moto_server"]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("s3") / "moto.log").open("wb")
    server = subprocess.Popen(
        [*_moto_server(), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=60, what="moto_server listens")
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _s3_settings(database_url: str, endpoint: str, media_dir: Path) -> Settings:
    return make_settings(
        database_url,
        media_store="s3",
        media_dir=str(media_dir),
        s3_bucket=BUCKET,
        s3_prefix="test/",
        s3_endpoint_url=endpoint,
        s3_region="us-east-1",
        s3_access_key_id=CREDENTIALS["aws_access_key_id"],
        s3_secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )


def _objects(endpoint: str) -> list[str]:
    client: Any = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="test/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_an_image_stored_by_one_machine_is_served_by_another(
    s3_endpoint: str, settings: Settings, session: Session, actors: Actors, tmp_path: Path
) -> None:
    machines = [
        create_app(_s3_settings(settings.database_url, s3_endpoint, tmp_path / name))
        for name in ("a", "b")
    ]
    process = make_process(session, phase=Phase.submission)
    proposal = make_proposal(session, process, actors.author.user)
    data = picture("PNG", (40, 30))
    try:
        with TestClient(machines[0]) as one, TestClient(machines[1]) as other:
            stored = upload(one, proposal.id, actors.author, data, content_type="image/png")
            assert stored.status_code == 201, stored.text
            url = stored.json()["url"]
            [key] = _objects(s3_endpoint)
            assert key.startswith(f"test/proposals/{proposal.id}/")
            # Nothing on either machine's disk: a re-created container loses nothing.
            assert not any(p.is_file() for p in tmp_path.rglob("*"))
            served = other.get(url)
            assert served.status_code == 200
            assert served.content == one.get(url).content
            assert served.headers["content-type"] == "image/png"
            deleted = other.delete(url, headers=actors.author.headers)
            assert deleted.status_code == 204, deleted.text
            assert _objects(s3_endpoint) == []
            assert one.get(url).status_code == 404
    finally:
        for machine in machines:
            machine.state.engine.dispose()


def test_a_missing_object_is_none_and_deleting_it_is_no_error(s3_endpoint: str) -> None:
    store = S3Store(
        bucket=BUCKET,
        prefix="test/",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id=CREDENTIALS["aws_access_key_id"],
        secret_access_key=CREDENTIALS["aws_secret_access_key"],
    )
    assert store.get("proposals/1/missing.jpg") is None
    store.delete("proposals/1/missing.jpg")
    store.put("proposals/1/here.jpg", b"bytes")
    assert store.get("proposals/1/here.jpg") == b"bytes"
    store.delete("proposals/1/here.jpg")
    with pytest.raises(ValueError, match="not a media key"):
        store.put("../escape.jpg", b"x")


def test_s3_needs_a_bucket(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        create_app(make_settings(settings.database_url, media_store="s3"))
