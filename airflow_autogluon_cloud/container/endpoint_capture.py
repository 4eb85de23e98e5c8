"""Data capture for the local endpoint, in SageMaker's capture format.

A sample of requests and their answers (``sampling_percentage`` of them) is appended as JSON
lines under ``<destination>/<endpoint>/AllTraffic/<yyyy>/<mm>/<dd>/<hh>/``, one file per server
process and hour, each line as SageMaker Model Monitor's data capture writes it::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                        "data": "...", "encoding": "JSON"}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceTime": "2026-12-04T10:00:00Z"},
     "eventVersion": "0"}

Text bodies are kept as text (``CSV``/``JSON`` encodings); others are base64 (``BASE64``). The
configuration comes from ``data_capture.json`` beside the model directory, written by the local
backend. Standard library only; imports nothing from the provider package.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

CONFIG_FILE = "data_capture.json"
VARIANT = "AllTraffic"


def _encoded(data: bytes, content_type: str) -> tuple[str, str]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/csv", "application/json", "application/jsonl", "application/jsonlines"):
        try:
            return data.decode("utf-8"), "CSV" if kind == "text/csv" else "JSON"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), "BASE64"


class Capture:
    """Appends a sample of requests and answers; one lock per process keeps the lines whole."""

    def __init__(self, endpoint_name: str, destination: str, sampling_percentage: float) -> None:
        self.root = Path(destination) / endpoint_name / VARIANT
        self.share = max(0.0, min(100.0, float(sampling_percentage))) / 100
        self._lock = threading.Lock()

    def record(self, body: bytes, content_type: str, answer: bytes, answer_type: str) -> None:
        if random.random() >= self.share:
            return
        now = time.gmtime()
        data_in, encoding_in = _encoded(body, content_type)
        data_out, encoding_out = _encoded(answer, answer_type)
        line = {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data_in,
                    "encoding": encoding_in,
                },
                "endpointOutput": {
                    "observedContentType": answer_type,
                    "mode": "OUTPUT",
                    "data": data_out,
                    "encoding": encoding_out,
                },
            },
            "eventMetadata": {"eventId": str(uuid.uuid4()), "inferenceTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", now)},
            "eventVersion": "0",
        }
        directory = self.root / time.strftime("%Y/%m/%d/%H", now)
        with self._lock:
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")


def from_workdir(model_dir: str, endpoint_name: str) -> Capture | None:
    """The capture configured beside ``model_dir`` (``None``: this endpoint captures nothing)."""
    path = Path(model_dir).parent / CONFIG_FILE
    if not path.is_file():
        return None
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Capture(endpoint_name, config["destination"], config["sampling_percentage"])
