"""Load a saved model folder (a HeTLM model or a plain causal LM over page ids) and its page tokenizer.

Every path that serves a saved model (``hetlm evaluate``, ``hetlm generate``, the experiment's
evaluation stage) loads it here, so all of them make the same checks, in the same order, before
any weights are read: the folder exists, it has a ``config.json`` holding a JSON object, the model
is of the kind asked for, and a page tokenizer is saved beside it (or one is given). After loading,
the tokenizer must not have more ids than the model's embedding table. Missing files raise an
``OSError``, wrong contents a ``ValueError``; each message starts with ``model folder PATH:``.

Example:
    >>> import tempfile
    >>> try:
    ...     load_model_folder(tempfile.mkdtemp())
    ... except FileNotFoundError as error:
    ...     print(str(error).split(": ", 1)[1])
    no config.json (not a saved model folder)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing
from tokenization.page_tokenizer import PageTokenizer

HETLM_MODEL_TYPE = "hetlm"


def is_hetlm(model: PreTrainedModel) -> bool:
    """Whether ``model`` is a HeTLM model (routed to clusters) rather than a plain causal LM.

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> is_hetlm(LlamaForCausalLM(LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8,
        ...                                       num_hidden_layers=1, num_attention_heads=1)))
        False
    """
    return getattr(model.config, "model_type", None) == HETLM_MODEL_TYPE


def read_model_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict, with the folder checked first.

    Raises:
        FileNotFoundError: No such folder, or no ``config.json`` in it.
        ValueError: ``config.json`` is not a JSON object.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "config.json").write_text('{"model_type": "llama"}')
        >>> read_model_config(folder)["model_type"]
        'llama'
    """
    folder = Path(model_dir)
    where = f"model folder {folder}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: no such folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{where}: no config.json (not a saved model folder)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{where}: config.json is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where}: config.json is not a JSON object")
    return config


def load_model_folder(
    model_dir: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    hetlm_only: bool = False,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a saved model and the page tokenizer saved beside it, on ``device`` and in eval mode.

    Args:
        model_dir: The saved folder: a ``HeTLMForBrowsing`` (``model_type`` ``"hetlm"``) or any
            ``transformers`` causal LM over page ids.
        device: Where the model goes.
        hetlm_only: Refuse a folder that is not a HeTLM model.
        tokenizer: The page tokenizer to use when the folder has none saved (``None``: the folder
            must have one). A tokenizer saved in the folder is always preferred.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        FileNotFoundError: No such folder, no ``config.json``, or no page tokenizer and none given.
        OSError: The weights or the tokenizer do not load.
        ValueError: ``config.json`` is not a JSON object, the folder is not a HeTLM model while
            ``hetlm_only``, the tokenizer has more ids than the model, or the model cannot move to ``device``.

    Example:
        >>> model, tokenizer = load_model_folder("runs/default/hetlm", hetlm_only=True)  # doctest: +SKIP
    """
    folder = Path(model_dir)
    where = f"model folder {folder}"
    model_type = read_model_config(folder).get("model_type")
    hetlm = model_type == HETLM_MODEL_TYPE
    if hetlm_only and not hetlm:
        raise ValueError(f"{where}: model_type is {model_type!r}, not a HeTLM model ({HETLM_MODEL_TYPE!r})")
    has_tokenizer = (folder / "tokenizer.json").is_file()
    if not has_tokenizer and tokenizer is None:
        raise FileNotFoundError(f"{where}: no page tokenizer (tokenizer.json) saved beside the model")
    try:
        if has_tokenizer:
            tokenizer = PageTokenizer.from_pretrained(str(folder))
        model_class = HeTLMForBrowsing if hetlm else AutoModelForCausalLM
        model = model_class.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise OSError(f"{where}: cannot load ({first_line(error)})") from None
    model_ids = model.vocabulary_size if hetlm else model.get_input_embeddings().num_embeddings
    if len(tokenizer) > model_ids:
        raise ValueError(f"{where}: the page tokenizer has {len(tokenizer)} pages but the model only {model_ids}")
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(f"device {device}: {first_line(error)}") from None
    return model.eval(), tokenizer


def first_line(error: BaseException) -> str:
    """The first line of an error's message (library errors often span many), else the error's type.

    Example:
        >>> first_line(OSError("no weights\\nmore details")), first_line(KeyError())
        ('no weights', 'KeyError')
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
