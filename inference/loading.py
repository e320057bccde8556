"""Load a saved model folder (a HeTLM model or a plain causal LM over page ids) and its page tokenizer.

Every path that serves a saved model (``hetlm evaluate``, ``hetlm generate``, the experiment's
evaluation stage) loads it here, so all of them make the same checks, in the same order, before
any weights are read: the folder exists, it has a ``config.json`` holding a JSON object, the model
is of the kind asked for, and a page tokenizer is saved beside it (or one is given). The weights must
be safetensors (pickles are refused) with the sha256 recorded in ``weights_sha256.json`` (see
:mod:`modeling_hetlm.weights_integrity_hetlm`), match the model's parameters exactly and be finite.
After loading, the tokenizer must be the page vocabulary the model was saved with
(:func:`check_page_tokenizer`: its fingerprint, and the outcome pages) and must not have more ids than
the model's embedding table. Missing or corrupted files raise an ``OSError``, wrong contents a
``ValueError``; each message starts with ``model folder PATH:``.

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
from safetensors import SafetensorError
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from modeling_hetlm import HeTLMForBrowsing, page_vocabulary_hash
from modeling_hetlm.encoder_inputs_hetlm import page_vocabulary
from modeling_hetlm.weights_integrity_hetlm import (
    check_finite_weights,
    check_loading_info,
    verify_weights_checksums,
    write_weights_checksums,
)
from tokenization.page_rules import OUTCOME_PAGES_KEY, PageRules, record_page_rules
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
        OSError: The weights (a pickle, a sha256 mismatch, missing or misshaped tensors) or the tokenizer do not load.
        ValueError: ``config.json`` is not a JSON object, the folder is not a HeTLM model while
            ``hetlm_only``, a weight is not finite, the tokenizer does not match the model, or the model cannot
            move to ``device``.

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
        model = HeTLMForBrowsing.from_pretrained(str(folder)) if hetlm else load_causal_lm(folder)
    except (OSError, ValueError, RuntimeError, SafetensorError) as error:
        # RuntimeError: torch's own load errors (e.g. a tensor of the wrong shape), one line here.
        raise OSError(f"{where}: cannot load ({first_line(error)})") from None
    try:
        check_page_tokenizer(model, tokenizer)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as error:
        raise ValueError(f"device {device}: {first_line(error)}") from None
    return model.eval(), tokenizer


def load_causal_lm(model_dir: str | os.PathLike) -> PreTrainedModel:
    """A plain causal LM from a saved folder, checked like a HeTLM: safetensors only, the weights' sha256,
    no missing, unexpected or misshaped weight, finite values.

    Raises:
        OSError: A pickle, a sha256 mismatch or weights that do not match the model (naming the file or keys).
        ValueError: A NaN or inf weight (naming the tensor).

    Example:
        >>> model = load_causal_lm("runs/default/lm")  # doctest: +SKIP
    """
    verify_weights_checksums(model_dir)
    model, info = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True, output_loading_info=True)
    check_loading_info(info)
    check_finite_weights(model)
    return model


def load_pretrained_lm(model_dir: str | os.PathLike, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The single LM saved in ``model_dir`` (checked by :func:`load_causal_lm`) for training on data tokenised
    by ``tokenizer``, which must be the LM's page vocabulary (:func:`check_page_tokenizer`).

    Raises:
        OSError: The folder or its weights do not load (see :func:`load_causal_lm`).
        ValueError: A non-finite weight, or ``tokenizer`` is not the LM's page vocabulary.

    Example:
        >>> lm = load_pretrained_lm("runs/default/lm", tokenizer)  # doctest: +SKIP
    """
    where = f"model folder {model_dir}"
    read_model_config(model_dir)
    try:
        model = load_causal_lm(model_dir)
    except (OSError, RuntimeError, SafetensorError) as error:
        raise OSError(f"{where}: cannot load ({first_line(error)})") from None
    try:
        check_page_tokenizer(model, tokenizer)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return model


def record_page_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Record in a plain causal LM's config (saved in ``config.json``) the fingerprint of ``tokenizer``'s page
    vocabulary (``page_vocabulary_hash``) and its page rules (``outcome_pages``, ``url_normalization``), for
    :func:`check_page_tokenizer`. A HeTLM records both itself (``modeling_hetlm.build_hetlm``).

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> tokenizer = build_page_tokenizer(["home", "cart"])
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=6, hidden_size=8, intermediate_size=8,
        ...                                      num_hidden_layers=1, num_attention_heads=1))
        >>> record_page_vocabulary(model, tokenizer)
        >>> model.config.outcome_pages
        {'cart': [], 'purchase': []}
    """
    model.config.page_vocabulary_hash = page_vocabulary_hash(page_vocabulary(tokenizer))
    record_page_rules(model.config, tokenizer)


def save_causal_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, model_dir: str | os.PathLike) -> None:
    """Save a plain causal LM as :func:`load_model_folder` expects it: the page vocabulary recorded in its config
    (:func:`record_page_vocabulary`), safetensors weights and their ``weights_sha256.json``, the page tokenizer.

    Example:
        >>> save_causal_lm(model, tokenizer, "runs/default/lm")  # doctest: +SKIP
    """
    record_page_vocabulary(model, tokenizer)
    model.save_pretrained(str(model_dir))
    write_weights_checksums(model_dir)
    tokenizer.save_pretrained(str(model_dir))


def check_page_tokenizer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` is the page vocabulary ``model`` was saved with, made with the same
    page rules (outcome pages, URL normalisation).

    The vocabulary check compares the fingerprint of the tokens in id order (so the same pages in another
    order fail too): a HeTLM's ``num_pages``/``page_vocabulary_hash``, a plain causal LM's
    ``page_vocabulary_hash`` when its config has one (older LMs only get the size check). The page rules
    are compared when the config records them (``outcome_pages``). Whatever is recorded, the tokenizer must not
    have more ids than the model's embedding table.

    Example:
        >>> from transformers import LlamaConfig, LlamaForCausalLM
        >>> from tokenization.page_tokenizer import build_page_tokenizer
        >>> model = LlamaForCausalLM(LlamaConfig(vocab_size=6, hidden_size=8, intermediate_size=8,
        ...                                      num_hidden_layers=1, num_attention_heads=1))
        >>> record_page_vocabulary(model, build_page_tokenizer(["home", "cart"]))
        >>> try:
        ...     check_page_tokenizer(model, build_page_tokenizer(["home", "home", "cart"]))  # ids swapped
        ... except ValueError as error:
        ...     print(str(error)[:44])
        the page tokenizer does not match the model:
    """
    if is_hetlm(model):
        model.check_page_tokenizer(tokenizer)
        model_ids = model.vocabulary_size
    else:
        recorded = getattr(model.config, "page_vocabulary_hash", None)
        fingerprint = page_vocabulary_hash(page_vocabulary(tokenizer))
        if recorded is not None and fingerprint != recorded:
            raise ValueError(
                f"the page tokenizer does not match the model: its fingerprint is {fingerprint[:12]}, the model "
                f"was saved with {str(recorded)[:12]} (another data set's tokenizer, or the pages in another order)"
            )
        model_ids = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > model_ids:
        raise ValueError(
            f"the page tokenizer has {len(tokenizer)} pages but the model only {model_ids} (a model of another "
            "data set: pretrain on this prepared dataset first)"
        )
    if getattr(model.config, OUTCOME_PAGES_KEY, None) is not None:
        recorded_rules = PageRules.from_dict(model.config.to_dict())
        tokenizer_rules = PageRules.of_tokenizer(tokenizer)
        if recorded_rules != tokenizer_rules:
            raise ValueError(
                f"the page tokenizer's page rules (outcome pages, URL normalisation) {tokenizer_rules.to_dict()} are "
                f"not the model's {recorded_rules.to_dict()}"
            )


def first_line(error: BaseException) -> str:
    """The first line of an error's message (library errors often span many), else the error's type.

    Example:
        >>> first_line(OSError("no weights\\nmore details")), first_line(KeyError())
        ('no weights', 'KeyError')
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
