"""The Chalice app: importing it is cheap and quiet, and the health route answers."""

import subprocess
import sys

from chalice.test import Client

from app import app
from chalicelib import __version__
from tests.reference import ROOT

GUARD = """
import socket, botocore.session, botocore.client
def refuse(*a, **k):
    raise SystemExit("network or boto3 client used at import time")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
botocore.session.Session.create_client = refuse
import app
assert app.app.app_name == "backupctl"
print("ok")
"""


def test_import_does_no_network_and_builds_no_client():
    out = subprocess.run([sys.executable, "-c", GUARD], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_health():
    with Client(app) as client:
        resp = client.http.get("/api/v2/system/health")
    assert resp.status_code == 200
    assert resp.json_body == {"status": "ok", "version": __version__}
