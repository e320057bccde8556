"""Names shared by every part of HeTLM: special tokens, outcome pages and the event schema.

Example:
    >>> from tokenization.constants import SPECIAL_TOKENS, EVENT_SCHEMA
    >>> SPECIAL_TOKENS
    ('[PAD]', '[UNK]', '[BOS]', '[EOS]')
    >>> EVENT_SCHEMA.names
    ['user_id', 'session_id', 'timestamp', 'page']
"""

from __future__ import annotations

import pyarrow as pa

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
BOS_TOKEN = "[BOS]"
EOS_TOKEN = "[EOS]"
# The order fixes the ids: [PAD]=0, [UNK]=1, [BOS]=2, [EOS]=3, then the pages.
SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)

OUTCOME_CART = "cart"
OUTCOME_PURCHASE = "purchase"
# The pages whose presence in a next session is an outcome; saved models record them (``outcome_pages``).
OUTCOME_PAGES: tuple[str, ...] = (OUTCOME_CART, OUTCOME_PURCHASE)

DEFAULT_MAX_INPUT_SESSIONS = 3

# What every reader yields as record batches. The simulator adds an optional ``segment: int32``
# column (the user's true latent segment), see SEGMENT_FIELD.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("page", pa.string()),
    ]
)
SEGMENT_FIELD = pa.field("segment", pa.int32())
