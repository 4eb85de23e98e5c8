"""The local backend's state: one SQLite database under the backend's root directory.

Every process on the machine (Airflow workers, the triggerer, detached job runners, the CLI)
opens the same file, so any of them can look a job up, wait for it or stop it. WAL mode lets
readers and the single writer of a row proceed concurrently. The root is created owner-only
(0700) and the database file is 0600: it holds job metadata, never credentials.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_autogluon_cloud.kinds import ENDPOINT

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ended_at REAL,
    pid INTEGER,
    pid_start TEXT,
    workdir TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, name)
)
"""

#: Resource kinds besides jobs (recorded under their ``JobKind`` value) and ``ENDPOINT``, as on SageMaker.
MODEL = "model"
ENDPOINT_CONFIG = "endpoint_config"
__all__ = ["ENDPOINT", "ENDPOINT_CONFIG", "MODEL", "AlreadyExistsError", "Record", "StateStore", "Transaction"]


class AlreadyExistsError(Exception):
    """A resource of that kind and name is already recorded."""


@dataclass
class Record:
    kind: str
    name: str
    status: str
    failure_reason: str | None
    created_at: float
    updated_at: float
    ended_at: float | None
    pid: int | None
    pid_start: str | None
    workdir: str | None
    data: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


_COLUMNS = "kind, name, status, failure_reason, created_at, updated_at, ended_at, pid, pid_start, workdir, data, tags"


def _to_record(row: tuple[Any, ...]) -> Record:
    kind, name, status, reason, created, updated, ended, pid, pid_start, workdir, data, tags = row
    return Record(
        kind, name, status, reason, created, updated, ended, pid, pid_start, workdir, json.loads(data), json.loads(tags)
    )


class Transaction:
    """Reads and writes inside :meth:`StateStore.transaction`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def list(self, kind: str, status: str | None = None) -> list[Record]:
        query, params = f"SELECT {_COLUMNS} FROM resources WHERE kind = ?", [kind]
        if status is not None:
            query, params = query + " AND status = ?", [kind, status]
        return [_to_record(r) for r in self.conn.execute(query + " ORDER BY created_at", params).fetchall()]

    def update(self, kind: str, name: str, status: str, data_updates: dict[str, Any]) -> bool:
        row = self.conn.execute("SELECT data FROM resources WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        if row is None:
            return False
        merged = {**json.loads(row[0]), **data_updates}
        self.conn.execute(
            "UPDATE resources SET status = ?, data = ?, updated_at = ? WHERE kind = ? AND name = ?",
            (status, json.dumps(merged), time.time(), kind, name),
        )
        return True


class StateStore:
    """Typed access to the ``resources`` table.

    :param root: the local backend's root directory; the database is ``<root>/state.db``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.path = self.root / "state.db"
        self._initialised = False

    def _ensure(self) -> None:
        if self._initialised:
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
        self._initialised = True

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A new connection per operation: cheap, and safe across threads and forked processes.
        old_umask = os.umask(0o077)
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        finally:
            os.umask(old_umask)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    def insert(
        self,
        kind: str,
        name: str,
        status: str,
        *,
        data: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        workdir: str | None = None,
    ) -> Record:
        self._ensure()
        now = time.time()
        try:
            with self._connect() as conn:
                conn.execute(
                    f"INSERT INTO resources ({_COLUMNS}) VALUES (?, ?, ?, NULL, ?, ?, NULL, NULL, NULL, ?, ?, ?)",
                    (kind, name, status, now, now, workdir, json.dumps(data or {}), json.dumps(tags or {})),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExistsError(f"{kind} {name!r} already exists") from None
        record = self.get(kind, name)
        assert record is not None
        return record

    def get(self, kind: str, name: str) -> Record | None:
        self._ensure()
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM resources WHERE kind = ? AND name = ?", (kind, name)).fetchone()
        return _to_record(row) if row else None

    def list(self, kind: str) -> list[Record]:
        self._ensure()
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM resources WHERE kind = ? ORDER BY created_at", (kind,)
            ).fetchall()
        return [_to_record(r) for r in rows]

    def update(
        self,
        kind: str,
        name: str,
        *,
        expect_status: tuple[str, ...] | None = None,
        expect_data: dict[str, Any] | None = None,
        data_updates: dict[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Update columns (and merge ``data_updates`` into the JSON data) of one record.

        :param expect_status: only update while the status is one of these (compare-and-set), so
            a runner finishing and a user stopping the job cannot overwrite each other.
        :param expect_data: only update while these keys of the JSON data hold these values.
        :return: whether a row was updated.
        """
        self._ensure()
        allowed = {"status", "failure_reason", "ended_at", "pid", "pid_start", "workdir", "tags"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"Unknown state columns: {sorted(unknown)}")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT status, data FROM resources WHERE kind = ? AND name = ?", (kind, name)
                ).fetchone()
                current = json.loads(row[1]) if row is not None else {}
                if (
                    row is None
                    or (expect_status is not None and row[0] not in expect_status)
                    or any(current.get(key) != value for key, value in (expect_data or {}).items())
                ):
                    conn.execute("ROLLBACK")
                    return False
                sets = ["updated_at = ?"]
                values: list[Any] = [time.time()]
                for column, value in fields.items():
                    sets.append(f"{column} = ?")
                    values.append(json.dumps(value) if column == "tags" else value)
                if data_updates:
                    merged = {**current, **data_updates}
                    sets.append("data = ?")
                    values.append(json.dumps(merged))
                conn.execute(
                    f"UPDATE resources SET {', '.join(sets)} WHERE kind = ? AND name = ?",
                    (*values, kind, name),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return True

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (``BEGIN IMMEDIATE``: other writers wait), committed on success.

        Reads inside it see the state no other process can change until it ends, so a check and
        the write that depends on it are one step (compare-and-set over several rows).
        """
        self._ensure()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def delete(self, kind: str, name: str) -> bool:
        self._ensure()
        with self._connect() as conn:
            cur = conn.execute("DELETE FROM resources WHERE kind = ? AND name = ?", (kind, name))
        return cur.rowcount > 0
