"""Paho Python (Debian python3-paho-mqtt, 1.6 or 2.x) for the interop suite:
a persistent MQTT 5.0 session across a broker restart, and a will message.
Run with /usr/bin/python3 by test/interop/clients.test.ts. Synthetic data only.

usage:
  paho_session.py HOST PORT DATADIR subscribe TOPIC
      connect as demo-app, Clean Start 0, Session Expiry 600 s; subscribe to
      TOPIC at QoS 1; disconnect normally. Prints "subscribed".
  paho_session.py HOST PORT DATADIR resume COUNT
      connect as demo-app, Clean Start 0, without subscribing; print
      "session present <0|1>" and "received <topic> <payload>" for each queued
      message; exit 0 once COUNT arrived, 1 after 15 s.
  paho_session.py HOST PORT DATADIR will TOPIC PAYLOAD
      connect as demo-device with a QoS 1 will on TOPIC; once connected print
      "connected" and kill this process with SIGKILL (no DISCONNECT is sent).
"""
import os
import signal
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

host, port, data, mode = sys.argv[1:5]
port = int(port)
clients = os.path.join(data, "clients")
connected = threading.Event()
done = threading.Event()


def make(client_id):
    # paho 2.x wants the callback API version first; 1.6 has no such argument.
    if hasattr(mqtt, "CallbackAPIVersion"):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id, protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set(
        ca_certs=os.path.join(clients, "ca.crt"),
        certfile=os.path.join(clients, client_id + ".crt"),
        keyfile=os.path.join(clients, client_id + ".key"),
    )
    return c


def persistent_connect(c):
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    c.connect(host, port, clean_start=False, properties=props)


def on_connect(_c, _u, flags, rc, *_rest):
    code = getattr(rc, "value", rc)
    present = flags.get("session present", 0) if isinstance(flags, dict) else flags.session_present
    print("connect", code, "session present", int(bool(present)), flush=True)
    if code == 0:
        connected.set()


if mode == "subscribe":
    topic = sys.argv[5]
    app = make("demo-app")
    app.on_connect = on_connect
    app.on_subscribe = lambda *_a: done.set()
    persistent_connect(app)
    app.loop_start()
    if not connected.wait(15):
        sys.exit(1)
    app.subscribe(topic, qos=1)
    ok = done.wait(15)
    print("subscribed" if ok else "no SUBACK", flush=True)
    app.disconnect()
    app.loop_stop()
    sys.exit(0 if ok else 1)

if mode == "resume":
    want = int(sys.argv[5])
    got = []

    def on_message(_c, _u, msg):
        print("received", msg.topic, msg.payload.decode(), flush=True)
        got.append(msg)
        if len(got) >= want:
            done.set()

    app = make("demo-app")
    app.on_connect = on_connect
    app.on_message = on_message
    persistent_connect(app)
    app.loop_start()
    ok = done.wait(15)
    app.disconnect()
    app.loop_stop()
    sys.exit(0 if ok else 1)

if mode == "will":
    topic, payload = sys.argv[5:7]
    device = make("demo-device")
    device.will_set(topic, payload, qos=1)
    device.on_connect = on_connect
    device.connect(host, port)
    device.loop_start()
    if not connected.wait(15):
        sys.exit(1)
    print("connected", flush=True)
    # An abnormal end: the socket closes without DISCONNECT, so the broker sends the will.
    os.kill(os.getpid(), signal.SIGKILL)

sys.exit(2)
