"""The expert's analytics pages: an asset's content gaps (``app.gaps``) with charts, and the
charts of their earnings page (``app.dashboard``), loaded into it after it shows."""

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from app import charts, gaps
from app.dashboard import Dashboard, expert_dashboard
from app.deps import RuntimeDep, SessionDep, SignedIn
from app.models import Role
from app.web.actions import page_action
from app.web.pages import refused, render, show_error

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    app.state.templates.env.globals["gap_reasons"] = gaps.REASON_LABELS
    app.include_router(router)


def _weeks(text: str) -> int:
    return int(text) if text in {str(w) for w in gaps.WINDOWS} else gaps.WINDOWS[0]


def _gap_charts(report: gaps.GapReport) -> dict[str, Any]:
    periods = [w.strftime("%d %b") for w in report.weeks]
    weekly = charts.stacked_bars(
        name="gaps-by-week",
        label=f"Gap questions per week by reason, {len(report.weeks)} weeks from "
        f"{report.weeks[0]:%d %b %Y}",
        periods=periods,
        series={gaps.REASON_LABELS[r].capitalize(): report.by_week[r] for r in gaps.REASONS},
        ylabel="questions",
    )
    sparks = [
        charts.sparkline(c.weeks, label=f"Per week: {', '.join(map(str, c.weeks))}")
        for c in report.clusters
    ]
    return {"weekly_chart": weekly, "sparklines": sparks}


@router.get("/assets/{slug}/gaps")
@page_action(show_error)
def gaps_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    account: SignedIn,
    slug: str,
    weeks: str = "",
) -> Response:
    """What the asset's clients asked that it could not answer well, grouped by meaning."""
    span = _weeks(weeks)
    report = gaps.for_owner(session, runtime, account=account, slug=slug, weeks=span)
    return render(
        request,
        "gaps.html",
        account=account,
        slug=slug,
        report=report,
        weeks=span,
        windows=gaps.WINDOWS,
        reasons=gaps.REASONS,
        **_gap_charts(report),
    )


def _dashboard_charts(board: Dashboard) -> dict[str, Any]:
    periods = [d.strftime("%d %b") for d in board.days]
    span = f"the last {len(board.days)} days"
    earnings = {c.upper(): [a / 100 for a in v] for c, v in sorted(board.earnings.items())}
    return {
        "earnings_chart": charts.lines(
            name="chart-earnings",
            label=f"Earnings released to you per day, {span}",
            periods=periods,
            series=earnings,
            ylabel="earned (currency units)",
        ),
        "questions_chart": charts.stacked_bars(
            name="chart-questions",
            label=f"Questions asked of your assets per day, {span}",
            periods=periods,
            series={"questions": board.questions},
            ylabel="questions",
        ),
        "acceptance_chart": charts.lines(
            name="chart-acceptance",
            label=f"Acceptance rate per day: share of settled answers that stood, {span}",
            periods=periods,
            series={"stood": board.acceptance},
            ylabel="answers that stood",
            percent=True,
        ),
    }


@router.get("/earnings/charts")
def dashboard_charts(request: Request, session: SessionDep, account: SignedIn) -> Response:
    """The earnings page's charts: a fragment for htmx, a page of its own otherwise."""
    if account.role == Role.client:
        return refused(request, account, "earnings are for expert accounts")
    board = expert_dashboard(session, account=account)
    name = "_dashboard_charts.html" if "hx-request" in request.headers else "dashboard.html"
    return render(request, name, account=account, board=board, **_dashboard_charts(board))
