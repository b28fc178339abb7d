"""Authentication and authorisation of every HTTP request, from one table.

Each route maps to a rule: `public`, `read:<scope>` (infra.permissions.READ_SCOPES) or
`command:<type>` (infra.permissions.COMMAND_ROLES). A route with no rule is refused.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi_headers import header
from infra.auth import ApiKeyStore, AuthenticationError, Principal, verify_token
from infra.permissions import NotPermitted, read_role, require_command_role
from infra.settings import Settings

log = structlog.get_logger("kosh.security")

PUBLIC = "public"
ROUTE_RULES: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): PUBLIC,
    ("POST", "/registrations"): "command:submit_registration",
    ("POST", "/registrations/{case_id}/approve"): "command:approve_registration",
    ("POST", "/registrations/{case_id}/refuse"): "command:refuse_registration",
    ("POST", "/registrations/{case_id}/extend"): "command:extend_registration",
    ("POST", "/registrations/{case_id}/deregister"): "command:deregister_resident",
    ("POST", "/registrations/{case_id}/corrections"): "command:correct_registration",
    ("GET", "/cases/{case_id}/history"): "read:personal",
    ("GET", "/residents/{iin}"): "read:personal",
    ("GET", "/residents"): "read:personal",
    ("GET", "/residents/{iin}/registrations"): "read:personal",
    ("GET", "/residents/by-document/{document_type}/{document_number}"): "read:personal",
    # The legal-act registry (public acts, but read like any register).
    ("GET", "/legal-acts"): "read:registers",
    ("GET", "/legal-acts/{act_id}"): "read:registers",
    ("POST", "/legal-acts"): "command:register_legal_act",
    ("POST", "/legal-acts/{act_id}/publication"): "command:enter_legal_act_publication",
    ("POST", "/legal-acts/{act_id}/state-registration"):
        "command:enter_legal_act_state_registration",
    ("POST", "/legal-acts/{act_id}/repeal"): "command:repeal_legal_act",
    ("GET", "/readyz"): PUBLIC,  # probes carry no credentials and learn only up/down
    ("GET", "/asyncapi.json"): PUBLIC,  # the contract, like /docs and /openapi.json
    ("GET", "/asyncapi"): PUBLIC,
    ("GET", "/metrics"): "read:ops",
    ("GET", "/ops/projections"): "read:ops",
    ("GET", "/ops/components"): "read:ops",
    ("GET", "/ops/dead-letters"): "read:ops",
    ("GET", "/ops/parked"): "read:ops",
    # Auditors' history: registers as of a date include residents, so personal scope.
    ("GET", "/as-of"): "read:registers",
    ("GET", "/as-of/{register}"): "read:personal",
    ("GET", "/cases/{case_id}/timeline"): "read:personal",
    # §4, §7: aggregates by district, month and age band — no personal data.
    ("POST", "/monitoring/natural-growth"): "command:record_natural_growth",
    ("GET", "/monitoring/flows"): "read:registers",
    ("GET", "/monitoring/age-bands"): "read:registers",
    ("GET", "/monitoring/signals"): "read:registers",
    ("POST", "/data-subjects/erasures"): "command:erase_subject",
    # §3, §5, §6 (their registers hold no names or documents)
    ("POST", "/quotas"): "command:establish_quota",
    ("GET", "/quotas"): "read:registers",
    ("GET", "/quotas/{quota_id}"): "read:registers",
    ("POST", "/proposals"): "command:draft_proposal",
    ("POST", "/proposals/{proposal_id}/submit"): "command:submit_proposal",
    ("POST", "/proposals/{proposal_id}/accept"): "command:accept_proposal",
    ("POST", "/proposals/{proposal_id}/decline"): "command:decline_proposal",
    ("GET", "/proposals"): "read:registers",
    ("GET", "/proposals/{proposal_id}"): "read:registers",
    ("POST", "/relocations"): "command:apply_for_relocation",
    ("POST", "/relocations/{case_id}/approve"): "command:approve_relocation",
    ("POST", "/relocations/{case_id}/refuse"): "command:refuse_relocation",
    ("POST", "/relocations/{case_id}/withdraw"): "command:withdraw_relocation",
    ("POST", "/relocations/{case_id}/arrival"): "command:record_arrival",
    ("GET", "/relocations"): "read:registers",
    ("GET", "/relocations/{case_id}"): "read:registers",
    ("GET", "/territories"): "read:registers",
    ("GET", "/territories/{territory}"): "read:registers",
    # Audit trail: the key that verifies tree heads is public, as a verifier needs it.
    ("GET", "/audit/public-key"): PUBLIC,
    ("GET", "/audit/tree-head"): "read:audit",
    ("POST", "/audit/tree-heads"): "read:audit",  # signs the store as it is; changes nothing
    ("GET", "/audit/inclusion/{seq}"): "read:audit",
    ("GET", "/audit/consistency"): "read:audit",
    ("GET", "/audit/events"): "read:audit",
}


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def authenticate(request: Request, settings: Settings, api_keys: ApiKeyStore) -> Principal:
    header = request.headers.get("authorization", "")
    api_key = request.headers.get("x-api-key")
    try:
        if header.lower().startswith("bearer "):
            return verify_token(settings, header[7:].strip())
        if api_key:
            return api_keys.verify(api_key.strip())
    except AuthenticationError as exc:
        raise Denied(401, str(exc)) from None
    raise Denied(401, "authentication required: send 'Authorization: Bearer <token>' or "
                      "'X-API-Key: <key>'")


def authorise(principal: Principal, rule: str, settings: Settings) -> str:
    """The role the principal acts in for this rule, or a 403."""
    kind, _, name = rule.partition(":")
    if kind == "command":
        try:
            return require_command_role(principal, name, settings)
        except NotPermitted as exc:
            raise Denied(403, str(exc)) from None
    role = read_role(principal, name)
    if role is None:
        raise Denied(403, f"role(s) {', '.join(principal.roles)} may not read {name} data")
    return role


def rule_for(method: str, path_template: str) -> str | None:
    return ROUTE_RULES.get((method, path_template))


async def guard(request: Request) -> None:
    """FastAPI dependency on every route: sets request.state.principal and .role."""
    route = request.scope.get("route")
    template = getattr(route, "path", None) or request.url.path  # url: built only if needed
    rule = rule_for(request.method, template)
    kosh = request.app.state.kosh
    if rule == PUBLIC:
        return
    try:
        if rule is None:
            raise Denied(403, f"no access rule for {request.method} {template}; refused")
        principal = authenticate(request, kosh.settings, kosh.api_keys)
        role = authorise(principal, rule, kosh.settings)
    except Denied as denied:
        log.warning("auth.denied", status=denied.status, reason=denied.message,
                    method=request.method, path=template,
                    subject=getattr(locals().get("principal"), "subject", None))
        raise
    request.state.principal = principal
    request.state.role = role


def denied_response(exc: Denied) -> JSONResponse:
    code = "unauthenticated" if exc.status == 401 else "forbidden"
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": {"code": code, "message": exc.message}},
                        status_code=exc.status, headers=headers)


class BodySizeLimit:
    """Refuses request bodies over the configured size with 413, before parsing them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"error": {"code": "too_large",
                       "message": f"request body over {self.max_bytes} bytes"}},
            status_code=413,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
