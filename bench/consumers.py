"""Consumers that are not FleetCare, run as separate processes by the ingest benchmark.

    python -m bench.consumers bare  PORT N PROTOCOL       # (a) count only
    python -m bench.consumers naive PORT N INFLUX_URL DB   # (d) one InfluxDB request per message

Each prints `ready` once subscribed, then one JSON line with its timing when N arrived.
"""

from __future__ import annotations

import sys
import threading
import time

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

TOPIC = "fleetcare/v1/+/+/telemetry"


def _client(protocol: str, client_id: str) -> paho.Client:
    v5 = protocol == "5"
    return paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else True,
    )


def run(kind: str, port: int, n: int, args: list[str]) -> None:
    protocol = args[0] if kind == "bare" else "3.1.1"
    client = _client(protocol, f"bench-{kind}")
    done = threading.Event()
    state = {"count": 0, "first": 0.0, "last": 0.0}
    subscribed = threading.Event()
    post = None
    if kind == "naive":
        import httpx

        url, db = args[0], args[1]
        http = httpx.Client(base_url=url, timeout=10)

        def post(payload: bytes) -> None:
            doc = orjson.loads(payload)
            fields = ",".join(
                f"{k}={v!r}" if not isinstance(v, str) else f'{k}="{v}"'
                for k, v in doc["metrics"].items()
            )
            line = f"purifier,device_id={doc['device_id']} {fields} {doc['ts']}"
            http.post("/write", params={"db": db, "precision": "ms"}, content=line.encode())

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if post is not None:
            post(bytes(msg.payload))
        state["count"] += 1
        if state["count"] == 1:
            state["first"] = time.time()
        if state["count"] >= n:
            state["last"] = time.time()
            done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(TOPIC, qos=1)
    client.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    done.wait()
    print(
        orjson.dumps(
            {"count": state["count"], "first": state["first"], "last": state["last"]}
        ).decode(),
        flush=True,
    )
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
