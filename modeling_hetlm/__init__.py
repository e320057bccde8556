"""HeTLM model: configuration, model, and their registration with the `transformers` Auto classes.

Importing this package registers `model_type="hetlm"` with `AutoConfig`, `AutoModel` (`HeTLMForBrowsing`)
and `AutoModelForCausalLM` (`HeTLMForCausalLM`: the same model, whose `generate` returns the prompt before
the new tokens, as the `text-generation` pipeline expects), so a saved folder loads with
`AutoConfig/AutoModel/AutoModelForCausalLM.from_pretrained(folder)` and `pipeline("text-generation",
model=folder)` works, without `trust_remote_code` (with it, through the code files saved in the folder). The
page tokenizer of a folder is a plain `PreTrainedTokenizerFast` (its tokenizer_config.json names the
class), so `AutoTokenizer.from_pretrained(folder)` needs no registration.

Example:
    >>> from transformers import AutoModel, pipeline  # doctest: +SKIP
    >>> import modeling_hetlm  # noqa: F401  (registers the Auto classes)  # doctest: +SKIP
    >>> model = AutoModel.from_pretrained("runs/hetlm")  # doctest: +SKIP
    >>> pipeline("text-generation", model="runs/hetlm")("[BOS] /home [EOS] [BOS]", do_sample=False)  # doctest: +SKIP
    [{'generated_text': '[BOS] /home [EOS] [BOS]/category/shoes cart'}]
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from .builders import build_encoder_tokenizer, build_hetlm, load_minilm_encoder, minilm_path
from .configuration_hetlm import HeTLMConfig, page_vocabulary_hash
from .encoder_inputs_hetlm import page_text
from .modeling_hetlm import (
    HeTLMForBrowsing,
    HeTLMForCausalLM,
    HeTLMGenerateOutput,
    HeTLMOutput,
    HeTLMRecommendations,
)

AutoConfig.register(HeTLMConfig.model_type, HeTLMConfig, exist_ok=True)
AutoModel.register(HeTLMConfig, HeTLMForBrowsing, exist_ok=True)
AutoModelForCausalLM.register(HeTLMConfig, HeTLMForCausalLM, exist_ok=True)

__all__ = [
    "HeTLMConfig",
    "HeTLMForBrowsing",
    "HeTLMForCausalLM",
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
