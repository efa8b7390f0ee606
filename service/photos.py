"""Photos of a job: the customer's when they report it (what they see: a leak, an error
code), the technician's when they complete it. Each is judged by its bytes, not its name
(JPEG, PNG or WebP, at most 10 MB), kept under the job's folder by its SHA-256 (the same
picture twice is kept once), and listed and served only to who may see the job."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from db.database import Database
from db.errors import NotFound
from db.tables import work_order_photos
from service.errors import BadPhoto, ServiceError
from service.lifecycle import LIVE
from service.orders import WorkOrders

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_INTAKE_PHOTOS = 10  # per job, from the customer and agents
_IMAGE_TYPES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)


class PhotosRefused(ServiceError):
    """Photos that cannot be added to the job as it stands."""


@dataclass(frozen=True)
class Photo:
    name: str
    content: bytes


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    id: int
    order_id: int
    stage: str  # intake (the report) | completion (the visit)
    content_type: str
    size: int
    sha256: str
    added_by: str | None
    added_at: datetime | None


def image_type(content: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the bytes, not the name."""
    for magic, ctype, ext in _IMAGE_TYPES:
        if content.startswith(magic):
            return ctype, ext
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def check(photo: Photo) -> tuple[bytes, str, str]:
    """The photo's bytes, content type and extension; `BadPhoto` saying what is wrong."""
    if not photo.content:
        raise BadPhoto(photo.name, "empty")
    if len(photo.content) > MAX_PHOTO_BYTES:
        raise BadPhoto(
            photo.name,
            f"{len(photo.content) / 1e6:.1f} MB; at most {MAX_PHOTO_BYTES // 2**20} MB",
        )
    kind = image_type(photo.content)
    if kind is None:
        raise BadPhoto(photo.name, "not a JPEG, PNG or WebP image")
    return photo.content, kind[0], kind[1]


def store(
    conn: Connection,
    photo_dir: Path,
    order_id: int,
    checked: tuple[bytes, str, str],
    *,
    stage: str,
    by: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Write the photo (atomically) and record it, in the caller's transaction; the
    caller removes the file if the transaction fails."""
    content, ctype, ext = checked
    digest = hashlib.sha256(content).hexdigest()
    folder = photo_dir / str(order_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest[:16]}.{ext}"
    tmp = path.with_suffix(".part")
    tmp.write_bytes(content)
    tmp.replace(path)
    conn.execute(
        work_order_photos.insert().values(
            order_id=order_id, path=str(path), content_type=ctype, size=len(content),
            sha256=digest, stage=stage, added_by=by, added_at=now,
        )
    )  # fmt: skip
    return path


class Photos:
    def __init__(self, db: Database, photo_dir: Path) -> None:
        self.db, self.photo_dir = db, photo_dir
        self.orders = WorkOrders(db)

    def attach(
        self, order_id: int, photos: Sequence[Photo], *, by: str, now: datetime | None = None
    ) -> list[StoredPhoto]:
        """The customer's (or an agent's) photos of a live job, all or none."""
        now = now or datetime.now(UTC)
        if not photos:
            raise PhotosRefused("no photo given: attach one or more images as `photos`")
        checked = [check(p) for p in photos]
        written: list[Path] = []
        try:
            with self.db.engine.begin() as conn:
                order = self.orders.get_in(conn, order_id)
                if order.state not in LIVE:
                    raise PhotosRefused(
                        f"order {order_id} is {order.state.value}: photos go with a live job"
                    )
                have = conn.execute(
                    sa.select(sa.func.count()).where(
                        work_order_photos.c.order_id == order_id,
                        work_order_photos.c.stage == "intake",
                    )
                ).scalar_one()
                if have + len(checked) > MAX_INTAKE_PHOTOS:
                    raise PhotosRefused(
                        f"order {order_id} has {have} photos; at most {MAX_INTAKE_PHOTOS} "
                        "can be attached"
                    )
                known = set(
                    conn.execute(
                        sa.select(work_order_photos.c.sha256).where(
                            work_order_photos.c.order_id == order_id
                        )
                    ).scalars()
                )
                for c in checked:
                    if hashlib.sha256(c[0]).hexdigest() in known:
                        continue  # the same picture again: kept once
                    written.append(
                        store(conn, self.photo_dir, order_id, c, stage="intake", by=by, now=now)
                    )
                    known.add(hashlib.sha256(c[0]).hexdigest())
                self.orders.audit_in(
                    conn, order, now, by, "photos", f"{len(written)} photo(s) attached"
                )
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return self.list(order_id)

    def list(self, order_id: int) -> list[StoredPhoto]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(work_order_photos)
                .where(work_order_photos.c.order_id == order_id)
                .order_by(work_order_photos.c.id)
            ).all()
        return [
            StoredPhoto(
                r.id, r.order_id, r.stage, r.content_type, r.size, r.sha256, r.added_by,
                r.added_at,
            )
            for r in rows
        ]  # fmt: skip

    def file(self, order_id: int, photo_id: int) -> tuple[Path, str]:
        """The stored file and its content type."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                sa.select(work_order_photos.c.path, work_order_photos.c.content_type).where(
                    work_order_photos.c.id == photo_id, work_order_photos.c.order_id == order_id
                )
            ).first()
        if row is None or not Path(row.path).is_file():
            raise NotFound("photo", photo_id)
        return Path(row.path), row.content_type
