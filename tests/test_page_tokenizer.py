"""The page tokenizer: one page is one token, round trips, [UNK] counting, standalone loading."""

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from tokenization.constants import SPECIAL_TOKENS
from tokenization.page_tokenizer import (
    build_page_tokenizer,
    decode_session,
    encode_sessions,
    encode_sessions_counting_unknown,
    normalize_page,
)

PAGES = [
    "category/apparel",
    "category/apparel/men's t-shirts",
    "/google+redesign/apparel/men++s/quickview",
    "product/electronics.smartphone/1004856",
    "cart",
    "purchase",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_page_tokenizer(PAGES + ["cart", "cart", "purchase"])


def test_normalize_page_strips_lowercases_and_escapes_whitespace():
    assert normalize_page("  Category/Apparel \n") == "category/apparel"
    assert normalize_page("men's t-shirts") == "men's%20t-shirts"
    assert normalize_page("a\tb\u00a0c") == "a%09b%C2%A0c"
    assert normalize_page("a%20b") == "a%20b"
    assert normalize_page(" \t ") == ""
    for page in PAGES:
        assert len(normalize_page(page).split()) == 1


def test_vocabulary_order_specials_then_frequency_then_name(tokenizer):
    vocab = tokenizer.get_vocab()
    assert [vocab[token] for token in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        0,
        1,
        2,
        3,
    )
    ordered = tokenizer.convert_ids_to_tokens(list(range(4, len(tokenizer))))
    assert ordered[:2] == ["cart", "purchase"]  # 3 and 2 occurrences
    assert ordered[2:] == sorted(normalize_page(page) for page in PAGES[:4])
    assert len(tokenizer) == 4 + len(PAGES)
    assert tokenizer.model_max_length == 512


def test_counter_input_and_empty_page_rejected():
    tokenizer = build_page_tokenizer(Counter({"B": 2, "b": 1, "a": 2}), model_max_length=64)
    assert tokenizer.convert_ids_to_tokens([4, 5]) == ["b", "a"]  # "B" and "b" merge to 3
    assert tokenizer.model_max_length == 64
    with pytest.raises(ValueError, match="empty page name"):
        build_page_tokenizer(["home", "   "])


def test_every_page_is_one_token_and_text_round_trips(tokenizer):
    pages = [normalize_page(page) for page in PAGES]
    ids = tokenizer(" ".join(pages), add_special_tokens=False)["input_ids"]
    assert len(ids) == len(pages)
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == " ".join(pages)
    assert tokenizer(tokenizer.decode(ids), add_special_tokens=False)["input_ids"] == ids


def test_encode_sessions_and_decode_session_round_trip(tokenizer):
    sessions = [PAGES[:3], PAGES[3:]]
    ids = encode_sessions(tokenizer, sessions)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert ids[0] == bos and ids[4] == eos and ids[5] == bos and ids[-1] == eos
    assert len(ids) == len(PAGES) + 4
    assert decode_session(tokenizer, ids) == [normalize_page(page) for page in PAGES[:3]]
    assert decode_session(tokenizer, ids[5:]) == [normalize_page(page) for page in PAGES[3:]]
    prompt = encode_sessions(tokenizer, sessions, open_next_session=True)
    assert prompt == ids + [bos]


def test_unknown_pages_map_to_unk_and_are_counted(tokenizer):
    ids, unknown = encode_sessions_counting_unknown(tokenizer, [["cart", "never-seen", "[BOS]"], ["Also New"]])
    unk = tokenizer.unk_token_id
    assert unknown == 3
    assert ids == [2, tokenizer.convert_tokens_to_ids("cart"), unk, unk, 3, 2, unk, 3]


def test_decode_session_stops_at_eos_drops_pad_bos_keeps_unk(tokenizer):
    cart = tokenizer.convert_tokens_to_ids("cart")
    ids = [0, 2, cart, 1, len(tokenizer) + 7, -5, 0, cart, 3, cart, cart]
    assert decode_session(tokenizer, ids) == ["cart", "[UNK]", "[UNK]", "[UNK]", "cart"]
    assert decode_session(tokenizer, []) == []


def test_save_pretrained_and_auto_tokenizer_round_trip(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, PreTrainedTokenizerFast)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert (loaded.pad_token, loaded.unk_token, loaded.bos_token, loaded.eos_token) == SPECIAL_TOKENS
    assert loaded.model_max_length == 512
    sessions = [PAGES[:2], ["unknown-page"]]
    assert encode_sessions(loaded, sessions) == encode_sessions(tokenizer, sessions)


def test_loads_standalone_without_this_package(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    script = textwrap.dedent(
        f"""
        import sys
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / "tokenizer")!r})
        ids = tokenizer("[BOS] category/apparel cart nowhere [EOS]", add_special_tokens=False)["input_ids"]
        assert not any(name.split(".")[0] in ("tokenization", "trainers", "modeling_hetlm", "evaluation")
                       for name in sys.modules), "the package was imported"
        print(ids, tokenizer.decode(ids, skip_special_tokens=True), type(tokenizer).__name__)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected_ids = [
        2,
        tokenizer.convert_tokens_to_ids("category/apparel"),
        tokenizer.convert_tokens_to_ids("cart"),
        1,
        3,
    ]
    assert result.stdout.split("] ")[0] + "]" == str(expected_ids)
    assert "category/apparel cart" in result.stdout


TRICKY_PAGES = [
    "Category/Apparel",
    "/Google+Redesign/Apparel/Men's-T-Shirts",
    "/category/shoes/running/?utm_source=Newsletter&utm_medium=EMAIL",
    "/search?q=Red+Shoes#Top",
    "HTTPS://Shop.Example.COM/Product/Sneakers-Shoe-189/",
    "ΟΔΟΣ/ΣΑΣ",  # final sigma: Python's str.lower and tokenizers' Lowercase differ
    "İstanbul/Straße",
    "ǅemal/Ⅻ/ﬁle",
    "\ua7cb-garay-\U00010d50",  # letters of Unicode 16
    "café/CAFÉ",
    "%20already%20encoded",
    "[Bos]-not-special",
]


def test_tokenizer_text_and_encode_sessions_normalise_pages_alike(tmp_path):
    pages = [normalize_page(page) for page in TRICKY_PAGES]
    tokenizer = build_page_tokenizer(TRICKY_PAGES)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    by_sessions = encode_sessions(tokenizer, [TRICKY_PAGES])[1:-1]
    assert tokenizer.unk_token_id not in by_sessions and len(set(by_sessions)) == len(set(pages))
    for loaded in (tokenizer, reloaded):
        assert loaded(TRICKY_PAGES, add_special_tokens=False)["input_ids"] == [[page_id] for page_id in by_sessions]
        assert loaded(" ".join(TRICKY_PAGES))["input_ids"] == by_sessions
        # The pages' names come back, normalised, and the special tokens stay upper-case and special.
        assert loaded.convert_ids_to_tokens(by_sessions) == pages
        assert loaded("[BOS] Category/Apparel [EOS] [PAD]")["input_ids"] == [2, by_sessions[0], 3, 0]
        assert loaded.decode([2, *by_sessions[:2], 3]) == f"[BOS] {pages[0]} {pages[1]} [EOS]"


def test_saved_tokenizer_pads_on_the_left(tmp_path):
    build_page_tokenizer(["home", "cart"]).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["padding_side"] == "left"
    padded = AutoTokenizer.from_pretrained(tmp_path)(["home cart", "cart"], padding=True)
    assert padded["input_ids"] == [[5, 4], [0, 4]] and padded["attention_mask"] == [[1, 1], [0, 1]]
