"""Page actions: one way for a page to try something and show why it failed.

``@page_action(failed)`` runs the route with its database work in a SAVEPOINT. A VouchError
undoes that work (and drops the work queued for after the commit, such as mail), and the page
answers ``failed(exc, request=..., **the route's arguments)`` instead: the form again with the
message, as typed. What the request wrote before the route ran stays, and is committed as usual.
"""

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec

from fastapi import Request
from fastapi.responses import Response
from sqlmodel import Session

from core.errors import VouchError

P = ParamSpec("P")
Failed = Callable[..., Response]


def page_action(
    failed: Failed, *, savepoint: bool = True
) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """Wrap a page route (it takes ``session``) so that a VouchError it raises answers
    ``failed``, which always gets the ``request`` (the route need not take it).

    ``savepoint=False`` for an action that ends its transaction itself (it commits its reads
    before a slow outside call and stores the outcome in a transaction of its own)."""

    def wrap(route: Callable[P, Response]) -> Callable[P, Response]:
        signature = inspect.signature(route)
        takes_request = "request" in signature.parameters

        @functools.wraps(route)
        def run(*args: P.args, **kwargs: P.kwargs) -> Response:
            request = kwargs["request"] if takes_request else kwargs.pop("request")
            session = kwargs["session"]
            assert isinstance(session, Session)
            queued = session.info.setdefault("after_commit", [])
            waiting = len(queued)
            try:
                if not savepoint:
                    return route(*args, **kwargs)
                with session.begin_nested():
                    return route(*args, **kwargs)
            except VouchError as exc:
                del queued[waiting:]  # what the failed action meant to send never goes
                if savepoint:
                    # The page shows what is stored now: rows that a Core UPDATE changed in
                    # the savepoint were not dirty in the session, so its rollback left them.
                    session.expire_all()
                return failed(exc, **{**kwargs, "request": request})

        if not takes_request:
            extra = inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            params = list(signature.parameters.values())
            run.__signature__ = signature.replace(  # type: ignore[attr-defined]
                parameters=[*params, extra]
            )
        return run

    return wrap
