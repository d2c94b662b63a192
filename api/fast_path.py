"""`POST /v1/events` straight to its route function, past the framework's middleware, routing and
dependency solving.

Single-event appends are the busiest request a CRM sends, and on two cores the
service is CPU-bound in per-request framework work (decisions 29 and 46). This
calls the very same functions FastAPI would (`deps.principal`,
`events.append_one`) and maps errors with the same table, so answers are
identical; every other request goes through FastAPI untouched.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.deps import principal
from api.routes.events import append_one


class SingleAppendFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/events":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        services = request.app.state.services
        try:
            response = await append_one(request, services, await principal(request, services))
        except Exception as exc:
            mapped = errors.response_for(exc)
            if mapped is None:
                # What the framework's error middleware answers; the server logs the traceback.
                await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
                raise
            response = mapped
        await response(scope, receive, send)
