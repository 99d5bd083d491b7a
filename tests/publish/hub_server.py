"""A local stand-in for the Hugging Face Hub's HTTP API, just the calls `HfApi.create_repo` and
`HfApi.upload_folder` make (no network exists here; huggingface_hub has no dry run for uploads).

It answers as the Hub does: create (409 when the repo exists), README metadata validation,
preupload (every file as a regular git blob), and the NDJSON commit, whose files it keeps so a
test can compare them byte for byte. Requests without the expected bearer token get 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class HubState:
    token: str
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private: dict[str, bool] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)


def create_app(state: HubState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def auth(request: Request, call_next):
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return JSONResponse({"error": "Invalid credentials"}, status_code=401)
        return await call_next(request)

    @app.post("/api/repos/create")
    async def create(request: Request):
        body = await request.json()
        repo = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if repo in state.repos:
            return JSONResponse({"error": "You already created this model repo", "url": f"{request.base_url}{repo}"},
                                status_code=409)  # the Hub names the existing repo's URL too
        state.repos[repo], state.private[repo] = {}, body.get("visibility") == "private"
        return {"url": f"{request.base_url}{repo}", "name": repo}

    @app.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        content = (await request.json())["content"]
        if not content.startswith("---\n"):
            return JSONResponse({"errors": [{"message": "no metadata block"}]}, status_code=400)
        return {"errors": [], "warnings": []}

    @app.post("/api/models/{owner}/{name}/preupload/{revision}")
    async def preupload(owner: str, name: str, revision: str, request: Request):
        files = (await request.json())["files"]
        return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}

    @app.post("/api/models/{owner}/{name}/commit/{revision}")
    async def commit(owner: str, name: str, revision: str, request: Request):
        repo = f"{owner}/{name}"
        if repo not in state.repos:
            return JSONResponse({"error": "Repository not found"}, status_code=404)
        lines = [json.loads(line) for line in (await request.body()).decode().splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        for item in lines:
            if item["key"] == "file":
                state.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
        oid = hashlib.sha1(json.dumps(lines, sort_keys=True).encode()).hexdigest()
        state.commits.append({"repo": repo, "revision": revision, "summary": header["summary"], "oid": oid})
        return {"commitUrl": f"{request.base_url}{repo}/commit/{oid}", "commitOid": oid}

    return app


@contextmanager
def local_hub(token: str) -> Iterator[tuple[str, HubState]]:
    """A running stand-in Hub on a free port: yields (endpoint URL, its state)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = HubState(token=token)
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
