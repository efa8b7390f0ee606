"""The broker over TLS (mqtts://) with a test CA: ingest stores what a device sends, the
command sender reaches the device, and a client that does not trust the CA is refused
before it says a word."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from db.tables import device_commands
from fleetcare.brokers import MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.cli import app
from telemetry.connection import MqttSettings
from tests.ingest.helpers import telemetry
from tests.services import free_port, missing

runner = CliRunner()


def make_ca(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1: (ca, cert, key)."""

    def ssl_(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ssl_("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=FleetCare test CA",
         "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    ssl_("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))  # fmt: skip
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl_("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
         "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
         "-extfile", str(d / "ext"), "-out", str(d / "server.pem"))  # fmt: skip
    return d / "ca.pem", d / "server.pem", d / "server.key"


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoProcess, int, Path]]:
    if not mosquitto_available():
        missing("mosquitto")
    if shutil.which("openssl") is None:
        missing("openssl")
    ca, cert, key = make_ca(tmp_path)
    port = free_port()
    broker = start_mosquitto(
        tmp_path / "broker",
        extra=f"listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
    )
    try:
        yield broker, port, ca
    finally:
        broker.stop()


def tls_client(port: int, ca: Path) -> paho.Client:
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    c.tls_set(ca_certs=str(ca))
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_a_client_that_does_not_trust_the_ca_is_refused(
    tls_broker: tuple[MosquittoProcess, int, Path],
) -> None:
    _, port, ca = tls_broker
    untrusted = MqttSettings(url=f"mqtts://127.0.0.1:{port}").tls_context()  # system CAs
    trusted = MqttSettings(url=f"mqtts://127.0.0.1:{port}", tls_ca=str(ca)).tls_context()
    assert untrusted is not None and trusted is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.wrap_socket(
            socket.create_connection(("127.0.0.1", port), 5), server_hostname="127.0.0.1"
        )
    with trusted.wrap_socket(
        socket.create_connection(("127.0.0.1", port), 5), server_hostname="127.0.0.1"
    ) as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")
    assert MqttSettings(url="mqtt://127.0.0.1:1883").tls_context() is None


def test_ingest_and_the_command_sender_work_over_tls(
    tls_broker: tuple[MosquittoProcess, int, Path], tmp_path: Path
) -> None:
    _, port, ca = tls_broker
    data = str(tmp_path / "data")
    env = {
        **os.environ,
        "FLEETCARE_MQTT__URL": f"mqtts://127.0.0.1:{port}",
        "FLEETCARE_MQTT__TLS_CA": str(ca),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "fleetcare", "--data-dir", data, "ingest", "--metrics-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout or ()), daemon=True)
    reader.start()
    device = tls_client(port, ca)
    got: list[bytes] = []
    device.on_message = lambda c, u, m: got.append(bytes(m.payload))
    sender = None
    try:
        deadline = time.monotonic() + 30
        while not any("connected to broker" in x for x in lines):
            assert time.monotonic() < deadline and worker.poll() is None, "".join(lines)
            time.sleep(0.1)
        time.sleep(0.5)
        for seq in range(1, 4):
            device.publish(*telemetry("ap-tls", seq), qos=1).wait_for_publish(5)
        count = ""
        while time.monotonic() < deadline and count != "3":
            count = runner.invoke(app, ["--data-dir", data, "telemetry", "count"]).stdout.strip()
            time.sleep(0.3)
        assert count == "3"
        # a command for the device, sent over TLS by `fleetcare send-commands`
        device.subscribe("fleetcare/v1/purifier/ap-tls/cmd", qos=1)
        engine = sa.create_engine(f"sqlite:///{data}/fleetcare.sqlite3")
        with engine.begin() as conn:
            conn.execute(
                device_commands.insert().values(
                    device_id="ap-tls",
                    device_type="purifier",
                    cmd="filter_replaced",
                    args={"stage": "main"},
                    created_at=datetime.now(UTC),
                )
            )
        engine.dispose()
        sender = subprocess.Popen(
            [sys.executable, "-m", "fleetcare", "--data-dir", data, "send-commands"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while time.monotonic() < deadline + 30 and not got:
            time.sleep(0.2)
        assert got and b"filter_replaced" in got[0]
    finally:
        device.disconnect()
        device.loop_stop()
        if sender is not None:
            sender.terminate()
            sender.wait(30)
        worker.terminate()
        worker.wait(30)
        reader.join(5)
    assert worker.returncode == 0, "".join(lines)
