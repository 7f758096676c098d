"""Where uploaded files live: a small interface, so the store can change without the
services that use it.

`DirectoryStore` (the default, MEDIA_DIR) keeps each file under a key made by the caller
(`proposals/<id>/<random>.jpg`): keys are checked to stay inside the directory, a file is
written to a temporary name and renamed, so a reader never sees half a file.

`S3Store` (MEDIA_STORE=s3) keeps them in a bucket of any S3-compatible service (AWS, MinIO,
Ceph, a cloud provider's object storage): what several application machines need, since a
file written to one machine's directory is missing on the others. An object is written
whole by one PUT, so a reader never sees half of it either.
"""

import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from app.core.config import Settings

_KEY = re.compile(r"[a-z0-9]+(/[a-z0-9]+)*\.[a-z0-9]+")


class MediaStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes | None:
        """The bytes, or None when nothing is stored under `key`."""
        ...

    def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""
        ...


class DirectoryStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a media key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """Files as objects `<prefix><key>` in one bucket. The client is made once (it is
    thread-safe); credentials come from the settings, or from boto3's usual sources (the
    environment, an instance role) when those are unset."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout: float = 10,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _name(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a media key: {key!r}")
        return self.prefix + key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def get(self, key: str) -> bytes | None:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = found["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))


def make_store(settings: "Settings") -> MediaStore:
    """The store the settings name: MEDIA_STORE `directory` (MEDIA_DIR) or `s3`."""
    if settings.media_store == "s3":
        assert settings.s3_bucket is not None  # required by the settings' own check
        secret = settings.s3_secret_access_key
        return S3Store(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret else None,
        )
    return DirectoryStore(settings.media_dir)
