"""lainlet stand-in: serves ``GET /v2/backupspec?watch=0[&appname=]`` from a settable spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.simcluster.server import Recorded, Reply, StandIn


class LainletStandIn(StandIn):
    """``spec`` is the backupspec object; set ``raw_body`` to serve exactly those bytes instead."""

    def __init__(self, spec: dict[str, Any] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(host, port)
        self.spec: dict[str, Any] = spec or {}
        self.raw_body: bytes | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> LainletStandIn:
        return cls(json.loads(Path(path).read_text()), **kwargs)

    def handle(self, req: Recorded) -> Reply:
        if req.method != "GET" or req.path != "/v2/backupspec":
            return Reply(404, "not found")
        if self.raw_body is not None:
            return Reply(200, self.raw_body)
        app = req.query.get("appname", [""])[0]
        # lainlet filters by bare key prefix: appname=hello also returns hello2.web.web
        data = {k: v for k, v in self.spec.items() if k.startswith(app)}
        return Reply(200, data)
