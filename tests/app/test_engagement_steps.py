"""The engagement steps' one table: each row is a rule of the state machine, a JSON route with
its body, and a page action; every rule a party is offered is reached through a row."""

from typing import get_args

from fastapi import APIRouter
from fastapi.routing import APIRoute

from app import engagements
from app.api.engagements import router as api
from app.web.engagement_pages import router as pages
from marketplace.engagements import RULES


def _posts(router: APIRouter) -> dict[str, APIRoute]:
    return {
        r.path: r for r in router.routes if isinstance(r, APIRoute) and "POST" in (r.methods or ())
    }


def test_every_step_is_a_rule_a_json_route_and_a_page_action() -> None:
    api_routes, page_routes = _posts(api), _posts(pages)
    for step in engagements.STEPS.values():
        assert RULES[step.name].milestone == step.milestone
        route = api_routes[step.path]
        body = route.body_field
        given = body.field_info.annotation if body else None
        assert step.body in (given, *get_args(given)), step.name
        assert (body.field_info.is_required() if body else False) is step.body_required, step.name
        path_params = {p.name for p in route.dependant.path_params}
        assert path_params == ({"engagement_id", "milestone_id"} if step.milestone
                               else {"engagement_id"})  # fmt: skip
        assert route.dependant.query_params == []
        assert step.path in page_routes
    # The client declines a proposal through the same step as the expert declines a request.
    assert set(RULES) - set(engagements.STEPS) == {"decline_proposal"}
