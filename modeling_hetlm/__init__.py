"""HeTLM model: configuration, model, and their registration with the `transformers` Auto classes.

Importing this package registers `model_type="hetlm"` with `AutoConfig` and `AutoModel`, so a saved
folder loads with `AutoConfig/AutoModel.from_pretrained(folder)` without `trust_remote_code`. The
page tokenizer of a folder is a plain `PreTrainedTokenizerFast` (its tokenizer_config.json names the
class), so `AutoTokenizer.from_pretrained(folder)` needs no registration; `AutoModelForCausalLM` is
not registered because HeTLM's forward returns losses, not next-token logits.

Example:
    >>> from transformers import AutoModel  # doctest: +SKIP
    >>> import modeling_hetlm  # noqa: F401  (registers the Auto classes)  # doctest: +SKIP
    >>> model = AutoModel.from_pretrained("runs/hetlm")  # doctest: +SKIP
"""

from transformers import AutoConfig, AutoModel

from .builders import build_encoder_tokenizer, build_hetlm, load_minilm_encoder, minilm_path
from .configuration_hetlm import HeTLMConfig, page_vocabulary_hash
from .encoder_inputs_hetlm import page_text
from .modeling_hetlm import HeTLMForBrowsing, HeTLMGenerateOutput, HeTLMOutput, HeTLMRecommendations

AutoConfig.register(HeTLMConfig.model_type, HeTLMConfig, exist_ok=True)
AutoModel.register(HeTLMConfig, HeTLMForBrowsing, exist_ok=True)

__all__ = [
    "HeTLMConfig",
    "HeTLMForBrowsing",
    "HeTLMGenerateOutput",
    "HeTLMOutput",
    "HeTLMRecommendations",
    "build_encoder_tokenizer",
    "build_hetlm",
    "load_minilm_encoder",
    "minilm_path",
    "page_text",
    "page_vocabulary_hash",
]
