"""A local server speaking the X API v2 recent-search protocol, for tests (loopback only).

It serves a list of tweets newest first with ``max_results``/``next_token`` pagination,
``start_time``/``end_time``/``since_id``/``until_id`` filters, ``includes.users``, checks the
bearer token, and injects the faults a test scripts: a 429 with ``x-rate-limit-reset``, a 503,
a malformed body. It records every tweet id it served, to prove nothing is fetched twice.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class XApiServer:
    def __init__(self, token: str, tweets: list[dict[str, Any]]) -> None:
        self.token = token
        self.tweets = tweets  # any order; served newest (largest id) first
        self.faults: list[str] = []  # consumed one per request: "429", "503", "malformed", "ok"
        self.served: Counter[str] = Counter()
        self.requests: list[dict[str, list[str]]] = []
        self.auth_headers: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> XApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        self.requests.append(query)
        self.auth_headers.append(handler.headers.get("Authorization", ""))
        if url.path != "/2/tweets/search/recent":
            return self._send(handler, 404, json.dumps({"title": "Not Found"}))
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(handler, 401, json.dumps({"title": "Unauthorized", "status": 401}))
        fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "429":
            reset = str(int(time.time()) + 1)
            return self._send(
                handler,
                429,
                json.dumps({"title": "Too Many Requests"}),
                {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset},
            )
        if fault == "503":
            return self._send(handler, 503, json.dumps({"title": "Service Unavailable"}))
        if fault == "malformed":
            return self._send(handler, 200, '{"data": [{"id": "1", "text": "trunc')
        self._send(handler, 200, json.dumps(self._page(query)), {"x-rate-limit-remaining": "100"})

    def _page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def arg(name: str) -> str | None:
            return query.get(name, [None])[0]

        selected = sorted(self.tweets, key=lambda t: int(t["id"]), reverse=True)
        if arg("start_time"):
            selected = [t for t in selected if _ts(t["created_at"]) >= _ts(arg("start_time"))]
        if arg("end_time"):
            selected = [t for t in selected if _ts(t["created_at"]) < _ts(arg("end_time"))]
        if arg("since_id"):
            selected = [t for t in selected if int(t["id"]) > int(arg("since_id"))]
        if arg("until_id"):
            selected = [t for t in selected if int(t["id"]) < int(arg("until_id"))]
        offset = int(arg("next_token") or 0)
        size = int(arg("max_results") or 10)
        page = selected[offset : offset + size]
        self.served.update(t["id"] for t in page)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if offset + size < len(selected):
            meta["next_token"] = str(offset + size)
        users = {
            t["author_id"]: {
                "id": t["author_id"],
                "username": f"user{t['author_id']}",
                "public_metrics": {"followers_count": int(t["author_id"]) * 10},
            }
            for t in page
        }
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = page
            body["includes"] = {"users": list(users.values())}
        return body


def _ts(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
