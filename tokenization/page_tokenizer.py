"""The page tokenizer: one page is exactly one token.

A ``tokenizers`` WordLevel model over the unique pages plus ``[PAD] [UNK] [BOS] [EOS]`` (ids 0-3,
then pages by frequency, most frequent first, ties by name), split on whitespace only
(``WhitespaceSplit``: slashes and dashes stay inside the page), wrapped as a
``PreTrainedTokenizerFast``. It saves with ``save_pretrained`` and loads with
``AutoTokenizer.from_pretrained`` anywhere ``transformers`` is installed, without this package.

Page names are normalised by :func:`normalize_page` so that a page never contains whitespace:
leading and trailing whitespace is stripped, the name is lower-cased (paths and categories are
treated case-insensitively), every whitespace character inside is percent-encoded as its UTF-8
bytes (a space becomes ``%20``; an existing ``%20`` is left alone, so encoded and raw forms of a
path are the same page). Lower-casing also keeps pages apart from the upper-case special tokens:
a page named ``[BOS]`` becomes ``[bos]``, an ordinary (here unknown) page.

The tokenizer itself normalises its text with :func:`page_normalizer`, the same case rule, so
``tokenizer("Category/Apparel home")`` and ``encode_sessions`` agree; in tokenizer text whitespace
separates pages (write a page with a space as ``%20``). Special tokens are matched before the
normaliser. The saved tokenizer pads on the left, as ``generate`` wants prompts.

Example:
    >>> tokenizer = build_page_tokenizer(["category/shoes", "product/shoes/run-1", "category/shoes"])
    >>> ids = encode_sessions(tokenizer, [["category/shoes", "product/shoes/run-1"], ["cart"]])
    >>> ids
    [2, 4, 5, 3, 2, 1, 3]
    >>> decode_session(tokenizer, ids[1:])
    ['category/shoes', 'product/shoes/run-1']
    >>> tokenizer("[BOS] Category/Shoes")["input_ids"], tokenizer.decode([4, 5])
    ([2, 4], 'category/shoes product/shoes/run-1')
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from .constants import BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, UNK_TOKEN

# Every character Python's str.split() breaks on: a superset of what the WhitespaceSplit pre-tokenizer splits at.
_WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace())
_WHITESPACE_ESCAPES = str.maketrans(
    {char: "".join(f"%{byte:02X}" for byte in char.encode("utf-8")) for char in _WHITESPACE}
)


def page_normalizer() -> normalizers.Normalizer:
    """The one definition of how page text is normalised (lower-casing), as a ``tokenizers`` normaliser.

    The page tokenizer runs it on its text and :func:`normalize_page` on each page name, so a rule
    added here holds for both (tests check they agree on a list of tricky names).

    Example:
        >>> page_normalizer().normalize_str("Category/Apparel ΟΔΟΣ")
        'category/apparel οδοσ'
    """
    return normalizers.Sequence([normalizers.Lowercase()])


_PAGE_NORMALIZER = page_normalizer()


def normalize_page(name: str) -> str:
    """Normalise a page name so that it is always exactly one token.

    Strips surrounding whitespace, applies :func:`page_normalizer` (lower-casing) and percent-encodes
    whitespace inside the name. An all-whitespace name normalises to ``""`` (callers treat that as a
    missing page). ASCII names take Python's ``str.lower``, which equals the normaliser on ASCII and
    is 20x faster; other names go through the normaliser itself (Python's and the ``tokenizers``
    lower-casing differ on a final sigma and on letters of recent Unicode versions).

    Example:
        >>> normalize_page("  Category/Men's Shoes\\tSale ")
        "category/men's%20shoes%09sale"
        >>> normalize_page("product/electronics-smartphone/1004856")
        'product/electronics-smartphone/1004856'
        >>> normalize_page("[BOS]")
        '[bos]'
    """
    page = name.strip()
    page = page.lower() if page.isascii() else _PAGE_NORMALIZER.normalize_str(page)
    # Every whitespace character but the space is non-printable: most names skip the translation.
    return page if page.isprintable() and " " not in page else page.translate(_WHITESPACE_ESCAPES)


class PageTokenizer(PreTrainedTokenizerFast):
    """A ``PreTrainedTokenizerFast`` that saves itself as one.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` in ``tokenizer_config.json``, which
    transformers 4.x cannot load; this class writes ``PreTrainedTokenizerFast`` instead, which every
    version loads with ``AutoTokenizer.from_pretrained``. Nothing else differs.

    Example:
        >>> import json, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = build_page_tokenizer(["home"]).save_pretrained(folder)
        >>> json.load(open(f"{folder}/tokenizer_config.json"))["tokenizer_class"]
        'PreTrainedTokenizerFast'
    """

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> tuple[str, ...]:
        saved_files = super().save_pretrained(save_directory, *args, **kwargs)
        config_file = Path(save_directory) / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_file.write_text(
            json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return saved_files


def build_page_tokenizer(pages: Iterable[str] | Counter, model_max_length: int = 512) -> PageTokenizer:
    """Build the page tokenizer over the given pages.

    Args:
        pages: Page names, repeated as often as they occur (or a ``Counter`` of page -> count);
            names are normalised with :func:`normalize_page` first. The count decides the id
            order (most frequent first, ties by name).
        model_max_length: The longest token sequence models using this tokenizer accept.

    Raises:
        ValueError: A page name is empty after normalisation.

    Example:
        >>> tokenizer = build_page_tokenizer(Counter({"b": 1, "a": 1, "cart": 5}))
        >>> tokenizer.convert_ids_to_tokens(list(range(7)))
        ['[PAD]', '[UNK]', '[BOS]', '[EOS]', 'cart', 'a', 'b']
    """
    counts = pages if isinstance(pages, Counter) else Counter(pages)
    normalized: Counter = Counter()
    for page, count in counts.items():
        name = normalize_page(page)
        if not name:
            raise ValueError(f"empty page name {page!r}: every page needs a non-blank name")
        normalized[name] += count
    ordered = sorted(normalized.items(), key=lambda item: (-item[1], item[0]))
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS)}
    vocab.update({page: len(SPECIAL_TOKENS) + index for index, (page, _) in enumerate(ordered)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    backend.normalizer = page_normalizer()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PageTokenizer(
        tokenizer_object=backend,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        model_max_length=model_max_length,
        padding_side="left",
    )


def encode_sessions_counting_unknown(
    tokenizer: PreTrainedTokenizerFast, sessions: Sequence[Sequence[str]], open_next_session: bool = False
) -> tuple[list[int], int]:
    """Like :func:`encode_sessions`, also returning how many pages were unknown (mapped to ``[UNK]``).

    Example:
        >>> tokenizer = build_page_tokenizer(["home"])
        >>> encode_sessions_counting_unknown(tokenizer, [["home", "nowhere"]], open_next_session=True)
        ([2, 4, 1, 3, 2], 1)
    """
    bos_id, eos_id, unk_id = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id
    ids: list[int] = []
    unknown = 0
    for session in sessions:
        page_ids = tokenizer.convert_tokens_to_ids([normalize_page(page) for page in session])
        unknown += sum(page_id == unk_id for page_id in page_ids)
        ids += [bos_id, *page_ids, eos_id]
    if open_next_session:
        ids.append(bos_id)
    return ids, unknown


def encode_sessions(
    tokenizer: PreTrainedTokenizerFast, sessions: Sequence[Sequence[str]], open_next_session: bool = False
) -> list[int]:
    """Encode a user's sessions as ``[BOS] p .. [EOS] [BOS] p .. [EOS] ...``.

    Args:
        tokenizer: A page tokenizer from :func:`build_page_tokenizer` (or loaded from its folder).
        sessions: Page names per session, oldest first. Unknown pages become ``[UNK]``.
        open_next_session: Append a trailing ``[BOS]``: the prompt for generating the next session.

    Example:
        >>> tokenizer = build_page_tokenizer(["home", "home", "cart"])
        >>> encode_sessions(tokenizer, [["home", "cart"]], open_next_session=True)
        [2, 4, 5, 3, 2]
    """
    return encode_sessions_counting_unknown(tokenizer, sessions, open_next_session)[0]


def decode_session(tokenizer: PreTrainedTokenizerFast, ids: Sequence[int]) -> list[str]:
    """Page names of ONE generated session.

    Stops at the first ``[EOS]``, drops ``[PAD]`` and ``[BOS]``; an ``[UNK]`` id, or an id outside
    the vocabulary, is kept as the literal ``"[UNK]"`` so hallucinated pages can be counted.

    Example:
        >>> tokenizer = build_page_tokenizer(["home", "home", "cart"])
        >>> decode_session(tokenizer, [2, 4, 1, 999, 5, 3, 4, 0])
        ['home', '[UNK]', '[UNK]', 'cart']
    """
    eos_id = tokenizer.eos_token_id
    skipped = {tokenizer.pad_token_id, tokenizer.bos_token_id}
    vocab_size = len(tokenizer)
    pages: list[str] = []
    for token_id in ids:
        token_id = int(token_id)
        if token_id == eos_id:
            break
        if token_id in skipped:
            continue
        pages.append(tokenizer.convert_ids_to_tokens(token_id) if 0 <= token_id < vocab_size else UNK_TOKEN)
    return pages
