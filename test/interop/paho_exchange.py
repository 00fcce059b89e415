"""Paho Python (Debian python3-paho-mqtt) exchanging one message over mqtts
with client certificates. Run with /usr/bin/python3 by test/interop/clients.test.ts.

usage: paho_exchange.py HOST PORT DATADIR 311|5 TOPIC PAYLOAD
Prints "received <topic> <payload>" and exits 0, or exits 1 after 15 s.
"""
import os
import sys
import threading

import paho.mqtt.client as mqtt

host, port, data, version, topic, payload = sys.argv[1:7]
port = int(port)
proto = mqtt.MQTTv5 if version == "5" else mqtt.MQTTv311
clients = os.path.join(data, "clients")
got = threading.Event()
subscribed = threading.Event()


def make(client_id):
    c = mqtt.Client(client_id=client_id, protocol=proto)
    c.tls_set(
        ca_certs=os.path.join(clients, "ca.crt"),
        certfile=os.path.join(clients, client_id + ".crt"),
        keyfile=os.path.join(clients, client_id + ".key"),
    )
    return c


def on_message(_c, _u, msg):
    print("received", msg.topic, msg.payload.decode(), flush=True)
    got.set()


def on_subscribe(_c, _u, _mid, granted, *_rest):
    codes = [getattr(g, "value", g) for g in granted]
    print("granted", codes, flush=True)
    subscribed.set()


app = make("demo-app")
app.on_message = on_message
app.on_subscribe = on_subscribe
app.on_connect = lambda c, *_a: c.subscribe(topic.rsplit("/", 1)[0] + "/+", qos=1)
app.connect(host, port)
app.loop_start()
if not subscribed.wait(15):
    sys.exit(1)

device = make("demo-device")
device.connect(host, port)
device.loop_start()
info = device.publish(topic, payload, qos=1)
info.wait_for_publish(15)
ok = got.wait(15)
device.disconnect()
app.disconnect()
device.loop_stop()
app.loop_stop()
sys.exit(0 if ok else 1)
