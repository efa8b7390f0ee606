"""A query parameter the operation takes once, given twice, is refused (422), not read as
its last value: `?state=firing&state=bogus` would otherwise list resolved alerts quietly
as "bogus", and a client's bug would pass unseen. Parameters declared as lists repeat."""

from __future__ import annotations

import collections.abc
import types
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant

_SEQUENCES = (list, set, frozenset, tuple, collections.abc.Sequence, collections.abc.Set)


def _repeats(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in _SEQUENCES:
        return True
    if origin in (Union, types.UnionType):
        return any(_repeats(a) for a in get_args(annotation))
    if origin is Annotated:
        return _repeats(get_args(annotation)[0])
    return False


def _single(dependant: Dependant) -> set[str]:
    names = {f.alias for f in dependant.query_params if not _repeats(f.field_info.annotation)}
    for sub in dependant.dependencies:
        names |= _single(sub)
    return names


async def one_value_each(request: Request) -> None:
    """App-wide dependency: 422 naming the parameter given more than once."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    # each route's single-valued names, worked out once per app (its routes live with it)
    cache: dict[int, frozenset[str]] = request.app.state.single_query_names
    single = cache.get(id(route))
    if single is None:
        single = cache[id(route)] = frozenset(_single(dependant))
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    twice = sorted(k for k, n in seen.items() if n > 1 and k in single)
    if twice:
        raise HTTPException(
            422, f"query parameter {twice[0]!r} is given {seen[twice[0]]} times: give it once"
        )
