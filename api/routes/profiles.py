"""Product profiles over HTTP: what the engine knows of each family, every version, and
an import for admins (the same checks and history as `fleetcare profiles import`).

Ops read them (the console's charts and the app's card come from them); only an admin
changes them, since a new version changes what every device of the family may send."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.accounts import Principal, Role
from api.context import ApiContext
from api.deps import Db, Ops, context, role
from api.schemas import FieldError, Problem
from db.database import Database
from fleet.profiles import ProfileRefused, ProfileRepository, VersionRow
from telemetry.profile import Profile, ProfileError, parse_profile, profile_schema

router = APIRouter(prefix="/api/v1", tags=["profiles"])
Admin = Annotated[Principal, Depends(role(Role.ADMIN))]
Family = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="The family's device type, as in its topics (e.g. purifier)",
    ),
]
MAX_BYTES = 1_000_000  # the shipped profiles are a few kB; this is no profile
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "not an ops or admin key"},
    404: {"model": Problem, "description": "no such family or version"},
}


class ProfileSummary(BaseModel):
    name: str = Field(examples=["dehumidifier"])
    version: int
    title: str
    category: str
    models: list[str] = Field(description="The model codes of the family")
    metrics: int
    consumables: list[str] = Field(description="The consumables' stages")
    fault_codes: int
    source: str = Field(description="shipped, or database (imported)")
    checksum: str


class ProfileVersion(BaseModel):
    version: int
    checksum: str
    imported_at: str | None = Field(description="None: the version that ships")
    imported_by: str
    source: str
    in_force: bool


class ProfileIssue(BaseModel):
    path: str = Field(examples=["metrics[2].range"], description="Where in the file")
    problem: str = Field(description="What is wrong and what to write instead")


class ProfileInvalid(BaseModel):
    """The file's problems, each at its path; or, like any 422, the request's own
    (`detail` then lists the invalid fields, with no `problems`)."""

    detail: str | list[FieldError]
    problems: list[ProfileIssue] = Field(default_factory=list)


class ProfileImported(BaseModel):
    profile: ProfileSummary
    created: bool = Field(description="False: this very version was already imported")
    dry_run: bool
    in_force_within_s: float = Field(
        description="Every running part (ingest, rules, API) uses it within this many seconds"
    )


def _summary(p: Profile) -> ProfileSummary:
    d = p.doc
    return ProfileSummary(
        name=d.name,
        version=d.version,
        title=d.title,
        category=d.category,
        models=[m.code for m in d.models],
        metrics=len(d.metrics),
        consumables=[c.stage for c in d.consumables],
        fault_codes=len(d.fault_codes),
        source=p.source,
        checksum=p.checksum,
    )


def _version(v: VersionRow) -> ProfileVersion:
    return ProfileVersion(
        version=v.version,
        checksum=v.checksum,
        imported_at=v.imported_at.isoformat() if v.imported_at else None,
        imported_by=v.imported_by,
        source=v.source,
        in_force=v.in_force,
    )


@router.get("/profiles", response_model=list[ProfileSummary], responses=REFUSED)
async def list_profiles(who: Ops, db: Db) -> list[ProfileSummary]:
    """The families the engine knows, each at the version in force."""
    profiles = await asyncio.to_thread(ProfileRepository(db).current)
    return [_summary(p) for _, p in sorted(profiles.items())]


@router.get("/profile-schema", responses=REFUSED)
async def schema(who: Ops) -> dict[str, Any]:
    """The JSON Schema of a profile file (the same as docs/profile.schema.json)."""
    return profile_schema()


@router.get("/profiles/{name}", responses=REFUSED)
async def get_profile(
    who: Ops,
    db: Db,
    name: Family,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """One family's profile (default: the version in force), as the JSON form of its
    YAML file (`GET /api/v1/profile-schema` is the JSON Schema)."""
    p = await asyncio.to_thread(ProfileRepository(db).get, name, version)
    return p.doc.model_dump(mode="json", exclude_defaults=True)


@router.get("/profiles/{name}/history", response_model=list[ProfileVersion], responses=REFUSED)
async def profile_history(who: Ops, db: Db, name: Family) -> list[ProfileVersion]:
    """Every version of a family, oldest first: when, by whom, from which source."""
    rows = await asyncio.to_thread(ProfileRepository(db).history, name)
    return [_version(v) for v in rows]


def _invalid(exc: ProfileError) -> JSONResponse:
    n = len(exc.problems)
    body = ProfileInvalid(
        detail=f"the profile has {n} problem{'s' * (n != 1)}: fix each at its path",
        problems=[ProfileIssue(path=path or "(file)", problem=why) for path, why in exc.problems],
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _check_and_import(
    db: Database, text: str, actor: str, dry_run: bool
) -> tuple[Profile, bool] | ProfileError:
    from rules.profile_rules import check_profile_rules

    try:
        profile = Profile(parse_profile(text, "request body"), "database")
    except ProfileError as exc:
        return exc
    repo = ProfileRepository(db)
    problems = check_profile_rules(profile, repo.current().overlay([profile]))
    if problems:
        return ProfileError("request body", problems)
    if dry_run:
        return profile, False
    done = repo.import_(profile.doc, source=f"api:{actor}", actor=actor)
    return done.profile, done.created


@router.post(
    "/profiles",
    response_model=ProfileImported,
    responses={
        403: {"model": Problem, "description": "not an admin key"},
        409: {"model": Problem, "description": "the version would rewrite the history"},
        413: {"model": Problem, "description": "larger than any profile"},
        415: {"model": Problem, "description": "not YAML or JSON"},
        422: {"model": ProfileInvalid, "description": "the problems, each at its path"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One profile file, as YAML (or its JSON form)",
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def import_profile(
    request: Request,
    who: Admin,
    db: Db,
    ctx: Annotated[ApiContext, Depends(context)],
    dry_run: Annotated[bool, Query(description="Check only; import nothing")] = False,
) -> Any:
    """Import a profile as a new version of its family (admin). Versions only go up:
    change the file, raise its `version`. The same checks as `fleetcare profiles
    validate`: every problem comes back with its path in the file."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (*YAML_TYPES, "application/json"):
        raise HTTPException(
            415, "send the profile file as application/yaml (or its JSON form as application/json)"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise HTTPException(413, f"a profile is at most {MAX_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise HTTPException(413, f"a profile is at most {MAX_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(422, "the profile is not UTF-8 text") from None
    try:
        result = await asyncio.to_thread(_check_and_import, db, text, who.name, dry_run)
    except ProfileRefused as exc:
        raise HTTPException(409, str(exc)) from None
    if isinstance(result, ProfileError):
        return _invalid(result)
    profile, created = result
    return ProfileImported(
        profile=_summary(profile),
        created=created,
        dry_run=dry_run,
        in_force_within_s=ctx.profiles_refresh_s,
    )
