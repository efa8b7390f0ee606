"""Delivery adapters for the notifications outbox: where a message leaves FleetCare.

* `LogAdapter` writes each message as a structured log line (demo, development, or a log
  shipper that feeds the real gateway).
* `WebhookAdapter` POSTs each message as JSON to a URL: an SMS gateway, the app's push
  service, the call centre. The body is signed (`X-FleetCare-Signature: sha256=<hex>`,
  HMAC-SHA256 of the body with the shared secret) and carries an `Idempotency-Key`
  (the message id): delivery is at least once, so the receiver drops a repeat.

Any object with `async send(message)` that raises `DeliveryFailed` is an adapter.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import asdict

import httpx
import orjson

from service.notifications import DeliveryFailed, OutboundMessage

log = logging.getLogger("fleetcare.notifications")


class LogAdapter:
    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log

    async def send(self, message: OutboundMessage) -> None:
        self.log.info(
            message.text,
            extra={
                "kv": {
                    "id": message.id,
                    "kind": message.kind.value,
                    "channel": message.channel,
                    "customer": message.customer_id,
                    "order": message.order_id,
                }
            },
        )


def body_of(message: OutboundMessage) -> bytes:
    return orjson.dumps(asdict(message))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookAdapter:
    def __init__(
        self,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {url!r} must start with http:// or https://")
        self.url, self.secret = url, secret
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def send(self, message: OutboundMessage) -> None:
        body = body_of(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(message.id)}
        if self.secret:
            headers["X-FleetCare-Signature"] = signature(self.secret, body)
        try:
            answer = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise DeliveryFailed(f"webhook {self.url} unreachable: {e!r}") from e
        if not answer.is_success:
            raise DeliveryFailed(
                f"webhook {self.url} answered {answer.status_code}: {answer.text[:200]}"
            )

    async def aclose(self) -> None:
        await self.client.aclose()
