"""`fleetcare api` and `fleetcare users …`: the HTTP API and who may call it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from fleetcare.cli.common import console, err, settings

app = typer.Typer()


users_app = typer.Typer(
    help="API accounts: customers, technicians, ops and admins, with their keys.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="Address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes serving the port (default from settings; one per core)."
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and the ops console: /api/v1 (OpenAPI at /docs), /console,
    /healthz, /readyz, /metrics.

    Every /api/v1 route needs a key: `fleetcare users create ops-1 --role ops`.
    Example: `fleetcare api --port 8080 --workers 2`, then
    `curl -H "Authorization: Bearer fc_…" localhost:8080/api/v1/devices`.
    """
    import uvicorn

    from fleetcare.apiserver import WORKER_SETTINGS, build_api, settings_for_workers

    s = settings()
    n = workers or s.api.workers
    where = {
        "host": host or s.api.host,
        "port": port if port is not None else s.api.port,
        "log_level": s.log.level.lower(),
        "access_log": s.log.level == "DEBUG",
    }
    if n == 1:
        uvicorn.run(build_api(s), **where)  # type: ignore[arg-type]
        return
    os.environ[WORKER_SETTINGS] = settings_for_workers(s)
    uvicorn.run("fleetcare.apiserver:app_from_env", factory=True, workers=n, **where)  # type: ignore[arg-type]


@users_app.command("create")
def create(
    user_id: Annotated[str, typer.Argument(help="The account's id, e.g. ops-shanghai.")],
    role: Annotated[str, typer.Option(help="customer, technician, ops or admin.")],
    name: Annotated[str | None, typer.Option(help="A display name.")] = None,
    customer: Annotated[str | None, typer.Option(help="A customer's id (role customer).")] = None,
    technician: Annotated[
        str | None, typer.Option(help="A technician's id (role technician).")
    ] = None,
    territory: Annotated[
        list[str] | None,
        typer.Option(help="Limit an ops account to a territory (repeatable)."),
    ] = None,
    password: Annotated[
        bool, typer.Option(help="Also set a password (asked for) to sign in with.")
    ] = False,
) -> None:
    """Create an account and print its API key: it is shown this once, and stored
    only as a hash. Example: `fleetcare users create li --role customer --customer c-1`."""
    from api.accounts import AccountError, Accounts, Role
    from fleetcare.wiring import open_database

    try:
        chosen = Role(role)
    except ValueError:
        err.print(f"[red]no role {role!r}[/]: one of customer, technician, ops, admin")
        raise typer.Exit(2) from None
    try:
        issued = Accounts(open_database(settings())).create(
            user_id,
            name=name or user_id,
            role=chosen,
            customer_id=customer,
            technician_id=technician,
            territories_=territory or (),
        )
    except AccountError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"account {user_id} ({chosen.value}) created. Its API key, shown once:")
    print(issued.key)
    if password:
        _set_password(user_id)


def _set_password(user_id: str) -> None:
    from api.accounts import AccountError, Accounts
    from fleetcare.wiring import open_database

    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        Accounts(open_database(settings())).set_password(user_id, secret)
    except AccountError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"{user_id} can sign in to the console and /api/v1/auth/token")


@users_app.command("password")
def password_(user_id: str) -> None:
    """Set (or change) an account's password, asked for twice: it signs in to the ops
    console and to `/api/v1/auth/token`. Example: `fleetcare users password ops-1`."""
    _set_password(user_id)


@users_app.command("key")
def key(user_id: str) -> None:
    """Issue another key for an account (to rotate: issue, switch, revoke the old)."""
    from api.accounts import AccountError, Accounts
    from fleetcare.wiring import open_database

    try:
        issued = Accounts(open_database(settings())).issue(user_id)
    except AccountError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"a new key for {user_id}, shown once:")
    print(issued.key)


@users_app.command("revoke")
def revoke(prefix: Annotated[str, typer.Argument(help="The key's first characters.")]) -> None:
    """Revoke a key by its prefix (the first 9 characters, e.g. fc_AbC123)."""
    from api.accounts import Accounts
    from fleetcare.wiring import open_database

    n = Accounts(open_database(settings())).revoke(prefix)
    if not n:
        err.print(f"[red]no live key starts with {prefix!r}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {n} key(s)")


@users_app.command("disable")
def disable(user_id: str) -> None:
    """Disable an account at once: its keys, tokens and console sessions are refused from
    the next request (after `api.auth_cache_s` seconds at most where a cache is on).
    Example: `fleetcare users disable tech-7`; undo with `fleetcare users enable`."""
    _switch(user_id, disabled=True)


@users_app.command("enable")
def enable(user_id: str) -> None:
    """Enable a disabled account again: its keys work again; sign-ins from before it was
    disabled stay ended (sign in again)."""
    _switch(user_id, disabled=False)


def _switch(user_id: str, *, disabled: bool) -> None:
    from api.accounts import AccountError, Accounts
    from fleetcare.wiring import open_database

    try:
        Accounts(open_database(settings())).disable(user_id, disabled=disabled)
    except AccountError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"{user_id} {'disabled' if disabled else 'enabled'}")
