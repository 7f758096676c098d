"""Where uploaded files live: a small interface, so the store can change without the
services that use it.

`DirectoryStore` (the default, MEDIA_DIR) keeps each file under a key made by the caller
(`proposals/<id>/<random>.jpg`): keys are checked to stay inside the directory, a file is
written to a temporary name and renamed, so a reader never sees half a file. An S3 store
would implement the same three methods; none is included, as none could be tested against
a real S3 server here.
"""

import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

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
