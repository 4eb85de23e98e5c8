"""Multimodal predictors (text, image, tabular+text) end to end; need the multimodal extra (run in
.venv-multimodal, see scripts/setup-multimodal-env.sh). Offline: the text backbone is a tiny BERT
built here from the training texts, the image backbone's random weights sit in a temporary Hugging
Face cache; nothing is downloaded."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_autogluon_cloud.example_data import make_reviews

__all__ = [
    "IMAGE_FIT_ARGS",
    "MULTIMODAL",
    "build_tiny_bert",
    "fill_hub_cache",
    "make_reviews",
    "text_fit_args",
    "write_pngs",
]

#: Backbones come from local directories or a pre-filled cache: never from the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

HAVE_MULTIMODAL = importlib.util.find_spec("autogluon") is not None and (
    importlib.util.find_spec("autogluon.multimodal") is not None
)
#: Every module here: ``pytestmark = MULTIMODAL``.
MULTIMODAL = [
    pytest.mark.multimodal,
    pytest.mark.skipif(
        not HAVE_MULTIMODAL,
        reason="autogluon.multimodal is not installed: run in .venv-multimodal (bash scripts/setup-multimodal-env.sh)",
    ),
]


def build_tiny_bert(directory: Path, texts: list[str]) -> Path:
    """A random-init BERT (hidden 64, 2 layers, 2 heads) with a WordPiece vocabulary trained on
    ``texts``, saved as a Hugging Face checkpoint directory: about a second, no download."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    vocab = tokenizer.get_vocab()
    directory.mkdir(parents=True, exist_ok=True)
    # transformers 5 takes the vocabulary as vocab=; vocab_file= silently gives a 5-token one.
    BertTokenizerFast(vocab=vocab).save_pretrained(str(directory))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(directory))
    return directory


def text_fit_args(checkpoint: Path, names: list[str] | None = None, column_types: dict[str, str] | None = None) -> dict:
    """Fit arguments for a fast, offline multimodal fit on the tiny BERT."""
    hyperparameters = {
        "model.names": names or ["hf_text"],
        "model.hf_text.checkpoint_name": str(checkpoint),
        "model.hf_text.max_text_len": 32,
        "env.num_gpus": 0,
        "env.num_workers": 0,
        "env.num_workers_inference": 0,
        "env.per_gpu_batch_size": 16,
        "env.batch_size": 16,
        "env.inference_batch_size_ratio": 1,
        "optim.max_epochs": 2,
        "optim.lr": 0.005,
    }
    args: dict[str, Any] = {"hyperparameters": hyperparameters, "time_limit": 300}
    if column_types:
        args["column_types"] = column_types
    return args


#: A timm backbone small enough to fit in seconds on the CPU (13 MB of weights).
IMAGE_BACKBONE = "mobilenetv3_small_050"
IMAGE_FIT_ARGS = {
    "column_types": {"photo": "image_path"},
    "hyperparameters": {
        "model.names": ["timm_image"],
        "model.timm_image.checkpoint_name": IMAGE_BACKBONE,
        "model.timm_image.image_size": 64,
        "env.num_gpus": 0,
        "env.num_workers": 0,
        "env.num_workers_inference": 0,
        "env.per_gpu_batch_size": 8,
        "env.batch_size": 8,
        "optim.max_epochs": 1,
    },
    "time_limit": 300,
}


def fill_hub_cache(home: Path) -> Path:
    """Random weights for the backbone's hub id in a Hugging Face cache under ``home`` (``HF_HOME``),
    laid out as a download would leave them. In AutoGluon 1.6.3 ``pretrained=False`` is ignored, so
    timm asks the hub; with ``HF_HUB_OFFLINE=1`` it finds these."""
    import json

    import timm
    from safetensors.torch import save_file

    model = timm.create_model(IMAGE_BACKBONE, pretrained=False)
    repo = home / "hub" / ("models--" + model.pretrained_cfg["hf_hub_id"].replace("/", "--"))
    revision = "0" * 40
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    (snapshot / "config.json").write_text(json.dumps({"architecture": IMAGE_BACKBONE, "num_classes": 1000}))
    return home


def write_pngs(folder: Path, count: int, seed: int) -> Any:
    """32x32 PNGs, dark or light (the label ``shade``), in two subfolders of ``folder``."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        light = i % 2 == 1
        sub = folder / ("b" if i % 3 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((32, 32, 3)) * 80 + (160 if light else 0)).astype("uint8")
        path = sub / f"img{i:03d}.png"
        Image.fromarray(pixels).save(path)
        rows.append({"photo": str(path), "shade": "light" if light else "dark"})
    return pd.DataFrame(rows)
