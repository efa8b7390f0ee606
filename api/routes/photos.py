"""Photos of a job: the customer attaches theirs to the job they reported (or an agent
for them), and whoever may see the job lists them and fetches each, the technician's
from the visit included. Checked by their bytes (JPEG, PNG, WebP; 10 MB each)."""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, UploadFile
from fastapi.responses import FileResponse

from api import views
from api.context import ApiContext
from api.deps import MAX_ID, Caller, Db, OrderId, context
from api.guard import NUL_MESSAGE, has_nul
from api.routes.orders import Reporter
from api.schemas import PhotoPublic, Problem
from service.errors import BadPhoto
from service.photos import MAX_INTAKE_PHOTOS, MAX_PHOTO_BYTES, Photo, Photos, StoredPhoto

router = APIRouter(prefix="/api/v1/orders", tags=["photos"])
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "your role may not do this"},
    404: {"model": Problem, "description": "not in your scope"},
    422: {"model": Problem, "description": "not an image we take, too big, or too many"},
}
PhotoId = Annotated[int, Path(ge=1, le=MAX_ID, description="The photo's id")]


def _public(p: StoredPhoto) -> PhotoPublic:
    return PhotoPublic(
        id=p.id, order_id=p.order_id, stage=p.stage,
        content_type=p.content_type, size=p.size, sha256=p.sha256, added_by=p.added_by,
        added_at=p.added_at, url=f"/api/v1/orders/{p.order_id}/photos/{p.id}",
    )  # fmt: skip


@router.post(
    "/{order_id}/photos", response_model=list[PhotoPublic], status_code=201, responses=REFUSED
)
async def attach(
    order_id: OrderId,
    who: Reporter,
    db: Db,
    ctx: Annotated[ApiContext, Depends(context)],
    photos: Annotated[
        list[UploadFile],
        File(
            min_length=1,
            description=f"JPEG, PNG or WebP; at most {MAX_INTAKE_PHOTOS} per job, "
            f"{MAX_PHOTO_BYTES >> 20} MB each",
        ),
    ],
) -> list[PhotoPublic]:
    """Attach photos to a live job you reported (what you see: a leak, an error code);
    an agent may for the customer. The same picture twice is kept once. Returns every
    photo of the job."""
    if any(has_nul("application/json", (f.filename or "").encode()) for f in photos):
        raise BadPhoto("photo", NUL_MESSAGE)
    taken = []
    for f in photos[: MAX_INTAKE_PHOTOS + 1]:
        content = await f.read(MAX_PHOTO_BYTES + 1)  # never more than the limit in memory
        if len(content) > MAX_PHOTO_BYTES:
            raise BadPhoto(f.filename or "photo", f"larger than {MAX_PHOTO_BYTES // 2**20} MB")
        taken.append(Photo(f.filename or "photo", content))

    def run() -> list[PhotoPublic]:
        views.order_in_scope(db, who, order_id)
        stored = Photos(db, ctx.photo_dir).attach(order_id, taken, by=who.user_id)
        return [_public(p) for p in stored]

    return await asyncio.to_thread(run)


@router.get("/{order_id}/photos", response_model=list[PhotoPublic], responses=REFUSED)
async def listed(
    order_id: OrderId, who: Caller, db: Db, ctx: Annotated[ApiContext, Depends(context)]
) -> list[PhotoPublic]:
    """The job's photos: the customer's from the report, the technician's from the
    visit."""

    def run() -> list[PhotoPublic]:
        views.order_in_scope(db, who, order_id)
        return [_public(p) for p in Photos(db, ctx.photo_dir).list(order_id)]

    return await asyncio.to_thread(run)


@router.get(
    "/{order_id}/photos/{photo_id}",
    response_class=FileResponse,
    responses={
        **REFUSED,
        200: {
            "description": "The image",
            "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/webp": {"schema": {"type": "string", "format": "binary"}},
            },
        },
    },
)
async def fetch(
    order_id: OrderId,
    photo_id: PhotoId,
    who: Caller,
    db: Db,
    ctx: Annotated[ApiContext, Depends(context)],
) -> FileResponse:
    """One photo, as the image it is."""

    def run() -> tuple[FilePath, str]:
        views.order_in_scope(db, who, order_id)
        return Photos(db, ctx.photo_dir).file(order_id, photo_id)

    path, ctype = await asyncio.to_thread(run)
    return FileResponse(
        path, media_type=ctype, headers={"X-Content-Type-Options": "nosniff"},
        content_disposition_type="inline",
    )  # fmt: skip
