"""Parquet output of ``hrface detect --engine ray --format parquet``: a folder of shards, resumable.

Each shard (``part-RUN-NNNNNN.parquet``; RUN the run's start time and process id) holds the records of one
batch, one row per image (:func:`.record_schema` with the model columns).  A local shard is written to a hidden
``.part-….tmp`` file, synced and renamed, so a shard is in the folder whole or not at all; on object storage
(an ``s3://…``, ``gs://…`` URI) an object only appears once its upload completes.  ``--resume`` reads the
``image`` column of the shards there and skips those images, so a killed run loses at most the batches in
flight and no image is written twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError, one_line
from ..io.files import check_writable_folder
from ..io.records import image_key
from .schema import records_table
from .worker import is_uri

SHARD_PREFIX, SHARD_SUFFIX = "part-", ".parquet"


def record_key(image: str) -> str:
    """What identifies an image across runs: a URI as it is, a local path with links resolved."""
    return image if is_uri(image) else image_key(image)


class ShardWriter:
    """Records to Parquet shards in ``out`` (a local folder, created if needed, or an object-storage URI).

    Use as a context manager.  ``done`` maps the :func:`record_key` of each image recorded by an earlier run
    (read with ``resume``) to whether its record is an error; ``written`` counts the rows of this run.
    """

    def __init__(self, out: str, resume: bool, models: dict[str, Any]) -> None:
        self.out = out
        self.resume = resume
        self.models = models
        self.done: dict[str, bool] = {}
        self.written = 0
        self.shards = 0
        self.run = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        self._fs: Any = None
        self._root = out

    def has(self, image: str) -> bool:
        """Whether ``image`` already has a row in a shard of an earlier run (with ``resume``)."""
        return record_key(image) in self.done

    def __enter__(self) -> ShardWriter:
        if is_uri(self.out):
            from pyarrow import fs

            try:
                self._fs, self._root = fs.FileSystem.from_uri(self.out)
            except Exception as exc:
                raise ConfigError(f"--output {self.out}: not a usable URI ({one_line(exc, 200)})") from None
        else:
            if Path(self.out).exists() and not Path(self.out).is_dir():
                raise OutputError(f"--output {self.out}: is a file; name a folder for the Parquet shards")
            try:
                check_writable_folder(self.out)
            except OSError as exc:
                raise OutputError.cannot_write(f"--output {self.out}", exc, "choose a writable folder") from None
            for leftover in Path(self.out).glob(f".{SHARD_PREFIX}*.tmp"):  # a shard a killed run was writing
                leftover.unlink(missing_ok=True)
        shards = self._shard_names()
        if shards and not self.resume:
            raise ConfigError(
                f"{self.out} holds {len(shards)} Parquet shards of an earlier run; continue it with --resume, "
                "or choose another folder"
            )
        for name in shards:
            self._carry_over(name)
        return self

    def _shard_names(self) -> list[str]:
        if self._fs is None:
            names = [entry.name for entry in os.scandir(self.out) if entry.is_file()]
        else:
            from pyarrow import fs

            selector = fs.FileSelector(self._root, allow_not_found=True)
            names = [info.base_name for info in self._fs.get_file_info(selector) if info.type == fs.FileType.File]
        return sorted(n for n in names if n.startswith(SHARD_PREFIX) and n.endswith(SHARD_SUFFIX))

    def _carry_over(self, name: str) -> None:
        import pyarrow.parquet as pq

        where = f"{self.out.rstrip('/')}/{name}"
        try:
            if self._fs is None:
                table = pq.read_table(os.path.join(self.out, name), columns=["image", "error"])
            else:
                table = pq.read_table(f"{self._root}/{name}", columns=["image", "error"], filesystem=self._fs)
        except Exception as exc:
            raise ConfigError(
                f"{where}: not a readable shard of hrface detect ({one_line(exc, 200)}); move it away to resume"
            ) from None
        for image, error in zip(table.column("image").to_pylist(), table.column("error").to_pylist(), strict=True):
            self.done.setdefault(record_key(image), error is not None)

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write ``records`` (local-engine dicts) as one new shard, whole or not at all."""
        import pyarrow.parquet as pq

        if not records:
            return
        table = records_table(records, self.models)
        name = f"{SHARD_PREFIX}{self.run}-{self.shards:06d}{SHARD_SUFFIX}"
        try:
            if self._fs is None:
                temporary = os.path.join(self.out, f".{name}.tmp")
                try:
                    with open(temporary, "wb") as file:
                        pq.write_table(table, file)
                        file.flush()
                        os.fsync(file.fileno())
                    os.replace(temporary, os.path.join(self.out, name))
                except BaseException:
                    Path(temporary).unlink(missing_ok=True)
                    raise
            else:
                pq.write_table(table, f"{self._root}/{name}", filesystem=self._fs)
        except OSError as exc:
            kept = f"{self.written} records are kept in {self.out}; continue with --resume"
            raise OutputError.cannot_write(f"--output {self.out}", exc, kept) from None
        self.shards += 1
        self.written += len(records)

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and self.written:
            raise KeyboardInterrupt(f"{self.written} records are kept in {self.out}; continue with --resume") from None
