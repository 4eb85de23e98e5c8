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

__all__ = ["MULTIMODAL", "build_tiny_bert", "make_reviews", "text_fit_args"]

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
