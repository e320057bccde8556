"""HeTLM training-step time against its FLOP floor, training tokens/s, and the share of this CPU's matmul peak.

The floor of one HeTLM step over a batch is one forward+backward of every row under its assigned
predictor plus K-1 forward-only passes of every row under the other predictors (for L1). Measured in
the same run on the same batch: a single-LM forward+backward (``t_fb``) and a single-LM no-grad
forward (``t_f``) of the whole batch, so the floor is ``t_fb + (K-1) * t_f``; the HeTLM step is the
model's forward (with precomputed user embeddings, as in training) plus the backward of
``critic_loss + selector_loss``. Optimizer steps are left out of all three. Target: ratio <= 1.15.

The FLOP rate uses the usual estimate: per token and forward, 2 x the matmul parameters (non-embedding
weights plus the LM head) plus 2 x layers x sequence x hidden for causal attention; a backward costs
2 forwards. The peak is a large fp32 (or bf16 with ``--bf16``) matmul's GFLOP/s measured here.

Example:
    $ python benchmarks/train_step.py --family opt --size small --clusters 6 --batch-size 16 --seq-len 128
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from collections.abc import Callable

import torch
from transformers import AutoModelForCausalLM

from modeling_hetlm import HeTLMConfig, HeTLMForBrowsing
from trainers.model_sizes import FAMILIES, SIZES, build_causal_lm_config, cpu_supports_bf16

TINY_ENCODER = {
    "model_type": "bert",
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
}


def interleaved_seconds(
    functions: dict[str, Callable[[], object]], iterations: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so that load from other processes hits all alike."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(iterations):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def matmul_peak_gflops(size: int, dtype: torch.dtype, iterations: int) -> float:
    """The best GFLOP/s of a ``size``-cubed matmul over ``iterations`` runs."""
    left, right = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    seconds = min(interleaved_seconds({"matmul": lambda: left @ right}, iterations)["matmul"])
    return 2 * size**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=FAMILIES, default="opt")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--clusters", type=int, default=6, help="K (default 6, the paper's initial K)")
    parser.add_argument(
        "--vocab-size", type=int, default=1100, help="page vocabulary (default ~ the simulator's store)"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument(
        "--bf16", action="store_true", help=f"bf16 autocast (native on this CPU: {cpu_supports_bf16()})"
    )
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()
    torch.manual_seed(0)

    lm_config = build_causal_lm_config(
        args.family,
        args.size,
        vocab_size=args.vocab_size,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        max_position_embeddings=max(512, args.seq_len),
    )
    lm = AutoModelForCausalLM.from_config(lm_config)
    # HeTLMConfig adopts the predictor config object it is given (resetting its attention
    # implementation), so it gets a copy: the single LM must keep the predictors' attention kernel.
    config = HeTLMConfig(
        predictor_config=copy.deepcopy(lm_config),
        num_clusters=args.clusters,
        encoder_config=TINY_ENCODER,
        encoder_max_length=256,
        selector_hidden_sizes=[256],
    )
    model = HeTLMForBrowsing.from_single_lm(config, lm)
    kernels = {
        lm.config._attn_implementation,
        *(predictor.config._attn_implementation for predictor in model.predictors),
    }
    if len(kernels) != 1:
        raise RuntimeError(f"the single LM and the predictors use different attention implementations: {kernels}")
    model.train()
    lm.train()

    input_ids = torch.randint(4, args.vocab_size, (args.batch_size, args.seq_len))
    attention_mask = torch.ones_like(input_ids)
    embeddings = torch.nn.functional.normalize(torch.randn(args.batch_size, config.embedding_dim), dim=-1)
    # Route the batch evenly over the K clusters, as a trained selector would spread users.
    with torch.no_grad():
        model.selector[-1].weight.zero_()
        model.selector[-1].bias.copy_(torch.zeros(args.clusters))
    spread = torch.arange(args.batch_size) % args.clusters
    model.selector.register_forward_hook(
        lambda module, inputs, logits: (
            logits + 10.0 * torch.nn.functional.one_hot(spread[: logits.shape[0]], args.clusters)
        )
    )
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()

    def single_forward_backward():
        with autocast:
            loss = lm(input_ids=input_ids, attention_mask=attention_mask, labels=input_ids).loss
        loss.backward()
        lm.zero_grad(set_to_none=True)

    def single_forward():
        with torch.no_grad(), autocast:
            lm(input_ids=input_ids, attention_mask=attention_mask)

    def hetlm_step():
        with autocast:
            output = model(input_ids=input_ids, attention_mask=attention_mask, user_embeddings=embeddings)
        output.loss.backward()
        model.zero_grad(set_to_none=True)

    times = interleaved_seconds(
        {"fb": single_forward_backward, "f": single_forward, "hetlm": hetlm_step}, args.iterations
    )
    peak = matmul_peak_gflops(args.matmul_size, torch.bfloat16 if args.bf16 else torch.float32, 5)
    # The minimum is the estimate least disturbed by other processes; the median is shown beside it.
    t_fb, t_f, t_h = (min(times[name]) for name in ("fb", "f", "hetlm"))
    floor = t_fb + (args.clusters - 1) * t_f
    median_fb, median_f, median_h = (statistics.median(times[name]) for name in ("fb", "f", "hetlm"))
    median_ratio = median_h / (median_fb + (args.clusters - 1) * median_f)

    tokens = args.batch_size * args.seq_len
    matmul_parameters = lm.num_parameters(exclude_embeddings=True) + lm_config.vocab_size * lm_config.hidden_size
    forward_flops_per_token = (
        2 * matmul_parameters + 2 * lm_config.num_hidden_layers * args.seq_len * lm_config.hidden_size
    )
    hetlm_flops = tokens * forward_flops_per_token * (3 + (args.clusters - 1))
    achieved = hetlm_flops / t_h / 1e9

    print(
        f"device: CPU ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads, "
        f"{'bf16 autocast' if args.bf16 else 'fp32'}"
    )
    print(
        f"predictor: {args.family}/{args.size}, {lm.num_parameters():,} parameters, {lm.config._attn_implementation} "
        f"attention; K={args.clusters}; batch {args.batch_size} x {args.seq_len} tokens"
    )
    print(f"(best of {args.iterations} interleaved rounds)")
    print(f"single LM forward+backward      {t_fb * 1e3:9.1f} ms")
    print(f"single LM forward only          {t_f * 1e3:9.1f} ms")
    print(f"FLOP floor t_fb + (K-1) t_f     {floor * 1e3:9.1f} ms")
    print(f"HeTLM step (forward+backward)   {t_h * 1e3:9.1f} ms")
    print(f"ratio HeTLM / floor             {t_h / floor:9.3f}   (target <= 1.15; with medians {median_ratio:.3f})")
    print(f"training tokens/s (HeTLM)       {tokens / t_h:9.0f}")
    print(f"matmul peak ({args.matmul_size}^3)         {peak:9.1f} GFLOP/s")
    print(f"HeTLM achieved                  {achieved:9.1f} GFLOP/s = {achieved / peak:.1%} of peak")


if __name__ == "__main__":
    main()
