"""Job state for the web app, in an embedded SQLite database, so that a server restart loses nothing.

A job is one upload of images with one set of settings. Each image of a job is an *item*. Files live in the data
folder under ``jobs/<job id>/`` and are named by the item's index only: a name the user gave is kept in the
database for display and never reaches the file system.

States:

    job:  queued -> running -> done | failed | cancelled       (running -> queued again after a restart)
    item: queued -> running -> done | failed | cancelled
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    settings TEXT NOT NULL,
    target TEXT,
    error TEXT,
    note TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    starts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    stored TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    state TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    report TEXT,
    PRIMARY KEY (job_id, idx)
);
"""


@dataclass
class Item:
    job_id: str
    index: int
    name: str
    stored: str
    width: int
    height: int
    state: str
    progress: float = 0.0
    error: str | None = None
    report: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "state": self.state,
            "progress": round(self.progress, 4),
            "error": self.error,
            "report": self.report,
        }


@dataclass
class Job:
    id: str
    state: str
    settings: dict[str, Any]
    target: str | None
    error: str | None
    note: str | None
    cancel_requested: bool
    starts: int
    created: float
    updated: float
    items: list[Item] = field(default_factory=list)

    @property
    def progress(self) -> float:
        if not self.items:
            return 0.0
        return sum(1.0 if i.state in FINISHED_STATES else i.progress for i in self.items) / len(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "settings": self.settings,
            "target": self.target,
            "error": self.error,
            "note": self.note,
            "cancel_requested": self.cancel_requested,
            "progress": round(self.progress, 4),
            "created": self.created,
            "updated": self.updated,
            "items": [item.to_dict() for item in self.items],
        }


@dataclass(frozen=True)
class NewItem:
    """An accepted upload: its display name, its file name in the job folder, and its size."""

    name: str
    stored: str
    width: int
    height: int


class JobStore:
    """Thread-safe access to the jobs database. One short transaction per call; a lock serialises writers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as db:
            # WAL: readers (status polls) never wait on the worker's writes, and a crash leaves a consistent file.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ------------------------------------------------------------------------------------------------ jobs

    def create_job(self, settings: dict[str, Any], items: list[NewItem], job_id: str | None = None) -> Job:
        job_id = job_id or new_job_id()
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, state, settings, created, updated) VALUES (?, 'queued', ?, ?, ?)",
                (job_id, json.dumps(settings), now, now),
            )
            db.executemany(
                "INSERT INTO items (job_id, idx, name, stored, width, height, state) VALUES (?, ?, ?, ?, ?, ?, 'queued')",
                [(job_id, i, it.name, it.stored, it.width, it.height) for i, it in enumerate(items)],
            )
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            items = db.execute("SELECT * FROM items WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall()
        return _job(row, [_item(r) for r in items])

    def list_jobs(self) -> list[Job]:
        with self._connect() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs ORDER BY created")]
        return [job for job in (self.get_job(i) for i in ids) if job is not None]

    def claim_next_job(self) -> Job | None:
        """Mark the oldest queued job running and return it (None when there is none)."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', starts = starts + 1, updated = ? WHERE id = ?",
                (time.time(), row["id"]),
            )
        return self.get_job(row["id"])

    def set_job_state(self, job_id: str, state: str, error: str | None = None, note: str | None = None) -> None:
        assert state in JOB_STATES
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error = COALESCE(?, error), note = COALESCE(?, note), updated = ? "
                "WHERE id = ?",
                (state, error, note, time.time(), job_id),
            )

    def set_job_target(self, job_id: str, target: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET target = ?, updated = ? WHERE id = ?", (target, time.time(), job_id))

    def request_cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one is flagged and stops at its next step."""
        with self._transaction() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            now = time.time()
            if row["state"] == "queued":
                db.execute(
                    "UPDATE jobs SET state = 'cancelled', cancel_requested = 1, updated = ? WHERE id = ?", (now, job_id)
                )
                db.execute(
                    "UPDATE items SET state = 'cancelled' WHERE job_id = ? AND state NOT IN ('done', 'failed')",
                    (job_id,),
                )
            elif row["state"] == "running":
                db.execute("UPDATE jobs SET cancel_requested = 1, updated = ? WHERE id = ?", (now, job_id))
        return self.get_job(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row is None or bool(row["cancel_requested"])

    def delete_job(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def finished_before(self, cutoff: float) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT id FROM jobs WHERE state IN ({','.join('?' * len(FINISHED_STATES))}) AND updated < ?",
                (*FINISHED_STATES, cutoff),
            ).fetchall()
        return [r["id"] for r in rows]

    def recover_after_restart(self, max_starts: int) -> list[str]:
        """Jobs left running by a stopped server go back to the queue (their finished images are kept), unless
        they have already been started ``max_starts`` times: then they fail with the reason. Returns their ids."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, starts FROM jobs WHERE state = 'running'").fetchall()
            now = time.time()
            for row in rows:
                db.execute(
                    "UPDATE items SET state = 'queued', progress = 0 WHERE job_id = ? AND state = 'running'",
                    (row["id"],),
                )
                if row["starts"] >= max_starts:
                    reason = (
                        f"the server stopped {row['starts']} times while this job was running, so it was not "
                        "started again; the images finished before that are kept"
                    )
                    db.execute(
                        "UPDATE jobs SET state = 'failed', error = ?, updated = ? WHERE id = ?",
                        (reason, now, row["id"]),
                    )
                    db.execute(
                        "UPDATE items SET state = 'failed', error = ? WHERE job_id = ? AND state = 'queued'",
                        ("not cloaked: the job was stopped", row["id"]),
                    )
                else:
                    db.execute(
                        "UPDATE jobs SET state = 'queued', note = ?, updated = ? WHERE id = ?",
                        ("resumed after a server restart; finished images were kept", now, row["id"]),
                    )
        return [r["id"] for r in rows]

    # ----------------------------------------------------------------------------------------------- items

    def set_item(
        self,
        job_id: str,
        index: int,
        state: str | None = None,
        progress: float | None = None,
        error: str | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        sets, values = ["progress = COALESCE(?, progress)"], [progress]
        if state is not None:
            sets.append("state = ?")
            values.append(state)
        if error is not None:
            sets.append("error = ?")
            values.append(error)
        if report is not None:
            sets.append("report = ?")
            values.append(json.dumps(report))
        with self._transaction() as db:
            db.execute(f"UPDATE items SET {', '.join(sets)} WHERE job_id = ? AND idx = ?", (*values, job_id, index))
            db.execute("UPDATE jobs SET updated = ? WHERE id = ?", (time.time(), job_id))

    def cancel_open_items(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE items SET state = 'cancelled', progress = 0 WHERE job_id = ? AND state IN ('queued', 'running')",
                (job_id,),
            )

    def throughput_samples(self, limit: int = 50) -> list[dict[str, Any]]:
        """Reports of the most recently cloaked images, to estimate how long the next ones take."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT report FROM items WHERE state = 'done' AND report IS NOT NULL ORDER BY rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [json.loads(r["report"]) for r in rows]


def new_job_id() -> str:
    # 128 random bits: a job's URLs cannot be guessed from another job's.
    return uuid.uuid4().hex


def _job(row: sqlite3.Row, items: list[Item]) -> Job:
    return Job(
        id=row["id"],
        state=row["state"],
        settings=json.loads(row["settings"]),
        target=row["target"],
        error=row["error"],
        note=row["note"],
        cancel_requested=bool(row["cancel_requested"]),
        starts=row["starts"],
        created=row["created"],
        updated=row["updated"],
        items=items,
    )


def _item(row: sqlite3.Row) -> Item:
    return Item(
        job_id=row["job_id"],
        index=row["idx"],
        name=row["name"],
        stored=row["stored"],
        width=row["width"],
        height=row["height"],
        state=row["state"],
        progress=row["progress"],
        error=row["error"],
        report=json.loads(row["report"]) if row["report"] else None,
    )
