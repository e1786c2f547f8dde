"""A local stand-in for Vertex AI and the Google OAuth2 token endpoint it trusts.

- `POST /token`: the service-account flow. The assertion must be a JWT signed (RS256)
  with the service account's private key, for this `token_uri`; the answer is a fresh
  access token that lives `token_seconds`.
- `POST /v1/projects/{p}/locations/{r}/publishers/anthropic/models/{m}:rawPredict`
  (`:streamRawPredict`, `count-tokens:rawPredict`): the Bearer token must be one this
  stand-in issued and not yet expired; the body must be Vertex's (no `model`,
  `anthropic_version: vertex-2023-10-16`). Answers Anthropic JSON or SSE, or a Google
  envelope error (`fail`).

`service_account_file(path)` writes the JSON key file whose `token_uri` points here.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict

from tests.support.anthropic_events import events_for, message_of

_PATH = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(\w+)$"
)
CLIENT_EMAIL = "gateway@standin-project.iam.gserviceaccount.com"


@dataclass
class Seen:
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class VertexStandIn:
    url: str = ""
    token_seconds: int = 3600
    reply: str = "Hello from the Vertex stand-in."
    # (status, Google status) of a Google-envelope error, or (status, None) for Anthropic's.
    fail: tuple[int, str | None] | None = None
    fail_message: str = "Quota exceeded for aiplatform."
    issued: dict[str, float] = field(default_factory=dict)  # token → expiry (time.time)
    seen: list[Seen] = field(default_factory=list)
    refused: int = 0
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_post("/{tail:v1/.*}", self.predict)
        return app

    def service_account_file(self, path: Path) -> Path:
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        doc = {
            "type": "service_account", "project_id": "standin-project",
            "private_key_id": "k1", "private_key": pem, "client_email": CLIENT_EMAIL,
            "client_id": "1", "token_uri": f"{self.url}/token",
        }  # fmt: skip
        path.write_text(json.dumps(doc))
        return path

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self.key.public_key(),
                algorithms=["RS256"],
                # google-auth addresses the assertion to Google's token endpoint whatever
                # the key file's token_uri (as Google itself expects).
                audience="https://oauth2.googleapis.com/token",
            )
        except jwt.PyJWTError:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if claims.get("iss") != CLIENT_EMAIL:
            return web.json_response({"error": "invalid_grant"}, status=400)
        token = f"ya29.standin-{len(self.issued) + 1}"
        self.issued[token] = time.time() + self.token_seconds
        return web.json_response(
            {"access_token": token, "expires_in": self.token_seconds, "token_type": "Bearer"}
        )

    def valid(self, authorization: str) -> bool:
        token = authorization.removeprefix("Bearer ")
        return authorization.startswith("Bearer ") and self.issued.get(token, 0) > time.time()

    async def predict(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.path, CIMultiDict(request.headers), body))
        if not self.valid(request.headers.get("Authorization", "")):
            self.refused += 1
            return google_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
        m = _PATH.match(request.path)
        doc: dict[str, Any] = json.loads(body)
        if m is None or doc.get("anthropic_version") != "vertex-2023-10-16":
            return google_error(400, "INVALID_ARGUMENT", "Bad request.")
        model, specifier = m.group(3), m.group(4)
        if model == "count-tokens":
            if "model" not in doc:
                return google_error(400, "INVALID_ARGUMENT", "model is required.")
            return web.json_response({"input_tokens": max(1, len(body) // 4)})
        if "model" in doc:
            return google_error(400, "INVALID_ARGUMENT", "model is not allowed in the body.")
        if self.fail is not None:
            status, google_status = self.fail
            if google_status is None:
                err = {"type": "error", "error": {"type": "overloaded_error", "message": "Busy."}}
                return web.json_response(err, status=status)
            return google_error(status, google_status, self.fail_message)
        events = events_for(self.reply, model, len(body) // 4)
        if specifier == "rawPredict":
            return web.json_response(message_of(events))
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in events:
            await resp.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await resp.write_eof()
        return resp


def google_error(status: int, google_status: str, message: str) -> web.Response:
    doc = [{"error": {"code": status, "message": message, "status": google_status}}]
    return web.json_response(doc, status=status)
