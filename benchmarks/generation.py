"""Time next-session generation for N users: HeTLM (K=3, K=6) against (a) one predictor of the same
size serving everyone and (b) one single LM of the same family with at least K times the parameters.

All systems get the same prompts (each simulated user's input sessions then `[BOS]`, left-padded
batches in the same order), greedy decoding and the same `max_new_tokens`. The weights are random
(the speed does not depend on them), so every session is forced to the same length with
`min_new_tokens = max_new_tokens` (an untrained model would otherwise stop at random places, and the
systems would not generate the same number of tokens). HeTLM's selector is fitted to K-means
clusters of the users' embeddings before timing, so the K predictors serve balanced clusters as a
trained model's would (a random selector sends almost everyone to one predictor).

HeTLM serves the users under one of two schedules: `route-first` (default; embed and route every
user, then give each predictor full batches of its own users, as a server with one queue per
cluster would) or `per-batch` (`HeTLMForBrowsing.generate` on each mixed batch, which splits it into
K smaller batches). (a) and (b) generate the same batches of `--batch-size` users.

Printed first: the forward FLOPs per user of the encoder and of one predictor (2 x non-embedding
parameters x tokens). Their ratio is what routing costs at equal hardware efficiency, so it says
where the routing target can be met: with the `paper` shapes the encoder's arithmetic is 7-9% of a
predictor's; with the `cpu` preset (4M-parameter predictors) all-MiniLM-L6-v2 alone does about 8x a
predictor's arithmetic, and no implementation can route there for 10%.

Printed per system: seconds, users/s and tokens/s. For HeTLM also the routing overhead: all the
serving time outside the predictors' own `generate` calls (the encoder, the selector, the
regrouping of users per cluster and back), as a share of (a)'s time (target <= 10%), the encoder's
part of it, and the speed-up over (b) (target >= 4x).

The encoder is all-MiniLM-L6-v2 (its real size and weights) unless `--encoder` says otherwise.
Presets give the predictor and the large LM per family: `paper` (default; the paper's shapes:
OPT-350M vs OPT-2.7B, Qwen2.5-0.5B vs Qwen2.5-7B, SmolLM2-360M vs a Llama-3.2-3B shape) and `cpu`
(4M vs 27M parameters, for a quick look). The default dtype is bfloat16: on a GPU, and on a CPU
with AVX512-BF16 or AMX, its matrix products run 3-5x faster than float32 (measured here: 650-710
vs 145-190 GFLOP/s on 2 cores). On a 2-core CPU the `paper` preset takes about 8 minutes for 256
users and about 36 for 2,000 (most of it the 2.5B-parameter (b)); the `cpu` preset with
`--dtype float32` about 3 minutes with `--encoder tiny`. On a CPU shared with other jobs
`--threads 1` avoids thread contention and `--repeats 3` reports the fastest of three passes.
On a GPU, eager `generate` at these sizes is bound by per-step launch overhead rather than
arithmetic, so (b) is only 1-2x slower than (a) and K predictors pay K times the overhead.

Example:
    HF_HUB_OFFLINE=1 python benchmarks/generation.py --users 2000 --clusters 3 6 --threads 2
    HF_HUB_OFFLINE=1 python benchmarks/generation.py --family qwen2 --batch-size 256   # on a GPU
    HF_HUB_OFFLINE=1 python benchmarks/generation.py --users 200 --preset cpu --dtype float32 --encoder tiny \
        --json runs/bench.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from sklearn.cluster import KMeans
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from inference.prompts import build_prompt, pad_sequences
from modeling_hetlm import HeTLMForBrowsing, build_encoder_tokenizer, build_hetlm, minilm_path
from tokenization.examples import ExampleOptions, build_examples
from tokenization.page_tokenizer import build_page_tokenizer
from tokenization.simulator import SimulatorConfig, simulate_events


@dataclass(frozen=True)
class LMShape:
    """Width and depth of a causal LM, turned into a `transformers` config for a family.

    Example:
        >>> LMShape(hidden=64, layers=2, heads=4, kv_heads=4, ffn=128).config("opt", vocab_size=100)["ffn_dim"]
        128
    """

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int

    def config(self, family: str, vocab_size: int) -> dict:
        """The config dict of this shape in `family` ("opt", "qwen2" or "llama")."""
        common = {
            "model_type": family,
            "vocab_size": vocab_size,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
        }
        if family == "opt":
            return {**common, "ffn_dim": self.ffn, "word_embed_proj_dim": self.hidden, "max_position_embeddings": 2048}
        if family in ("qwen2", "llama"):
            return {
                **common,
                "num_key_value_heads": self.kv_heads,
                "intermediate_size": self.ffn,
                "max_position_embeddings": 4096,
                "tie_word_embeddings": True,
            }
        raise ValueError(f"family must be opt, qwen2 or llama, got {family!r}")


# (predictor, large single LM) per preset and family. The large LM has at least 6x the predictor's
# parameters, so it is "at least K times" for K=3 and K=6 (checked at run time).
PRESETS: dict[str, dict[str, tuple[LMShape, LMShape]]] = {
    "cpu": {
        family: (
            LMShape(hidden=256, layers=4, heads=4, kv_heads=4, ffn=1024),
            LMShape(hidden=512, layers=8, heads=8, kv_heads=8, ffn=2048),
        )
        for family in ("opt", "qwen2", "llama")
    },
    "paper": {
        "opt": (LMShape(1024, 24, 16, 16, 4096), LMShape(2560, 32, 32, 32, 10240)),  # OPT-350M, OPT-2.7B
        "qwen2": (LMShape(896, 24, 14, 2, 4864), LMShape(3584, 28, 28, 4, 18944)),  # Qwen2.5-0.5B, -7B
        "llama": (LMShape(960, 32, 15, 5, 2560), LMShape(3072, 28, 24, 8, 8192)),  # SmolLM2-360M, Llama-3.2-3B
    },
}
TINY_ENCODER = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 256,
}


@dataclass
class Timing:
    """One system's figures on the whole population (HeTLM's routing, encoder and cluster sizes too).

    Example:
        >>> Timing("(a) one predictor", parameters=4_000_000, seconds=2.0, users=100, new_tokens=1600).users_per_second
        50.0
    """

    system: str
    parameters: int
    seconds: float
    users: int
    new_tokens: int
    routing_seconds: float | None = None
    encoder_seconds: float | None = None
    cluster_sizes: list[int] | None = None

    @property
    def users_per_second(self) -> float:
        return self.users / self.seconds


def simulated_prompts(num_users: int, seed: int, work_dir: Path) -> tuple[list[list[int]], PreTrainedTokenizerFast]:
    """Prompts of `num_users` simulated users (input sessions then `[BOS]`, cut to the tokenizer's
    `model_max_length` by the prompt builder of `hetlm generate`) and their page tokenizer.

    Example:
        >>> prompts, tokenizer = simulated_prompts(50, seed=0, work_dir=Path(tempfile.mkdtemp()))
        >>> prompts[0][-1] == tokenizer.bos_token_id
        True
    """
    events = simulate_events(SimulatorConfig(num_users=num_users, seed=seed))
    options = ExampleOptions(test_fraction=0.0, validation_fraction=0.0, max_session_length_percentile=None)
    built = build_examples([events], options, work_dir=work_dir)
    tokenizer = build_page_tokenizer(built.train_page_counts)
    users = built.splits["train"]
    prompts = [build_prompt(tokenizer, sessions, tokenizer.model_max_length) for sessions in users["input_sessions"]]
    return prompts, tokenizer


def left_padded_batches(
    prompts: list[list[int]], batch_size: int, pad_id: int, device: torch.device
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """`(input_ids, attention_mask)` batches of `batch_size` prompts, left-padded with `pad_id`.

    Example:
        >>> ids, mask = left_padded_batches([[2, 5], [2, 6, 7]], 2, pad_id=0, device=torch.device("cpu"))[0]
        >>> ids.tolist(), mask.tolist()
        ([[0, 2, 5], [2, 6, 7]], [[0, 1, 1], [1, 1, 1]])
    """
    batches = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = pad_sequences(prompts[start : start + batch_size], pad_id, side="left")
        batches.append((ids.to(device), mask.to(device)))
    return batches


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so timings include it.

    Example:
        >>> synchronize(torch.device("cpu"))
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StopWatch:
    """Wraps a callable and sums the wall-clock seconds spent in it (device work included).

    Example:
        >>> watch = StopWatch(sum, torch.device("cpu"))
        >>> watch([1, 2]), watch.calls
        (3, 1)
    """

    def __init__(self, function: Callable, device: torch.device):
        self.function, self.device = function, device
        self.seconds, self.calls = 0.0, 0

    def __call__(self, *args, **kwargs):
        synchronize(self.device)
        start = time.perf_counter()
        result = self.function(*args, **kwargs)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return result


def count_parameters(module: torch.nn.Module) -> int:
    """Distinct parameters (tied weights counted once).

    Example:
        >>> count_parameters(torch.nn.Linear(3, 2))
        8
    """
    return sum(parameter.numel() for parameter in {id(p): p for p in module.parameters()}.values())


def non_embedding_parameters(module: torch.nn.Module) -> int:
    """Distinct parameters outside embedding tables: about half the FLOPs per token of a transformer.

    Example:
        >>> non_embedding_parameters(torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)))
        10
    """
    tables = {id(p) for m in module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values() if id(p) not in tables)


def print_arithmetic(model: HeTLMForBrowsing, prompts: list[list[int]], batches, max_new_tokens: int) -> None:
    """Print the forward FLOPs per user (about 2 x non-embedding parameters x tokens) of the encoder and
    of one predictor: their ratio is what the routing overhead costs at equal hardware efficiency.

    Example:
        >>> print_arithmetic(model, prompts, batches, 16)  # doctest: +SKIP
    """
    pieces = sum(int(model._encoder_inputs(ids, mask)[1].sum()) for ids, mask in batches) / len(prompts)
    page_tokens = sum(len(prompt) for prompt in prompts) / len(prompts) + max_new_tokens
    encoder = 2 * non_embedding_parameters(model.encoder) * pieces
    predictor = 2 * non_embedding_parameters(model.predictors[0]) * page_tokens
    print(
        f"FLOPs per user (2 x non-embedding parameters x tokens): encoder {encoder / 1e9:.2f} G "
        f"({pieces:.0f} word pieces), one predictor {predictor / 1e9:.2f} G ({page_tokens:.0f} page tokens): "
        f"the encoder's arithmetic is {100 * encoder / predictor:.1f}% of (a)'s",
        flush=True,
    )


def fit_selector_to_kmeans(model: HeTLMForBrowsing, embeddings: torch.Tensor, seed: int, steps: int = 300) -> None:
    """Train the selector (cross-entropy) to reproduce K-means clusters of `embeddings`.

    Example:
        >>> fit_selector_to_kmeans(model, model.embed_users(ids, mask), seed=0)  # doctest: +SKIP
    """
    k = model.config.num_clusters
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(embeddings.float().cpu().numpy())
    targets = torch.as_tensor(labels, dtype=torch.long, device=embeddings.device)
    optimizer = torch.optim.Adam(model.selector.parameters(), lr=1e-2)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            logits = model.selector(embeddings.to(model.selector[-1].weight.dtype)).float()
            torch.nn.functional.cross_entropy(logits, targets).backward()
            optimizer.step()


def time_lm(
    name: str, lm: PreTrainedModel, batches, generation_config: GenerationConfig, device: torch.device, repeats: int
) -> Timing:
    """Generate for every batch with one causal LM; the fastest of `repeats` passes.

    Example:
        >>> time_lm("(a)", lm, batches, GenerationConfig(max_new_tokens=4), torch.device("cpu"), 1)  # doctest: +SKIP
    """
    lm.generate(input_ids=batches[0][0], attention_mask=batches[0][1], generation_config=generation_config)  # warm-up
    passes = []
    for _ in range(repeats):
        watch, new_tokens = StopWatch(lm.generate, device), 0
        for ids, mask in batches:
            sequences = watch(input_ids=ids, attention_mask=mask, generation_config=generation_config)
            new_tokens += (sequences.shape[1] - ids.shape[1]) * ids.shape[0]
        passes.append(
            Timing(name, count_parameters(lm), watch.seconds, sum(ids.shape[0] for ids, _ in batches), new_tokens)
        )
    return min(passes, key=lambda timing: timing.seconds)


def serve_per_batch(model: HeTLMForBrowsing, prompts, batches, generation_kwargs: dict) -> tuple[int, torch.Tensor]:
    """`model.generate` on each mixed batch (it routes and regroups the batch's rows per cluster).
    Returns the number of new tokens and the cluster of every user.

    Example:
        >>> new_tokens, clusters = serve_per_batch(model, prompts, batches, {"max_new_tokens": 4})  # doctest: +SKIP
    """
    new_tokens, clusters = 0, []
    for ids, mask in batches:
        new, batch_clusters = model.generate(ids, mask, return_clusters=True, **generation_kwargs)
        new_tokens += new.numel()
        clusters.append(batch_clusters)
    return new_tokens, torch.cat(clusters)


def serve_route_first(model: HeTLMForBrowsing, prompts, batches, generation_kwargs: dict) -> tuple[int, torch.Tensor]:
    """Embed and route every user first, then give each predictor full batches of its own users
    (as a server with one queue per cluster would). Returns the new tokens and the clusters.

    Example:
        >>> new_tokens, clusters = serve_route_first(model, prompts, batches, {"max_new_tokens": 4})  # doctest: +SKIP
    """
    embeddings = torch.cat([model.embed_users(ids, mask) for ids, mask in batches])
    clusters = model.assign_clusters(embeddings)
    batch_size, pad_id, device = batches[0][0].shape[0], model.config.pad_token_id, batches[0][0].device
    new_tokens = 0
    for cluster in clusters.unique().tolist():
        rows = (clusters == cluster).nonzero().squeeze(1).tolist()
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            ids, mask = left_padded_batches([prompts[row] for row in chunk], batch_size, pad_id, device)[0]
            new_tokens += model.generate(ids, mask, user_embeddings=embeddings[chunk], **generation_kwargs).numel()
    return new_tokens, clusters


SCHEDULES = {"route-first": serve_route_first, "per-batch": serve_per_batch}


def time_hetlm(
    model: HeTLMForBrowsing,
    prompts,
    batches,
    generation_kwargs: dict,
    device: torch.device,
    schedule: str,
    repeats: int,
) -> Timing:
    """Serve every user with HeTLM under `schedule`, timing the predictors' and the encoder's share;
    the fastest of `repeats` passes.

    Example:
        >>> time_hetlm(  # doctest: +SKIP
        ...     model, prompts, batches, {"max_new_tokens": 4}, torch.device("cpu"), "route-first", 1
        ... )
    """
    model.generate(batches[0][0], batches[0][1], **generation_kwargs)  # warm-up
    passes = []
    for _ in range(repeats):
        predictor_watches = [StopWatch(predictor.generate, device) for predictor in model.predictors]
        encoder_watch = StopWatch(model.embed_users, device)
        for predictor, watch in zip(model.predictors, predictor_watches):
            predictor.generate = watch
        model.embed_users = encoder_watch
        total = StopWatch(SCHEDULES[schedule], device)
        try:
            new_tokens, clusters = total(model, prompts, batches, generation_kwargs)
        finally:
            for predictor in model.predictors:
                del predictor.generate
            del model.embed_users
        predictors_seconds = sum(watch.seconds for watch in predictor_watches)
        passes.append(
            Timing(
                f"HeTLM K={model.config.num_clusters}",
                count_parameters(model),
                total.seconds,
                len(prompts),
                new_tokens,
                routing_seconds=total.seconds - predictors_seconds,
                encoder_seconds=encoder_watch.seconds,
                cluster_sizes=torch.bincount(clusters.cpu(), minlength=model.config.num_clusters).tolist(),
            )
        )
    return min(passes, key=lambda timing: timing.seconds)


def build_model(
    tokenizer, family: str, shape: LMShape, num_clusters: int, encoder: str, seed: int
) -> HeTLMForBrowsing:
    """A HeTLM with random predictors of `shape` and the encoder `encoder`: "minilm" (all-MiniLM-L6-v2's
    weights and tokenizer), "minilm-shape" (its config and tokenizer, random weights: the same cost,
    for machines without the bundled weights) or "tiny" (2 layers, 32-d, random).

    Example:
        >>> model = build_model(tokenizer, "opt", PRESETS["cpu"]["opt"][0], 3, "tiny", seed=0)  # doctest: +SKIP
    """
    torch.manual_seed(seed)
    kwargs = {"num_clusters": num_clusters, "predictor_config": shape.config(family, len(tokenizer))}
    if encoder == "minilm":
        return build_hetlm(tokenizer, **kwargs).eval()
    if encoder == "minilm-shape":
        return build_hetlm(
            tokenizer, encoder_tokenizer=AutoTokenizer.from_pretrained(str(minilm_path())), **kwargs
        ).eval()
    pages = tokenizer.convert_ids_to_tokens(list(range(4, len(tokenizer))))
    encoder_tokenizer = build_encoder_tokenizer(pages, vocab_size=400)
    kwargs.update(encoder_config={**TINY_ENCODER, "vocab_size": len(encoder_tokenizer)}, encoder_max_length=256)
    return build_hetlm(tokenizer, encoder_tokenizer=encoder_tokenizer, **kwargs).eval()


def run(args: argparse.Namespace) -> list[Timing]:
    """Build the population and the systems, time them all, print the table; returns the timings
    ((a), HeTLM for each K, (b)).

    Example:
        >>> run(argparse.Namespace(users=100, clusters=[3], encoder="tiny", ...))  # doctest: +SKIP
    """
    device = torch.device(args.device)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    with tempfile.TemporaryDirectory() as work_dir:
        prompts, tokenizer = simulated_prompts(args.users, args.seed, Path(work_dir))
    predictor_shape, large_shape = PRESETS[args.preset][args.family]
    batches = left_padded_batches(prompts, args.batch_size, tokenizer.pad_token_id, device)
    generation_kwargs = {
        "do_sample": False,
        "num_beams": 1,
        "max_new_tokens": args.max_new_tokens,
        "min_new_tokens": args.max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    generation_config = GenerationConfig(**generation_kwargs)
    lengths = [len(prompt) for prompt in prompts]
    print(
        f"{len(prompts):,} users, {len(tokenizer):,} page ids, prompt length mean {sum(lengths) / len(lengths):.1f} "
        f"max {max(lengths)}, {args.max_new_tokens} new tokens each, batches of {args.batch_size} ({args.schedule}), "
        f"{args.family} preset {args.preset!r}, encoder {args.encoder}, "
        f"device {device}, {args.dtype}, {torch.get_num_threads()} threads"
    )

    timings: list[Timing] = []
    with torch.no_grad():
        with device:  # parameters are created (and randomly initialised) on the device
            models = {
                k: build_model(tokenizer, args.family, predictor_shape, k, args.encoder, args.seed).to(dtype)
                for k in args.clusters
            }
        single = models[args.clusters[0]].predictors[0]
        print_arithmetic(models[args.clusters[0]], prompts, batches, args.max_new_tokens)
        timings.append(time_lm("(a) one predictor", single, batches, generation_config, device, args.repeats))
        print_row(timings[-1])
        first = models[args.clusters[0]]
        fit_ids, fit_mask = left_padded_batches(
            prompts[: args.fit_users], args.fit_users, tokenizer.pad_token_id, device
        )[0]
        embeddings = first.embed_users(fit_ids, fit_mask)
        for model in models.values():
            model.encoder.load_state_dict(first.encoder.state_dict())
            fit_selector_to_kmeans(model, embeddings, args.seed)
            timings.append(time_hetlm(model, prompts, batches, generation_kwargs, device, args.schedule, args.repeats))
            print_row(timings[-1])
        del models
        torch.manual_seed(args.seed)
        with device:
            large = (
                AutoModelForCausalLM.from_config(
                    AutoConfig.for_model(**large_shape.config(args.family, len(tokenizer)))
                )
                .to(dtype)
                .eval()
            )
        smallest_ratio = count_parameters(large) / count_parameters(single)
        if smallest_ratio < max(args.clusters):
            raise ValueError(
                f"the large LM has only {smallest_ratio:.1f}x the predictor's parameters; "
                f"it needs >= {max(args.clusters)}x"
            )
        timings.append(
            time_lm(
                f"(b) single LM {smallest_ratio:.1f}x params", large, batches, generation_config, device, args.repeats
            )
        )
        print_row(timings[-1])
    print_summary(timings)
    return timings


def print_row(timing: Timing) -> None:
    """Print one system's line: parameters, seconds, users/s, tokens/s.

    Example:
        >>> print_row(Timing("(a) one predictor", 4_000_000, 2.0, 100, 1600))  # doctest: +NORMALIZE_WHITESPACE
          (a) one predictor                  4.0M params       2.0 s      50.0 users/s        800 tokens/s
    """
    print(
        f"  {timing.system:<28} {timing.parameters / 1e6:>9.1f}M params {timing.seconds:>9.1f} s "
        f"{timing.users_per_second:>9.1f} users/s {timing.new_tokens / timing.seconds:>10.0f} tokens/s",
        flush=True,
    )


def print_summary(timings: list[Timing]) -> None:
    """Print HeTLM's routing overhead against (a) and its speed-up over (b), for each K.

    Example:
        >>> print_summary(run(args))  # doctest: +SKIP
    """
    single, large = timings[0], timings[-1]
    print("\nHeTLM vs (a) one predictor and (b) the single large LM:")
    for timing in timings[1:-1]:
        print(
            f"  {timing.system}: routing overhead {100 * timing.routing_seconds / single.seconds:.1f}% of (a)"
            f" (encoder {100 * timing.encoder_seconds / single.seconds:.1f}%; target <= 10%),"
            f" total time {timing.seconds / single.seconds:.2f}x (a),"
            f" speed-up over (b) {large.seconds / timing.seconds:.2f}x (target >= 4x),"
            f" users per cluster {timing.cluster_sizes}"
        )


def main() -> None:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000, help="simulated users to serve (default 2000)")
    parser.add_argument("--clusters", type=int, nargs="+", default=[3, 6], help="HeTLM cluster counts K (default 3 6)")
    parser.add_argument("--family", choices=("opt", "qwen2", "llama"), default="opt")
    parser.add_argument(
        "--preset", choices=tuple(PRESETS), default="paper", help="model sizes (see the module docstring)"
    )
    parser.add_argument(
        "--encoder",
        choices=("minilm", "minilm-shape", "tiny"),
        default="minilm",
        help="all-MiniLM-L6-v2 (default), its shape with random weights, or a 2-layer 32-d one",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=16, help="tokens generated per user, forced (default 16)"
    )
    parser.add_argument("--batch-size", type=int, default=128, help="users per generate call (default 128)")
    parser.add_argument(
        "--schedule",
        choices=tuple(SCHEDULES),
        default="route-first",
        help="HeTLM batching: route all users first, then full per-cluster batches (default), or "
        "model.generate on each mixed batch",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="bfloat16")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per system; the fastest is reported (default 1)"
    )
    parser.add_argument(
        "--fit-users", type=int, default=512, help="users whose K-means clusters the selectors learn (default 512)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a CPU shared with other jobs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    timings = run(args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps([{**asdict(t), "users_per_second": t.users_per_second} for t in timings], indent=2)
        )


if __name__ == "__main__":
    main()
