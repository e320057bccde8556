"""Tiny HeTLM models of the three predictor families (OPT, Qwen2, Llama) and page-id batches for the model tests.

Example:
    >>> model = tiny_model("llama", num_clusters=3)
    >>> ids, mask = training_batch(model.page_tokenizer)
"""

from __future__ import annotations

import torch

from inference.prompts import pad_sequences
from modeling_hetlm import HeTLMForBrowsing, build_encoder_tokenizer, build_hetlm
from tokenization.page_tokenizer import build_page_tokenizer, encode_sessions

FAMILIES = ("opt", "qwen2", "llama")
PAGES = [
    "/home",
    "/google+redesign/apparel/mens-t_shirts",
    "/google+redesign/bags/backpacks",
    "/google+redesign/drinkware",
    "/store/product/yoga-mat_blue",
    "/store/product/water-bottle",
    "/basket.html",
    "cart",
    "purchase",
]
USERS = [
    [["/home", "/google+redesign/apparel/mens-t_shirts"], ["/store/product/yoga-mat_blue", "cart"]],
    [["/google+redesign/drinkware"]],
    [["/basket.html", "cart", "purchase"], ["/home"], ["/google+redesign/bags/backpacks", "/home"]],
    [["/store/product/water-bottle", "/google+redesign/drinkware", "/home"]],
    [["/home", "an/unseen-page"], ["cart"]],
]
TARGETS = [["/home", "purchase"], ["/google+redesign/drinkware", "cart"], ["/home"], ["cart", "purchase"], ["/home"]]


def predictor_config(family: str, vocab_size: int) -> dict:
    """A 2-layer, 16-d causal LM config of `family` with tied input/output embeddings."""
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
        "tie_word_embeddings": True,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    }
    if family == "opt":
        return {"model_type": "opt", "ffn_dim": 32, "word_embed_proj_dim": 16, "dropout": 0.0, **common}
    return {"model_type": family, "intermediate_size": 32, "num_key_value_heads": 1, **common}


def tiny_model(family: str = "opt", num_clusters: int = 3, seed: int = 0, **config_kwargs) -> HeTLMForBrowsing:
    """A tiny HeTLM (K independent random predictors, 2-layer 16-d BERT encoder) with its page tokenizer, in eval
    mode."""
    torch.manual_seed(seed)
    page_tokenizer = build_page_tokenizer(PAGES)
    encoder_tokenizer = build_encoder_tokenizer(PAGES, vocab_size=80)
    settings = {
        "num_clusters": num_clusters,
        "selector_hidden_sizes": [8],
        "encoder_max_length": 64,
        "predictor_config": predictor_config(family, len(page_tokenizer)),
        "encoder_config": {
            "model_type": "bert",
            "vocab_size": len(encoder_tokenizer),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
        **config_kwargs,
    }
    return build_hetlm(page_tokenizer, encoder_tokenizer=encoder_tokenizer, **settings).eval()


def training_batch(page_tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded streams of input sessions + target session, one row per user."""
    streams = [encode_sessions(page_tokenizer, sessions + [target]) for sessions, target in zip(USERS, TARGETS)]
    return pad_sequences(streams, page_tokenizer.pad_token_id, side="right")


def prompt_batch(page_tokenizer, users: list = USERS) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded prompts (input sessions + [BOS]) of different lengths."""
    prompts = [encode_sessions(page_tokenizer, sessions, open_next_session=True) for sessions in users]
    return pad_sequences(prompts, page_tokenizer.pad_token_id, side="left")
