"""The notifications page: the signed-in account's notifications, marking them read, and its
webhook (set a URL, see the secret once, recent deliveries); and the unread count in the nav."""

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlmodel import Session

from app import notifications
from app.deps import RuntimeDep, SessionDep, SignedIn
from app.models import Account
from app.web.actions import page_action
from app.web.forms import PostGuard
from app.web.pages import render
from core.errors import VouchError

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the page, and the nav's unread count as a template global."""
    app.state.templates.env.globals["unread_notifications"] = _unread_notifications
    app.state.templates.env.globals["notification_link"] = notifications.link
    app.include_router(router)


def _unread_notifications(request: Request, account: Account) -> int:
    # Its own short session: base.html asks for it on every page, whatever the route. The
    # engine is the app's runtime's at the time of the request, as every route's is (deps.py).
    engine: Engine = request.app.state.runtime.engine
    with Session(engine) as session:
        return notifications.unread_count(session, account_id=account.id)


def _page(
    request: Request, session: SessionDep, account: Account, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    try:
        webhook = notifications.get_webhook(session, account=account)
    except notifications.WebhookNotFound:
        webhook = None
    return render(
        request,
        "notifications.html",
        status_code,
        account=account,
        notes=notifications.list_notifications(session, account=account, limit=100),
        webhook=webhook,
        deliveries=notifications.recent_deliveries(session, account=account) if webhook else [],
        **extra,
    )


@router.get("/notifications")
def notifications_page(request: Request, session: SessionDep, account: SignedIn) -> Response:
    return _page(request, session, account)


@router.post("/notifications/read-all", dependencies=[PostGuard])
def read_all(session: SessionDep, account: SignedIn) -> Response:
    notifications.mark_all_read(session, account=account)
    return RedirectResponse("/notifications", status_code=303)


@router.post("/notifications/{notification_id}/read", dependencies=[PostGuard])
def read_one(session: SessionDep, account: SignedIn, notification_id: str) -> Response:
    notifications.mark_read(session, account=account, notification_id=notification_id)
    return RedirectResponse("/notifications", status_code=303)


def _webhook_not_set(
    exc: VouchError, request: Request, session: SessionDep, account: Account, url: str, **_: Any
) -> Response:
    return _page(request, session, account, exc.status_code, error=exc.message, url=url)


@router.post("/notifications/webhook", dependencies=[PostGuard])
@page_action(_webhook_not_set)
def set_webhook(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    url: Annotated[str, Form()],
) -> Response:
    _, secret = notifications.set_webhook(
        session, account=account, url=url, settings=runtime.settings.notifications
    )
    return _page(request, session, account, 201, secret=secret)


@router.post("/notifications/webhook/delete", dependencies=[PostGuard])
def delete_webhook(session: SessionDep, account: SignedIn) -> Response:
    notifications.delete_webhook(session, account=account)
    return RedirectResponse("/notifications", status_code=303)
