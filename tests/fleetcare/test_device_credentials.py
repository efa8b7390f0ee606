"""Per-device MQTT credentials against the real Mosquitto: a device publishes only under
its own topics and reads only its own commands; a revoked device cannot connect; a
rotated password works and the old one does not."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from fleet.credentials import check_mosquitto_hash, mosquitto_hash
from fleetcare.brokers import MosquittoProcess, mosquitto_available, start_mosquitto
from fleetcare.cli import app
from tests.provisioned import ENGINE, add_purifiers, broker_files, provision
from tests.services import missing

runner = CliRunner()


def test_our_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        missing("mosquitto_passwd (Debian's mosquitto package)")
    assert passwd is not None
    f = tmp_path / "pw"
    subprocess.run([passwd, "-c", "-b", str(f), "dev", "s3cret-pass"], check=True)
    theirs = f.read_text().strip().split(":", 1)[1]
    assert check_mosquitto_hash("s3cret-pass", theirs)
    assert not check_mosquitto_hash("wrong", theirs)
    assert check_mosquitto_hash("s3cret-pass", mosquitto_hash("s3cret-pass"))


class Device:
    """A paho client that records what it receives and how its connection went."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.code: int | None = None
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.connected.wait(10)

    def _on_connect(self, c: object, u: object, flags: object, rc: object, p: object) -> None:
        self.code = int(getattr(rc, "value", rc))  # type: ignore[call-overload]
        self.connected.set()

    @property
    def ok(self) -> bool:
        return self.code == 0

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.3)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[MosquittoProcess, dict[str, str], dict[str, str]]]:
    if not mosquitto_available():
        missing("mosquitto")
    pid = tmp_path / "mosquitto.pid"
    files = broker_files(tmp_path, pid_file=pid)
    pw, acl, env, data = files.passwords, files.acl, dict(files.env), files.data
    add_purifiers(files, "ap-1", "ap-2")
    passwords = provision(files, "ap-1", "ap-2")
    assert set(passwords) == {"ap-1", "ap-2"}
    assert all(p not in pw.read_text() for p in passwords.values())  # only hashes on disk
    broker = start_mosquitto(tmp_path / "broker", auth=(pw, acl))
    assert broker.proc is not None
    pid.write_text(str(broker.proc.pid))
    env["_DATA"] = str(data)
    try:
        yield broker, passwords, env
    finally:
        broker.stop()


def test_a_device_publishes_only_its_own_topics_and_reads_only_its_own_commands(
    secured: tuple[MosquittoProcess, dict[str, str], dict[str, str]],
) -> None:
    broker, passwords, _ = secured
    engine = Device(broker.port, *ENGINE)
    a = Device(broker.port, "ap-1", passwords["ap-1"])
    b = Device(broker.port, "ap-2", passwords["ap-2"])
    try:
        assert engine.ok and a.ok and b.ok
        engine.subscribe("fleetcare/v1/+/+/telemetry")  # what ingest reads
        engine.subscribe("fleetcare/v1/+/+/event")
        a.subscribe("fleetcare/v1/purifier/ap-2/cmd")  # B's commands: refused
        b.subscribe("fleetcare/v1/purifier/ap-2/cmd")
        a.publish("fleetcare/v1/purifier/ap-1/telemetry", b"mine")
        a.publish("fleetcare/v1/purifier/ap-2/telemetry", b"posing as ap-2")
        a.publish("fleetcare/v1/purifier/ap-2/event", b"a fake fault for ap-2")
        engine.publish("fleetcare/v1/purifier/ap-2/cmd", b"reset")
        time.sleep(1.0)
        assert engine.got == [("fleetcare/v1/purifier/ap-1/telemetry", b"mine")]
        assert b.got == [("fleetcare/v1/purifier/ap-2/cmd", b"reset")]
        assert a.got == []
    finally:
        for c in (engine, a, b):
            c.close()


def test_only_the_engine_asks_the_whole_fleet_to_resend(
    secured: tuple[MosquittoProcess, dict[str, str], dict[str, str]],
) -> None:
    """`fleetcare devices resend` reaches every device on the fleet-wide cmd topic; a
    device cannot ask its neighbours for anything."""
    broker, passwords, env = secured
    env = {**env, "FLEETCARE_MQTT__URL": broker.url}
    env.pop("_DATA")
    broadcast = "fleetcare/v1/fleet/all/cmd"
    a = Device(broker.port, "ap-1", passwords["ap-1"])
    b = Device(broker.port, "ap-2", passwords["ap-2"])
    try:
        a.subscribe(broadcast)
        b.subscribe(broadcast)
        a.publish(broadcast, b'{"cmd":"resend","args":{"since_ms":0}}')  # dropped by the ACL
        asked_at = time.time()
        out = runner.invoke(app, ["devices", "resend", "--since", "5m"], env=env)
        assert out.exit_code == 0, out.output
        assert "asked the fleet to resend" in out.output
        time.sleep(0.5)
        for device in (a, b):
            assert [t for t, _ in device.got] == [broadcast]
            body = json.loads(device.got[0][1])
            assert body["cmd"] == "resend"
            assert abs(body["args"]["since_ms"] / 1000 - (asked_at - 300)) < 5
        wrong = runner.invoke(app, ["devices", "resend", "--since", "yesterday"], env=env)
        assert wrong.exit_code == 2 and "give a duration" in wrong.output
        future = runner.invoke(app, ["devices", "resend", "--since", "2999-01-01T00:00"], env=env)
        assert future.exit_code == 2 and "future" in future.output
        refused = runner.invoke(
            app, ["devices", "resend"], env={**env, "FLEETCARE_MQTT__PASSWORD": "wrong"}
        )
        assert refused.exit_code == 1 and "could not reach the broker" in refused.output
    finally:
        a.close()
        b.close()


def test_anonymous_and_wrong_passwords_are_refused(
    secured: tuple[MosquittoProcess, dict[str, str], dict[str, str]],
) -> None:
    broker, passwords, _ = secured
    for user, password in ((None, None), ("ap-1", "not-its-password"), ("ap-1", passwords["ap-2"])):
        c = Device(broker.port, user, password)
        try:
            assert c.code is not None and c.code != 0, (user, password)
        finally:
            c.close()


def test_revoked_cannot_connect_and_a_rotated_password_replaces_the_old(
    secured: tuple[MosquittoProcess, dict[str, str], dict[str, str]],
) -> None:
    broker, passwords, env = secured
    d = ["--data-dir", env.pop("_DATA")]
    out = runner.invoke(app, [*d, "devices", "revoke", "ap-1"], env=env)
    assert out.exit_code == 0 and "Mosquitto reloaded" in " ".join(out.output.split()), out.output
    out = runner.invoke(app, [*d, "devices", "rotate", "ap-2"], env=env)
    assert out.exit_code == 0 and "Mosquitto reloaded" in " ".join(out.output.split()), out.output
    new = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("ap-2 "))
    time.sleep(0.5)  # the reload is a signal: give Mosquitto a moment to read the files

    def code(user: str, password: str) -> int | None:
        c = Device(broker.port, user, password)
        c.close()
        return c.code

    assert code("ap-1", passwords["ap-1"]) != 0  # revoked
    assert code("ap-2", passwords["ap-2"]) != 0  # the old password
    assert code("ap-2", new) == 0
    again = runner.invoke(app, [*d, "devices", "rotate", "ap-1"], env=env)
    assert again.exit_code == 1 and "no live credentials" in again.output
    assert os.stat(env["FLEETCARE_BROKER__PASSWORD_FILE"]).st_mode & 0o077 == 0  # owner only


def test_ingest_logs_in_as_the_engine_and_stores_what_a_device_sends(
    secured: tuple[MosquittoProcess, dict[str, str], dict[str, str]],
) -> None:
    """The engine's ACL covers ingest's shared subscription."""
    from tests.ingest.helpers import telemetry

    broker, passwords, env = secured
    data = env.pop("_DATA")
    worker = subprocess.Popen(
        [sys.executable, "-m", "fleetcare", "--data-dir", data, "ingest", "--metrics-port", "0"],
        env={**os.environ, **env, "FLEETCARE_MQTT__URL": broker.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert worker.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout or ()), daemon=True)
    reader.start()
    a = Device(broker.port, "ap-1", passwords["ap-1"])
    try:
        deadline = time.monotonic() + 30
        while not any("connected to broker" in x for x in lines):
            assert time.monotonic() < deadline and worker.poll() is None, "".join(lines)
            time.sleep(0.1)
        time.sleep(0.5)  # its subscriptions are sent with the connection; let them land
        for seq in range(1, 6):
            a.publish(*telemetry("ap-1", seq))
        deadline = time.monotonic() + 30
        count = ""
        while time.monotonic() < deadline and count != "5":
            count = runner.invoke(app, ["--data-dir", data, "telemetry", "count"]).stdout.strip()
            time.sleep(0.3)
        assert count == "5"
    finally:
        a.close()
        worker.terminate()
        worker.wait(30)
        reader.join(5)
    assert worker.returncode == 0, "".join(lines)


def test_imported_passwords_log_in_and_sync_broker_writes_the_files_again(tmp_path: Path) -> None:
    """Factory-set (here: the simulator's derived) passwords are imported as hashes; the
    broker's files can be written again from the database alone."""
    from device_sim.credentials import device_password

    if not mosquitto_available():
        missing("mosquitto")
    files = broker_files(tmp_path)
    d, pw, acl, env = files.data_args, files.passwords, files.acl, files.env
    add_purifiers(files, "ap-1", "ap-2")
    file = tmp_path / "factory.txt"
    file.write_text(f"# from the factory\nap-1:{device_password('line-7', 'ap-1')}\n")
    out = runner.invoke(app, [*d, "devices", "import", str(file)], env=env)
    assert out.exit_code == 0 and "imported 1" in out.output, out.output
    assert device_password("line-7", "ap-1") not in pw.read_text()
    again = runner.invoke(app, [*d, "devices", "import", "--skip-live", str(file)], env=env)
    assert again.exit_code == 0 and "imported 0" in again.output, again.output
    file.write_text("ap-2:short\n")
    out = runner.invoke(app, [*d, "devices", "import", str(file)], env=env)
    assert out.exit_code == 1 and "factory.txt:1" in out.output and "16 characters" in out.output
    pw.unlink()
    acl.unlink()
    out = runner.invoke(app, [*d, "devices", "sync-broker"], env=env)
    assert out.exit_code == 0 and pw.exists() and acl.exists(), out.output
    broker = start_mosquitto(tmp_path / "broker", auth=(pw, acl))
    try:
        device = Device(broker.port, "ap-1", device_password("line-7", "ap-1"))
        engine = Device(broker.port, *ENGINE)
        try:
            assert device.ok and engine.ok
        finally:
            device.close()
            engine.close()
    finally:
        broker.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the broker files' owner changes only as root")
def test_rewriting_the_broker_files_as_root_keeps_their_owner(tmp_path: Path) -> None:
    """Mosquitto reads its files again at a reload after dropping to its own user: files
    rewritten as root and left root's 0600 would lock every client out."""
    nobody = (65534, 65534)
    files = broker_files(tmp_path)
    pw, acl = files.passwords, files.acl
    add_purifiers(files, "ap-1", "ap-2")
    provision(files, "ap-1")
    for f in (pw, acl):
        os.chown(f, *nobody)  # the broker's user, as a package install leaves them
    assert set(provision(files, "ap-2")) == {"ap-2"}
    assert "ap-2" in pw.read_text()
    for f in (pw, acl):
        st = f.stat()
        assert (st.st_uid, st.st_gid) == nobody, f
    assert pw.stat().st_mode & 0o777 == 0o600
