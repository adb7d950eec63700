"""The server's database: users, label versions, jobs, and the schema migrations.

SQLAlchemy 2 models over SQLite (the default, in the workspace) or
PostgreSQL.  The schema is created and upgraded by :func:`migrate`: an
ordered list of :data:`MIGRATIONS`, each applied once and recorded in the
``schema_migrations`` table, so a database made by an older segloop is
upgraded in place and keeps its rows (the equivalent of Alembic's
``upgrade head`` for a schema this small).

``label_versions`` is the backbone of the label store: one row per saved
version of one rater's label of one image, unique on ``(image_id, rater,
version)``.  Two saves built on the same base version both claim
``base + 1``; the database lets one in and the other gets the conflict the
API answers with 409.

Examples
--------
>>> engine = connect("sqlite://")
>>> migrate(engine)
[1, 2]
>>> migrate(engine)
[]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

__all__ = ["MIGRATIONS", "Base", "Job", "LabelVersion", "User", "connect", "migrate", "now",
           "session_factory"]


def now() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the server's tables (the latest schema)."""


class User(Base):
    """Someone who may call the API: a name, a role and a hashed token."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class LabelVersion(Base):
    """One saved version of one rater's label of one image (files are in the workspace)."""

    __tablename__ = "label_versions"
    __table_args__ = (UniqueConstraint("image_id", "rater", "version", name="uq_label_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(String(255), index=True)
    rater: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(16), default="save")
    tools: Mapped[str] = mapped_column(Text, default="[]")
    interactions: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    def to_dict(self) -> dict[str, Any]:
        """The version as the API shows it."""
        return {
            "image_id": self.image_id, "rater": self.rater, "version": self.version,
            "author": self.author, "created_at": self.created_at.isoformat(),
            "base_version": self.base_version, "action": self.action,
            "tools": json.loads(self.tools or "[]"), "interactions": self.interactions,
            "seconds": self.seconds, "comment": self.comment, "sha256": self.sha256,
        }


class Job(Base):
    """A background job (training, prediction): its state and progress."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text, default="{}")
    result: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id, "kind": self.kind, "status": self.status, "progress": self.progress,
            "message": self.message, "user": self.user, "params": json.loads(self.params),
            "result": json.loads(self.result), "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


# ----------------------------------------------------------------------------- migrations
def _v1(conn: Connection) -> None:
    """The first schema: users, label versions (without comments), jobs."""
    meta = MetaData()
    Table("users", meta, Column("id", Integer, primary_key=True),
          Column("name", String(64), unique=True, nullable=False),
          Column("role", String(16), nullable=False),
          Column("token_hash", String(64), unique=True, nullable=False, index=True),
          Column("created_at", DateTime(timezone=True), nullable=False))
    Table("label_versions", meta, Column("id", Integer, primary_key=True),
          Column("image_id", String(255), nullable=False, index=True),
          Column("rater", String(64), nullable=False, index=True),
          Column("version", Integer, nullable=False),
          Column("path", String(1024), nullable=False),
          Column("sha256", String(64), nullable=False),
          Column("author", String(64), nullable=False),
          Column("created_at", DateTime(timezone=True), nullable=False),
          Column("base_version", Integer), Column("action", String(16), nullable=False),
          Column("tools", Text, nullable=False), Column("interactions", Integer, nullable=False),
          Column("seconds", Float, nullable=False),
          UniqueConstraint("image_id", "rater", "version", name="uq_label_version"))
    Table("jobs", meta, Column("id", String(36), primary_key=True),
          Column("kind", String(16), nullable=False), Column("status", String(16), nullable=False),
          Column("progress", Float, nullable=False), Column("message", Text, nullable=False),
          Column("user", String(64), nullable=False), Column("params", Text, nullable=False),
          Column("result", Text, nullable=False),
          Column("created_at", DateTime(timezone=True), nullable=False),
          Column("finished_at", DateTime(timezone=True)))
    meta.create_all(conn)


def _v2(conn: Connection) -> None:
    """A comment on each saved label version."""
    conn.execute(text("ALTER TABLE label_versions ADD COLUMN comment TEXT"))


#: (version, description, upgrade) in order; append, never edit a released one.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "users, label versions, jobs", _v1),
    (2, "label version comments", _v2),
]

_MIGRATIONS_TABLE = Table(
    "schema_migrations", MetaData(), Column("version", Integer, primary_key=True),
    Column("description", String(255), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False))


def migrate(engine: Engine, *, target: int | None = None) -> list[int]:
    """Apply the migrations not yet applied (up to ``target``); the versions applied.

    Each runs in its own transaction with its ``schema_migrations`` row, so an
    interrupted upgrade resumes where it stopped.
    """
    _MIGRATIONS_TABLE.create(engine, checkfirst=True)
    with engine.connect() as conn:
        done = {row[0] for row in conn.execute(select(_MIGRATIONS_TABLE.c.version))}
    applied = []
    for version, description, upgrade in MIGRATIONS:
        if version in done or (target is not None and version > target):
            continue
        with engine.begin() as conn:
            upgrade(conn)
            conn.execute(_MIGRATIONS_TABLE.insert().values(
                version=version, description=description, applied_at=now()))
        applied.append(version)
    return applied


def schema_version(engine: Engine) -> int:
    """The highest migration applied (0 for an empty database)."""
    if not inspect(engine).has_table("schema_migrations"):
        return 0
    with engine.connect() as conn:
        versions = [row[0] for row in conn.execute(select(_MIGRATIONS_TABLE.c.version))]
    return max(versions, default=0)


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def session_factory(engine: Engine) -> sessionmaker:
    """Sessions that keep loaded attributes after commit."""
    return sessionmaker(engine, expire_on_commit=False)
