"""How a user becomes encoder input: page ids -> the encoder's word pieces (and the same as text).

A row of page ids is a stream `[BOS] p p [EOS] [BOS] p ...`; the user's history is everything before
the row's LAST `[BOS]` (in a generation prompt that `[BOS]` opens the session to predict, in a
training stream it opens the target session), so the encoder never sees what the predictors are
asked to produce. Each page name becomes words (runs of characters other than letters and digits,
e.g. `/ - _ + .`, become spaces), pages are joined by spaces and sessions by `" | "`, an unknown page
is the encoder's `[UNK]` token: `"/home" "/apparel/mens-shirts"` then `"cart"` gives
`"home apparel mens shirts | cart"`.

Because BERT's pre-tokenizer splits on spaces and punctuation, the word pieces of that text are the
concatenation of each page's word pieces, so the model keeps a page-to-word-piece table (buffers
`page_pieces`, `page_piece_counts`, built once by `set_page_vocabulary` from the encoder's WordPiece
tokenizer and saved in the safetensors file): embedding needs no tokenizer at run time, a saved
folder needs nothing else, and the result equals sentence-transformers on the same text. The text
itself (`session_texts`, for checks and inspection) needs the page names, which the page tokenizer holds.

This file is copied into saved folders (imported relatively by `modeling_hetlm.py`), so it imports
only `torch` and the configuration file.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F

from .configuration_hetlm import page_vocabulary_hash

SESSION_SEPARATOR = "|"
_NON_WORD = re.compile(r"[\W_]+")


def page_text(page: str) -> str:
    """The words the encoder reads for one page name.

    Example:
        >>> page_text("/google+redesign/apparel/mens-t_shirts")
        'google redesign apparel mens t shirts'
    """
    words = " ".join(part for part in _NON_WORD.split(page) if part)
    return words or page


def page_vocabulary(page_tokenizer) -> list[str]:
    """The page tokenizer's tokens in id order (special tokens included).

    Example:
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> page_vocabulary(build_page_tokenizer(["/home", "cart"]))[:4]
        ['[PAD]', '[UNK]', '[BOS]', '[EOS]']
    """
    return page_tokenizer.convert_ids_to_tokens(list(range(len(page_tokenizer))))


class HeTLMEncoderInputsMixin:
    """The page -> word-piece assembly of `HeTLMForBrowsing` (its `config`, `page_pieces`,
    `page_piece_counts`, `page_tokenizer` and `check_inputs`)."""

    def set_page_vocabulary(self, page_vocabulary: Sequence[str], encoder_tokenizer) -> None:
        """Record the page vocabulary's size and fingerprint (`config.num_pages`, `config.page_vocabulary_hash`)
        and build the page-to-word-piece table with the encoder's WordPiece tokenizer (a `transformers`
        fast tokenizer, e.g. all-MiniLM-L6-v2's).

        Example:
            >>> model.set_page_vocabulary(page_vocabulary(page_tokenizer),  # doctest: +SKIP
            ...                           AutoTokenizer.from_pretrained(minilm_path))
        """
        config = self.config
        pages = list(page_vocabulary)
        fingerprint = page_vocabulary_hash(pages)
        if len(set(pages)) != len(pages):
            raise ValueError("page_vocabulary has duplicate pages")
        texts = [self._token_text(token_id, page, encoder_tokenizer.unk_token) for token_id, page in enumerate(pages)]
        pieces = encoder_tokenizer(texts, add_special_tokens=False)["input_ids"]
        width = max(1, max(len(row) for row in pieces))
        table = torch.zeros(len(pages), width, dtype=torch.long)
        for row, ids in enumerate(pieces):
            table[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        encoder_vocab = config.encoder_config.vocab_size
        special = (encoder_tokenizer.cls_token_id, encoder_tokenizer.sep_token_id)
        if int(table.max()) >= encoder_vocab or any(i is None or i >= encoder_vocab for i in special):
            raise ValueError(f"the encoder tokenizer produces ids outside the encoder vocabulary ({encoder_vocab})")
        fields = ("num_pages", "page_vocabulary_hash", "encoder_page_pieces")
        previous = [getattr(config, name) for name in fields]
        config.num_pages, config.page_vocabulary_hash, config.encoder_page_pieces = len(pages), fingerprint, width
        try:
            config.check_values()
        except ValueError:
            for name, value in zip(fields, previous):
                setattr(config, name, value)
            raise
        config.encoder_cls_token_id, config.encoder_sep_token_id = special
        device = self.page_pieces.device
        self.page_pieces = table.to(device)
        self.page_piece_counts = torch.tensor([len(ids) for ids in pieces], dtype=torch.long, device=device)

    def check_page_tokenizer(self, page_tokenizer) -> None:
        """Raise `ValueError` unless `page_tokenizer`'s tokens (in id order) are the page vocabulary the model
        was built for (`config.num_pages` and `config.page_vocabulary_hash`).

        Example:
            >>> model.check_page_tokenizer(AutoTokenizer.from_pretrained("runs/hetlm"))  # doctest: +SKIP
        """
        config = self.config
        if config.num_pages is None or config.page_vocabulary_hash is None:
            raise ValueError("the model has no page vocabulary: call set_page_vocabulary first")
        pages = page_vocabulary(page_tokenizer)
        fingerprint = page_vocabulary_hash(pages)
        if len(pages) != config.num_pages or fingerprint != config.page_vocabulary_hash:
            raise ValueError(
                f"the page tokenizer does not match the model: it has {len(pages)} pages (fingerprint "
                f"{fingerprint[:12]}), the model was built for {config.num_pages} (fingerprint "
                f"{config.page_vocabulary_hash[:12]})"
            )

    def _token_text(self, token_id: int, page: str, unk_text: str) -> str:
        config = self.config
        if token_id in (config.pad_token_id, config.eos_token_id):
            return ""
        if token_id == config.bos_token_id:
            return SESSION_SEPARATOR
        if token_id == config.unk_token_id:
            return unk_text
        return page_text(page)

    def _history_layout(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`[B, T]` bool masks of the history's pages (real tokens before the row's last [BOS], neither
        [BOS] nor [EOS]) and of the pages that open a session after an earlier non-empty one (the
        separator goes before them). Raises `ValueError` for a row without any such page."""
        config = self.config
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        kept = attention_mask.bool() & (input_ids != config.pad_token_id)
        is_bos = input_ids == config.bos_token_id
        last_bos = torch.where(kept & is_bos, positions, -1).max(dim=1, keepdim=True).values
        history = kept & ((positions < last_bos) | (last_bos < 0))
        boundary = history & (is_bos | (input_ids == config.eos_token_id))
        page = history & ~boundary
        without_pages = ~page.any(dim=1)
        if without_pages.any():
            raise ValueError(
                f"row {int(without_pages.nonzero()[0])} has no page before its last [BOS]: there is no browsing "
                "history to embed"
            )
        # A page opens a new session when the last page before it lies in an earlier session.
        session = boundary.long().cumsum(dim=1)
        last_page_session = F.pad(torch.where(page, session, -1).cummax(dim=1).values[:, :-1], (1, 0), value=-1)
        separated = page & (last_page_session >= 0) & (last_page_session != session)
        return page, separated

    def session_texts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, page_tokenizer=None
    ) -> list[str]:
        """The text the encoder reads for each row (see the module docstring); the page names come from
        `page_tokenizer` (default: `self.page_tokenizer`), which must match the model.

        Example:
            >>> model.session_texts(torch.tensor([[2, 5, 6, 3, 2, 7, 3, 2]]))  # doctest: +SKIP
            ['home apparel mens shirts | cart']
        """
        tokenizer = page_tokenizer if page_tokenizer is not None else self.page_tokenizer
        if tokenizer is None:
            raise ValueError("session_texts needs the page names: pass page_tokenizer or set model.page_tokenizer")
        self.check_page_tokenizer(tokenizer)
        pages = page_vocabulary(tokenizer)
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        page, separated = self._history_layout(input_ids, attention_mask)
        texts = []
        for ids, is_page, opens_session in zip(input_ids.tolist(), page.tolist(), separated.tolist()):
            words = []
            for token, keep, separate in zip(ids, is_page, opens_session):
                if separate:
                    words.append(SESSION_SEPARATOR)
                if keep:
                    words.append(self._token_text(token, pages[token], "[UNK]"))
            texts.append(" ".join(words))
        return texts

    def _encoder_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder word pieces `[CLS] history [SEP]` of each row and their mask, right-padded, built
        with tensor operations from the page-to-word-piece table (no Python loop over tokens): a
        page's pieces, the separator's pieces before each non-empty session but the first, cut at
        `encoder_max_length`. Equals the encoder tokenizer on `session_texts`."""
        config = self.config
        if config.num_pages is None:
            raise ValueError("the model has no page vocabulary: call set_page_vocabulary first")
        device, table, counts = self.page_pieces.device, self.page_pieces, self.page_piece_counts
        special = torch.tensor(sorted(set(config.special_token_ids.values())), device=device)
        if not counts.index_fill(0, special, 0).any():
            raise ValueError("the page-to-word-piece table is empty: call set_page_vocabulary first")
        ids, mask = input_ids.to(device), attention_mask.to(device)
        page, separated = self._history_layout(ids, mask)
        separator = table[config.bos_token_id, : int(counts[config.bos_token_id])]
        page_counts = torch.where(page, counts[ids], 0)
        sizes = page_counts + separated * separator.numel()
        starts = sizes.cumsum(dim=1) - sizes
        budget = config.encoder_max_length - 2
        lengths = sizes.sum(dim=1).clamp(max=budget) + 2
        pieces = torch.zeros(ids.shape[0], int(lengths.max()), dtype=torch.long, device=device)
        separator_at, page_at = separated.nonzero(as_tuple=True), page.nonzero(as_tuple=True)
        page_ids = ids[page_at]
        for (rows, _), values, offsets, wanted in (
            (
                separator_at,
                separator.expand(len(separator_at[0]), -1),
                starts[separator_at],
                torch.full_like(separator_at[0], separator.numel()),
            ),
            (page_at, table[page_ids], starts[page_at] + separated[page_at] * separator.numel(), page_counts[page_at]),
        ):
            piece_index = torch.arange(values.shape[1], device=device)
            slots = offsets.unsqueeze(1) + piece_index
            chosen = (piece_index < wanted.unsqueeze(1)) & (slots < budget)
            pieces[rows.unsqueeze(1).expand_as(slots)[chosen], 1 + slots[chosen]] = values[chosen]
        pieces[:, 0] = config.encoder_cls_token_id
        pieces[torch.arange(ids.shape[0], device=device), lengths - 1] = config.encoder_sep_token_id
        return pieces, (torch.arange(pieces.shape[1], device=device) < lengths.unsqueeze(1)).long()


__all__ = ["HeTLMEncoderInputsMixin", "SESSION_SEPARATOR", "page_text", "page_vocabulary"]
