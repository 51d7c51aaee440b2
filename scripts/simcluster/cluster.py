"""The simulated Lain cluster of the local runner: a lainlet stand-in and one working daemon per
node on 127.0.0.11-13, with a few apps whose volumes hold real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.simcluster.lainlet import LainletStandIn
from scripts.simcluster.minicron import volume_path
from scripts.simcluster.worker import WorkingBackupd

NODES = ("127.0.0.11", "127.0.0.12", "127.0.0.13")
DRILL_ROOT = "/data/lain/drills"  # the local runner's DRILL_ROOT: every node's drill area exists


def _item(proc: str, volume: str, schedule: str, expire: str, mode: str = "full",
          pre: str = "", post: str = "") -> dict[str, str]:
    return {"procname": proc, "volume": volume, "schedule": schedule, "expire": expire,
            "mode": mode, "preRun": pre, "postRun": post}


# (proc, [(instance, node)], backup items, files per volume)
APPS: list[tuple[str, list[tuple[int, str]], list[dict[str, str]], dict[str, dict[str, str]]]] = [
    ("hello.web.web", [(1, NODES[0]), (2, NODES[1])],
     [_item("hello.web.web", "/data", "* * * * *", "1h"),  # every minute: see a backup quickly
      _item("hello.web.web", "/var/log/hello", "*/5 * * * *", "3d", "increment")],
     {"/data": {"hello.txt": "hello from instance {n}\n"},
      "/var/log/hello": {"app.log": "started instance {n}\n"}}),
    ("mysql.worker.master", [(1, NODES[2])],
     [_item("mysql.worker.master", "/var/lib/mysql", "0 0 1 * * *", "30d", pre="backup.sh",
            post="end.sh")],
     {"/var/lib/mysql": {"ibdata1": "rows of instance {n}\n"}}),
    ("badcron.web.web", [(1, NODES[0])],
     [_item("badcron.web.web", "/data", "0 0 5 0 0", "30d")],  # the seed's invalid example
     {"/data": {"x": "x\n"}}),
]


def backupspec() -> dict[str, list[dict[str, Any]]]:
    spec = {}
    for proc, pods, items, _ in APPS:
        annotation = json.dumps({"mountpoint": [f"{proc.split('.')[0]}.lain.local"], "backup": items})
        spec[proc] = [{"Annotation": annotation, "InstanceNo": n,
                       "Containers": [{"Id": f"{proc.split('.')[0]}{n}", "Ip": f"172.20.0.{10 + n}",
                                       "NodeIp": node, "NodeName": "node" + node.split(".")[-1]}]}
                      for n, node in pods]
    return spec


class SimCluster:
    """Start/stop the whole simulated cluster; files live under ``root``."""

    def __init__(self, root: Path, daemon_port: int = 9002, lainlet_port: int = 0,
                 job_seconds: float = 0.5) -> None:
        self.root = Path(root)
        self.lainlet = LainletStandIn(backupspec(), port=lainlet_port)
        self.daemons = {ip: WorkingBackupd(ip, daemon_port, self.root, job_seconds) for ip in NODES}
        for daemon in self.daemons.values():
            daemon.private_dirs = (DRILL_ROOT,)

    def seed_volumes(self) -> None:
        for proc, pods, _, files in APPS:
            app = proc.split(".")[0]
            for n, node in pods:
                for volume, contents in files.items():
                    directory = self.root / "fs" / volume_path(app, proc, n, volume).lstrip("/")
                    directory.mkdir(parents=True, exist_ok=True)
                    for name, text in contents.items():
                        if not (directory / name).exists():
                            (directory / name).write_text(text.format(n=n))
                    # the drill area, provisioned as GET /system/drills/setup says
                    drill_dir = f"{DRILL_ROOT}/{volume.rstrip('/').rsplit('/', 1)[-1]}"
                    self.daemons[node].fs(drill_dir).mkdir(parents=True, exist_ok=True)

    def start(self) -> SimCluster:
        self.seed_volumes()
        self.lainlet.start()
        for daemon in self.daemons.values():
            daemon.start()
        return self

    def stop(self) -> None:
        for daemon in self.daemons.values():
            daemon.stop()
        self.lainlet.stop()
