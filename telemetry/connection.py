"""How to reach the MQTT broker; shared by the engine and by devices (the simulator)."""

from __future__ import annotations

import hashlib
import hmac
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


class MqttSettings(BaseModel):
    """Broker connection. `url` is mqtt://host:port or mqtts://host:port (TLS)."""

    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port")
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: str | None = Field(None, description="CA bundle to verify the broker (mqtts://).")
    tls_cert: str | None = None
    tls_key: str | None = None
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1",
        description="MQTT version. 3.1.1 is faster in paho (docs/benchmarks.md); "
        "5 lets the client bound its in-flight window itself (Receive Maximum).",
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    topic_prefix: str = "fleetcare"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError("use mqtt://host:port or mqtts://host:port")
        return value

    def tls_context(self) -> ssl.SSLContext | None:
        """For mqtts://: verify the broker against `tls_ca` (else the system's CAs) and
        its host name; present `tls_cert`/`tls_key` when the broker asks for a client
        certificate. None for plain mqtt://."""
        if not self.address().tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx

    def private_name(self, name: str) -> str:
        """`name` made unguessable for the engine's own client ids and shared-subscription
        groups: a tag only the holder of the engine's password can compute. A broker's
        file ACL (Mosquitto's) checks read access only when it delivers, so a device that
        guessed the group could join it and take its turn of the fleet's messages (which
        the broker then drops), and one that guessed a client id could take over the
        engine's session. Without a password (an open broker) the name is kept."""
        if self.password is None:
            return name
        key = self.password.get_secret_value().encode()
        tag = hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{name}-{tag}"

    def address(self) -> BrokerAddress:
        parts = urlsplit(self.url)
        tls = parts.scheme in ("mqtts", "ssl")
        return BrokerAddress(
            parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls
        )
