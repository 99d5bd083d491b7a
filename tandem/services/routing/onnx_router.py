"""The trained domain router, served with ONNX Runtime + tokenizers + numpy (no torch).

Named "onnx" in `registry.py`: `build_router("onnx", artifacts_dir=..., domains=...)`. At load it finds the
`router` entry in `<artifacts_dir>/manifest.json`, checks every file's size and sha256, and
refuses (RouterLoadError, with what to do) a missing, corrupt or mismatched artifact, so a bad
artifact stops the service at start instead of failing requests.

Per request: tokenize the last user message (cut to `max_tokens` as the artifact's `truncation`
says), score it with the bag-of-tokens first stage; if that is confident enough (threshold chosen
on dev), answer; otherwise embed the same tokens with int8 MiniLM and score with the embedding head.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tandem.common.manifest import Manifest, ManifestError
from tandem.common.wire import ChatCompletionRequest
from tandem.services.routing.base import RouteDecision, RouterLoadError, last_user_text
from tandem.services.routing.encoder import OnnxEncoder
from tandem.services.routing.features import FEATURE_NAMES, request_features
from tandem.services.routing.heads import load_heads
from tandem.services.routing.packaged_encoder import packaged_encoder_path

ARTIFACT_FILES = ("encoder.onnx", "tokenizer.json", "heads.npz", "router.json")
TRAIN_HINT = "build it with `tandem router train --config configs/routing/router.yaml`"


def artifact_version(artifacts_dir: str | Path, name: str = "router") -> str:
    """The version of the router entry the manifest lists now: a hash of its files' names and sha256s
    (what `POST /admin/reload` compares with the version loaded, and reports)."""
    try:
        entry = Manifest(artifacts_dir).entry(name)
    except ManifestError as exc:
        raise RouterLoadError(f"domain router artifact unusable: {exc}; {TRAIN_HINT}") from exc
    return files_version((Path(rec.path).name, rec.sha256) for rec in entry.files)


def files_version(files) -> str:
    """A router's version from (file name, sha256) pairs: its manifest entry's files, or the files it loaded."""
    return hashlib.sha256("\n".join(f"{name} {sha}" for name, sha in sorted(files)).encode()).hexdigest()[:16]


def verified_files(artifacts_dir: str | Path, name: str = "router") -> dict[str, Path]:
    """The router's files by file name, after checking them against the manifest."""
    return _verified_entry(artifacts_dir, name)[0]


def _verified_entry(artifacts_dir: str | Path, name: str) -> tuple[dict[str, Path], str]:
    """The router's files by file name, checked against one reading of its manifest entry, and the
    version of that entry (`files_version` of the sha256s just checked)."""
    manifest = Manifest(artifacts_dir)
    try:
        entry = manifest.entry(name)
        paths = {Path(rec.path).name: manifest.verified_file(name, rec) for rec in entry.files}
    except ManifestError as exc:
        raise RouterLoadError(f"domain router artifact unusable: {exc}; {TRAIN_HINT}") from exc
    # A router trained on the packaged encoder may leave encoder.onnx out (the default bundle does):
    # OnnxRouter then takes the installed package's file, checked against router.json's sha256.
    required = [f for f in ARTIFACT_FILES if f != "encoder.onnx" or "router.json" not in paths
                or json.loads(paths["router.json"].read_text()).get("encoder_source") != "package"]
    missing = [f for f in required if f not in paths]
    if missing:
        raise RouterLoadError(f"manifest entry '{name}' in {manifest.path} lacks {', '.join(missing)}; {TRAIN_HINT}")
    return paths, files_version((Path(rec.path).name, rec.sha256) for rec in entry.files)


class OnnxRouter:
    def __init__(self, artifacts_dir: str | Path | None = None, domains: list[str] | None = None,
                 entry: str = "router", threads: int | None = None, cascade: bool | None = None, **_: object):
        if artifacts_dir is None:
            raise RouterLoadError(f"the onnx domain router needs an artifacts folder (artifacts_dir) whose "
                                  f"manifest lists '{entry}'; {TRAIN_HINT}")
        paths, self.version = _verified_entry(artifacts_dir, entry)  # the version of the files as verified
        try:
            meta = json.loads(paths["router.json"].read_text())
            self.domains: list[str] = list(meta["domains"])
            encoder_path = paths.get("encoder.onnx") or packaged_encoder_path(meta["encoder_sha256"])
            if meta.get("encoder_lora") and "encoder_lora.npz" not in paths:
                raise RouterLoadError(f"router.json names a fine-tuned encoder but the manifest lists no "
                                      f"encoder_lora.npz; {TRAIN_HINT}")
            self.encoder = OnnxEncoder(encoder_path, paths["tokenizer.json"], meta["max_tokens"],
                                       threads or meta.get("threads", 1), meta.get("truncation", "head"),
                                       lora_path=paths.get("encoder_lora.npz") if meta.get("encoder_lora") else None)
            self.embedding_head, self.token_head = load_heads(paths["heads.npz"])
        except Exception as exc:  # onnxruntime and numpy raise their own types for a damaged file
            raise RouterLoadError(f"domain router artifact in {artifacts_dir} cannot be loaded: {exc}; "
                                  f"{TRAIN_HINT}") from exc
        if meta.get("feature_names") != FEATURE_NAMES:
            raise RouterLoadError(f"router artifact was trained with features {meta.get('feature_names')}, this "
                                  f"code computes {FEATURE_NAMES}; {TRAIN_HINT}")
        if domains is not None and sorted(domains) != sorted(self.domains):
            raise RouterLoadError(f"router artifact routes to {self.domains} but the service is configured for "
                                  f"{list(domains)}; retrain with those domains or change the service's domains")
        if self.embedding_head.weight.shape[0] != len(self.domains):
            raise RouterLoadError("router artifact is inconsistent: head and router.json disagree on the domains")
        self.cascade = meta.get("cascade", True) if cascade is None else cascade

    def probabilities(self, text: str, tools: list | None) -> tuple[np.ndarray, str]:
        features = request_features(text, tools)[None, :]
        ids = self.encoder.token_ids([text])
        if self.cascade:
            probs = self.token_head.probabilities(ids, features)[0]
            if probs.max() >= self.token_head.threshold:
                return probs, "onnx:first-stage"
        return self.embedding_head.probabilities(self.encoder.encode_ids(ids), features, ids)[0], "onnx:embedding"

    def route(self, request: ChatCompletionRequest) -> RouteDecision:
        probs, reason = self.probabilities(last_user_text(request), request.tools)
        best = int(np.argmax(probs))
        return RouteDecision(domain=self.domains[best], confidence=float(probs[best]),
                             probabilities={d: float(p) for d, p in zip(self.domains, probs)}, reason=reason)
