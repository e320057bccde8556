"""``HeTLMTrainer``: Algorithm 1 of the paper (actor-critic fine-tuning with endogenous K) on ``transformers.Trainer``.

Per batch the model's forward gives ``critic_loss`` (each user's NLL under its argmax-assigned
predictor; gradient into the predictors only) and ``selector_loss = L1 + alpha*L2 + beta*L3``
(gradient into the selector only); the trainer back-propagates their sum once, so one optimizer step
updates the critic (predictors) and the actor (selector) together, each in its own parameter group
with its own learning rate and weight decay (:meth:`HeTLMTrainer.create_optimizer`).

The user embeddings z are computed once by the frozen encoder and travel in the dataset
(``user_embeddings`` column), so batches never run the encoder.

**Endogenous K, by masking.** Every ``prune_every_steps`` optimizer steps (default: at the end of
each epoch) the trainer routes all training users with the current selector and retires the
clusters that received fewer than ``min_cluster_size`` of them; their users go to the remaining
clusters from the next step on. A retired cluster keeps its parameters until training ends, but its
selector logit is set 80 below the row's largest (a forward hook on ``model.selector``), so nobody
is routed to it when the selector is used on its own (routing all training users, ``generate``),
and the model's forward gets the active set (``active_clusters``): there a retired cluster has
probability 0, its predictor does not run (no forward, no gradient) and it is left out of L1, L2
and L3. Masking rather than deleting parameters mid-run keeps the parameter set fixed, which is what
makes the rest simple and correct: the optimizer and scheduler never change shape, DDP's registered
parameters stay valid on every rank (``find_unused_parameters=True`` covers the skipped predictors),
and a checkpoint is Trainer's own plus one small file, ``hetlm_clusters.json`` (the active cluster
set and the history of K and cluster sizes), read back on resume.
:meth:`HeTLMTrainer.finalize_clusters` then removes the retired clusters for good
(``model.prune_clusters``) before the model is saved.

Logged every logging step: L1, L2, L3, critic and selector losses, K and the cluster sizes (in the
last routing of all training users), and the gradient norm that each of L1, alpha*L2 and beta*L3
sends into the selector (``torch.autograd.grad`` on the selector's parameters, only on logging steps).
The embedding dictionary (``model.centroids``) is a running average of the batch centroids.
Evaluation reports ``critic_loss``: each validation user's NLL under its routed predictor.

Example:
    >>> trainer = HeTLMTrainer(model=model, args=args, train_dataset=train_users, eval_dataset=validation_users,
    ...                        selector_learning_rate=1e-3, selector_weight_decay=1e-4)  # doctest: +SKIP
    >>> trainer.train()  # doctest: +SKIP
    >>> trainer.finalize_clusters()  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from transformers import Trainer, TrainerCallback

from .checkpoints import CLUSTER_STATE_FILE, checkpoint_problem, newest_complete_checkpoint
from .cluster_batches import ClusterGroupedSampler
from .clustering import pretrain_selector
from .data import BrowsingCollator
from .reassignment import (
    LABEL_FOLLOWING,
    REASSIGNMENTS,
    RowScores,
    classification_em_labels,
    cluster_gains,
    hard_em_labels,
    merge_costs,
    score_users,
)

logger = logging.getLogger(__name__)

# A retired cluster's selector logit is set this far below the row's largest logit (and no logit
# falls further): its probability (about 1e-35) is never the argmax and adds nothing measurable to
# L1 or L2, yet stays above fp32's underflow.
RETIRED_LOGIT_GAP = 80.0
LOGGED_LOSSES = ("l1", "l2", "l3", "critic_loss", "selector_loss")
GRAD_CLIPPINGS = ("separate", "global")
# Columns the trainer adds to the training rows for online EM (popped before the model's forward).
INDEX_COLUMNS = ("user_index", "row_index")


class ClusterMask:
    """Forward hook on the selector: retires clusters and keeps every cluster probability above fp32 underflow.

    Every logit is floored at the row's largest active logit minus ``RETIRED_LOGIT_GAP`` (the floor
    carries no gradient), and a retired cluster's logit is set to that floor. Without the floor a
    very sharp selector (alpha pushes that way) underflows some pi_k to exactly 0: the model then
    floors that cluster's summed probability in its soft batch centroid (no NaN), but its centroid
    collapses to ~0 and distorts L3; with the floor every active cluster keeps a true weighted mean.

    Example:
        >>> mask = ClusterMask(3)
        >>> mask.retire([1])
        >>> mask(None, None, torch.tensor([[1.0, 5.0, -200.0]])).tolist()
        [[1.0, -79.0, -79.0]]
    """

    def __init__(self, num_clusters: int):
        self.active = torch.ones(num_clusters, dtype=torch.bool)

    def retire(self, clusters: list[int]) -> None:
        self.active[clusters] = False

    @property
    def active_clusters(self) -> list[int]:
        return self.active.nonzero().flatten().tolist()

    def __call__(self, module: nn.Module, inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        retired = ~self.active.to(logits.device)
        floor = logits.detach().masked_fill(retired, float("-inf")).amax(dim=-1, keepdim=True) - RETIRED_LOGIT_GAP
        return torch.where(retired, floor, torch.maximum(logits, floor))


class _ClusterPruningCallback(TrainerCallback):
    """Calls :meth:`HeTLMTrainer.prune_small_clusters` every N steps or at each epoch's end, and saves the cluster
    state with each checkpoint."""

    def __init__(self, trainer: HeTLMTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        reassign_every = trainer.reassign_every_steps
        due = reassign_every and state.global_step % reassign_every == 0
        reassigned = trainer.reassignment != "none" and due and state.global_step > trainer.reassign_warmup_steps
        if reassigned:
            trainer.reassign_users()
        every = trainer.prune_every_steps
        if reassigned or (every and state.global_step % every == 0):  # a reassignment may empty a cluster
            trainer.prune_small_clusters()

    def on_epoch_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        epoch = round(state.epoch or 0)
        if (
            trainer.reassignment != "none"
            and not trainer.reassign_every_steps
            and epoch % trainer.reassign_every_epochs == 0
            and state.global_step > trainer.reassign_warmup_steps
        ):
            trainer.reassign_users()
        if not trainer.prune_every_steps:
            trainer.prune_small_clusters()

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if checkpoint.is_dir() and args.should_save:
            self.trainer.save_cluster_state(checkpoint)


class HeTLMTrainer(Trainer):
    """``Trainer`` for ``HeTLMForBrowsing`` implementing the paper's actor-critic fine-tuning (Algorithm 1).

    Args:
        model: A ``HeTLMForBrowsing`` (centroids and selector already initialised, see
            :mod:`trainers.hetlm_training`).
        args: ``TrainingArguments``; ``learning_rate`` / ``weight_decay`` apply to the predictors.
        train_dataset: Tokenised training examples with a ``user_embeddings`` column (several per user when
            every session is an example; a user's examples share its embedding, so they share its cluster).
        train_users: One row per training user (e.g. its latest example), in the order of
            ``reference_labels``: the users routed, counted and (with hard EM) scored; default ``train_dataset``.
        selector_learning_rate, selector_weight_decay: The selector's parameter group.
        min_cluster_size: Clusters routed fewer training users are retired (default 1: only empty ones).
        prune_every_steps: Prune every N optimizer steps; ``None`` (default) prunes at each epoch's end (and
            after each reassignment of ``reassign_every_steps``).
        reference_labels: The K-means labels of the training users (``[N]``); each routing of the
            training users then records how many of them the selector has moved away from K-means.
        reassignment: ``"none"`` (the paper's loop only), ``"hard_em"`` (:mod:`trainers.reassignment`:
            at the end of every ``reassign_every_epochs``-th epoch, retrain the selector on
            ``argmin_k NLL_k`` for ``reassign_selector_epochs`` epochs at ``reassign_learning_rate``,
            targets smoothed by ``label_smoothing``; ``reassign_size_prior`` weighs the log cluster share)
            or ``"online_em"`` (the same step on the NLLs L1 computed for each row before training on it,
            with the shares of the current labels as mixing weights; the critic trains each user's rows
            on its label's predictor, starting from ``reference_labels``, which it needs).
            ``train_dataset`` then needs ``user_index`` (each row's user, the row of ``train_users``) unless
            every row is a user of its own.
            ``"heldout_em"`` is online EM scored on ``heldout_users`` instead: one row per training user (in the
            order of ``train_users``) that ``train_dataset`` does not hold, whose ``labels`` mark the tokens
            scored (e.g. each user's last session): no predictor ever trains on them, so the scores are unbiased.
        retire_min_gain: Also retire, at each pruning, the cluster with the lowest gain (the mean over its users of
            the NLL their best other cluster gives minus their own's, in nats, on the latest EM scores) if it is
            below this (at most one per pruning; never the last); ``None``: clusters retire by size only.
        reassign_every_steps: Reassign every N optimizer steps instead of every ``reassign_every_epochs`` epochs.
        grad_clipping: ``"global"`` (default) is ``Trainer``'s one norm over all gradients (the selector's summed-NLL
            L1 gradient, far larger than the critic's, then shrinks the critic's steps several times over);
            ``"separate"`` clips the predictors' and the selector's gradients to ``max_grad_norm`` each on its own.
        reassign_warmup_steps: No reassignment before this step, and online EM records no score before it: the
            predictors first specialise on their starting clusters (copies of one LM score every user alike).
        merge_max_cost: Also retire, at each pruning after ``reassign_warmup_steps`` (at most one per pruning, never
            the last), the cluster whose removal raises the routed NLL of the validation users (``eval_dataset``,
            per token, each routed by the selector, or to its lowest-NLL predictor under likelihood routing) least,
            if by at most this many nats per token (:func:`~trainers.reassignment.merge_costs`): its users join the
            cluster that predicts them next best. ``None``: no such merging. Needs ``eval_dataset``.
        cluster_batches: Each training batch holds the rows of one cluster (:mod:`trainers.cluster_batches`): the
            EM labels' with online / held-out EM (regrouped after each reassignment), else the latest routing's
            (each pruning's), so each predictor trains on whole batches of its own cluster, as the K-means baseline's
            do. ``train_dataset`` then needs ``user_index`` unless every row is a user of its own.
        Other keyword arguments go to ``Trainer``.
    """

    def __init__(
        self,
        model: nn.Module,
        args,
        train_dataset: Dataset,
        *,
        selector_learning_rate: float,
        selector_weight_decay: float,
        min_cluster_size: int = 1,
        prune_every_steps: int | None = None,
        train_users: Dataset | None = None,
        reference_labels: np.ndarray | None = None,
        reassignment: str = "none",
        reassign_every_epochs: int = 1,
        reassign_every_steps: int | None = None,
        reassign_warmup_steps: int = 0,
        reassign_selector_epochs: int = 5,
        reassign_learning_rate: float = 1e-2,
        reassign_size_prior: float = 0.0,
        heldout_users: Dataset | None = None,
        retire_min_gain: float | None = None,
        label_smoothing: float = 0.0,
        grad_clipping: str = "global",
        cluster_batches: bool = False,
        merge_max_cost: float | None = None,
        **kwargs: Any,
    ):
        if reassignment not in REASSIGNMENTS:
            raise ValueError(f"reassignment must be one of {REASSIGNMENTS}, got {reassignment!r}")
        if reassign_every_epochs < 1 or reassign_selector_epochs < 1:
            raise ValueError(
                f"reassign_every_epochs and reassign_selector_epochs must be >= 1, got "
                f"{reassign_every_epochs} and {reassign_selector_epochs}"
            )
        train_users = train_dataset if train_users is None else train_users
        if reference_labels is not None and len(reference_labels) != len(train_users):
            raise ValueError(
                f"reference_labels has {len(reference_labels)} labels for {len(train_users)} training users"
            )
        if "user_embeddings" not in train_dataset.column_names or "user_embeddings" not in train_users.column_names:
            raise ValueError(
                "train_dataset needs a 'user_embeddings' column (see trainers.hetlm_training.add_user_embeddings)"
            )
        if isinstance(min_cluster_size, bool) or not isinstance(min_cluster_size, int) or min_cluster_size < 1:
            raise ValueError(f"min_cluster_size must be an integer >= 1, got {min_cluster_size!r}")
        if reassign_every_steps is not None and reassign_every_steps < 0:
            raise ValueError(f"reassign_every_steps must be >= 0 or None, got {reassign_every_steps!r}")
        if reassign_warmup_steps < 0:
            raise ValueError(f"reassign_warmup_steps must be >= 0, got {reassign_warmup_steps!r}")
        if grad_clipping not in GRAD_CLIPPINGS:
            raise ValueError(f"grad_clipping must be one of {GRAD_CLIPPINGS}, got {grad_clipping!r}")
        self.grad_clipping = grad_clipping
        self.row_scores = None
        self.cluster_batches = cluster_batches
        self.cluster_sampler: ClusterGroupedSampler | None = None
        self._sampler_state: dict[str, Any] | None = None
        if merge_max_cost is not None and kwargs.get("eval_dataset") is None:
            raise ValueError("merge_max_cost needs an eval_dataset: merges are judged on the validation users")
        self.merge_max_cost = merge_max_cost
        self.merge_history: list[dict[str, Any]] = []
        self._merge_tokens: torch.Tensor | None = None
        if reassignment == "heldout_em" and (heldout_users is None or len(heldout_users) != len(train_users)):
            raise ValueError("reassignment='heldout_em' needs heldout_users: one held-out row per training user")
        if reassignment in LABEL_FOLLOWING and reference_labels is None:
            raise ValueError(f"reassignment={reassignment!r} needs reference_labels (each user's first cluster)")
        if reassignment in LABEL_FOLLOWING or cluster_batches:
            needs = f"reassignment={reassignment!r}" if reassignment in LABEL_FOLLOWING else "cluster_batches"
            if "user_index" in train_dataset.column_names:
                row_users = np.asarray(train_dataset["user_index"])
            elif len(train_dataset) == len(train_users):
                row_users = np.arange(len(train_dataset))
                train_dataset = train_dataset.add_column("user_index", row_users.tolist())
            else:
                raise ValueError(
                    f"{needs} needs a 'user_index' column: {len(train_dataset)} training rows for {len(train_users)} "
                    f"users"
                )
            self.row_users = torch.as_tensor(row_users, dtype=torch.long)
        if reassignment in LABEL_FOLLOWING:
            train_dataset = train_dataset.add_column("row_index", list(range(len(train_dataset))))
            if reassignment == "online_em":
                self.row_scores = RowScores(row_users, len(train_users), model.config.num_clusters)
        kwargs.setdefault(
            "data_collator", BrowsingCollator(pad_token_id=model.config.pad_token_id, index_columns=INDEX_COLUMNS)
        )
        super().__init__(model=model, args=args, train_dataset=train_dataset, **kwargs)
        self.selector_learning_rate = selector_learning_rate
        self.selector_weight_decay = selector_weight_decay
        self.min_cluster_size = min_cluster_size
        self.prune_every_steps = prune_every_steps
        self.reassignment = reassignment
        self.reassign_every_epochs = reassign_every_epochs
        self.reassign_every_steps = reassign_every_steps
        self.reassign_warmup_steps = reassign_warmup_steps
        self.reassign_selector_epochs = reassign_selector_epochs
        self.reassign_learning_rate = reassign_learning_rate
        self.reassign_size_prior = reassign_size_prior
        self.label_smoothing = label_smoothing
        self.reference_labels = (
            None if reference_labels is None else torch.as_tensor(reference_labels, dtype=torch.long)
        )
        self.train_users = train_users
        self.heldout_users = heldout_users
        self.retire_min_gain = retire_min_gain
        # Online / held-out EM: the cluster of every training user, which the critic's rows follow.
        self.labels = self.reference_labels.clone() if reassignment in LABEL_FOLLOWING else None
        self._em_scores: tuple[torch.Tensor, torch.Tensor] | None = None  # the latest EM scores and who has one
        self.routing_embeddings = torch.tensor(train_users["user_embeddings"], dtype=torch.float32)
        self.cluster_mask = ClusterMask(model.config.num_clusters)
        self._mask_hook = model.selector.register_forward_hook(self.cluster_mask)
        self.cluster_history: list[dict[str, Any]] = []
        self.reassignment_history: list[dict[str, Any]] = []
        self.assignments = self.route_training_users()
        self.cluster_sizes = self._sizes(self.assignments)
        self._pending: dict[str, list[float]] = defaultdict(list)
        self.add_callback(_ClusterPruningCallback(self))

    def _set_signature_columns_if_needed(self) -> None:
        """Keep the online-EM index columns when ``remove_unused_columns`` drops what the forward does not take."""
        super()._set_signature_columns_if_needed()
        self._signature_columns = list(dict.fromkeys([*self._signature_columns, *INDEX_COLUMNS]))

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> torch.utils.data.Sampler | None:
        """With ``cluster_batches``, each training batch holds the rows of one cluster: by the EM labels (online /
        held-out EM), else by the latest routing of the training users (each pruning's;
        :class:`~trainers.cluster_batches.ClusterGroupedSampler`). Without, ``Trainer``'s sampler."""
        if not self.cluster_batches:
            return super()._get_train_sampler(train_dataset)
        seed = self.args.seed if self.args.data_seed is None else self.args.data_seed
        self.cluster_sampler = ClusterGroupedSampler(self._row_clusters, self._train_batch_size, seed)
        if self._sampler_state is not None:  # resuming: the epoch's batches as the interrupted run drew them
            self.cluster_sampler.load_state_dict(self._sampler_state)
        return self.cluster_sampler

    def _row_clusters(self) -> torch.Tensor:
        """``[rows]`` the cluster of every training row: its user's EM label, else its user's latest routing."""
        users = self.labels if self.labels is not None else self.assignments
        return users[self.row_users]

    # ----- optimisation -----

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW with four groups: predictors (args' lr / weight decay) and selector (its own), each split decay /
        no-decay."""
        if self.optimizer is not None:
            return self.optimizer
        model = self.model if model is None else model
        decay_names = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[str, bool], list[nn.Parameter]] = {
            ("predictors", True): [],
            ("predictors", False): [],
            ("selector", True): [],
            ("selector", False): [],
        }
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            role = "selector" if name.startswith("selector.") or ".selector." in name else "predictors"
            groups[(role, name in decay_names)].append(parameter)
        settings = {
            "predictors": (self.args.learning_rate, self.args.weight_decay),
            "selector": (self.selector_learning_rate, self.selector_weight_decay),
        }
        param_groups = [
            {"params": params, "lr": settings[role][0], "weight_decay": settings[role][1] if decay else 0.0}
            for (role, decay), params in groups.items()
            if params
        ]
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    def _clip_grad_norm(self, model: nn.Module) -> torch.Tensor:
        """``Trainer``'s gradient clipping; with ``grad_clipping="separate"`` the predictors' and the selector's
        gradients are each clipped to ``max_grad_norm`` on their own, so the selector's summed-NLL L1 gradient
        (tens of units) does not scale the critic's steps down. Returns the pre-clip norm of all gradients."""
        if self.grad_clipping == "global":
            return super()._clip_grad_norm(model)
        selector = {id(parameter) for parameter in self.accelerator.unwrap_model(model).selector.parameters()}
        groups: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        for parameter in model.parameters():
            if parameter.grad is not None:
                groups[id(parameter) in selector].append(parameter)
        norms = [nn.utils.clip_grad_norm_(group, self.args.max_grad_norm) for group in groups if group]
        return torch.stack(norms).pow(2).sum().sqrt()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Training: ``critic_loss + selector_loss`` (records the loss terms for logging). Evaluation: ``critic_loss``,
        the validation NLL of each user under its routed predictor."""
        active_clusters = self.cluster_mask.active.to(inputs["input_ids"].device)
        users, rows = (inputs.pop(name, None) for name in INDEX_COLUMNS)
        if not model.training:
            outputs = model(**inputs, compute_selector_loss=False, active_clusters=active_clusters)
            return (outputs.critic_loss, outputs) if return_outputs else outputs.critic_loss
        assignments = None if self.labels is None else self.labels[users.cpu()].to(inputs["input_ids"].device)
        outputs = model(**inputs, active_clusters=active_clusters, assignments=assignments)
        if self.row_scores is not None and self.state.global_step >= self.reassign_warmup_steps:
            tokens = (inputs["labels"][:, 1:] != -100).sum(dim=1, keepdim=True)
            self.row_scores.record(rows, outputs.per_cluster_nll.detach() * tokens)
        unwrapped = self.accelerator.unwrap_model(model)
        for name in LOGGED_LOSSES:
            self._pending[name].append(float(getattr(outputs, name).detach()))
        if self._is_logging_step():
            self._record_selector_gradient_norms(unwrapped, outputs)
        unwrapped.update_centroids(outputs.batch_centroids.detach())
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def _is_logging_step(self) -> bool:
        upcoming = self.state.global_step + 1
        return self.args.logging_steps > 0 and (
            upcoming % self.args.logging_steps == 0 or (upcoming == 1 and self.args.logging_first_step)
        )

    def _record_selector_gradient_norms(self, model: nn.Module, outputs: Any) -> None:
        parameters = [parameter for parameter in model.selector.parameters() if parameter.requires_grad]
        weights = {"l1": 1.0, "l2": model.config.alpha, "l3": model.config.beta}
        for name, weight in weights.items():
            term = getattr(outputs, name)
            if not term.requires_grad:
                self._pending[f"selector_grad_norm_{name}"].append(0.0)
                continue
            gradients = torch.autograd.grad(weight * term, parameters, retain_graph=True, allow_unused=True)
            squared = sum(float(gradient.float().pow(2).sum()) for gradient in gradients if gradient is not None)
            self._pending[f"selector_grad_norm_{name}"].append(squared**0.5)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the HeTLM terms (means since the last log), K and the cluster sizes to training logs."""
        if "loss" in logs and self._pending:
            for name, values in self._pending.items():
                logs[name] = sum(values) / len(values)
            self._pending.clear()
            logs["num_clusters"] = len(self.cluster_mask.active_clusters)
            for cluster, size in enumerate(self.cluster_sizes):
                if self.cluster_mask.active[cluster]:
                    logs[f"cluster_size_{cluster}"] = size
        super().log(logs, start_time)

    # ----- endogenous K -----

    @torch.no_grad()
    def route_training_users(self) -> torch.Tensor:
        """Cluster of every training user ``[N]`` (original cluster ids): the online-EM labels, else the routing
        of the current selector and mask."""
        if self.labels is not None:
            return self.labels.clone()
        return self._assign(self.routing_embeddings)

    @torch.no_grad()
    def _assign(self, embeddings: torch.Tensor, routing: str | None = None) -> torch.Tensor:
        """``[N]`` clusters of user ``embeddings`` under the current selector and mask, in eval mode, on the CPU
        (``routing``: as ``HeTLMForBrowsing.assign_clusters``; None is the config's embedding rule)."""
        model = self.model
        was_training = model.training
        model.eval()
        device = next(model.selector.parameters()).device
        clusters = model.assign_clusters(embeddings.to(device), routing=routing).cpu()
        model.train(was_training)
        return clusters

    def _sizes(self, assignments: torch.Tensor) -> list[int]:
        return torch.bincount(assignments, minlength=len(self.cluster_mask.active)).tolist()

    def reassign_users(self) -> dict[str, Any]:
        """One hard-EM step: score every training user under every active predictor, retrain the selector
        towards ``argmin_k NLL_k`` (see :mod:`trainers.reassignment`); returns (and records) what changed.
        With online EM the scores are those L1 recorded, and the critic follows the new labels from here on."""
        model = self.model
        active = self.cluster_mask.active
        before = self.route_training_users()
        if self.labels is not None:
            if self.row_scores is not None:
                nll, seen = self.row_scores.user_scores()
            else:
                nll = self._score(self.heldout_users)
                seen = torch.ones(len(nll), dtype=torch.bool)
            self._em_scores = (nll, seen)
            labels = classification_em_labels(nll, seen, self.labels, active, self.reassign_size_prior)
            self.labels = labels.clone()
        else:
            labels = hard_em_labels(self._score(self.train_users), active, self.reassign_size_prior)
        fit = pretrain_selector(
            model,
            self.routing_embeddings.numpy(),
            labels.numpy(),
            epochs=self.reassign_selector_epochs,
            learning_rate=self.reassign_learning_rate,
            seed=self.args.seed + len(self.reassignment_history),
            label_smoothing=self.label_smoothing,
            active_clusters=active,
        )
        entry = {
            "step": self.state.global_step,
            "epoch": self.state.epoch,
            "label_sizes": self._sizes(labels),
            "labels_differing_from_routing": int((labels != before).sum()),
            "selector_agreement": fit.accuracy,
            "selector_mean_max_probability": fit.mean_max_probability,
        }
        if self.labels is not None:  # what each cluster adds on these scores (nats per user; None: no member)
            gains = cluster_gains(nll, seen, labels, active)
            entry["cluster_gains"] = [None if gain != gain else round(float(gain), 3) for gain in gains.tolist()]
        self.reassignment_history.append(entry)
        logger.info(
            "step %d: hard-EM labels %s (%d users differ from the routing); selector agreement %.3f",
            entry["step"],
            entry["label_sizes"],
            entry["labels_differing_from_routing"],
            fit.accuracy,
        )
        return entry

    def _score(self, users: Dataset) -> torch.Tensor:
        return score_users(
            self.model,
            users,
            self.data_collator,
            self.cluster_mask.active,
            batch_size=max(self.args.per_device_eval_batch_size, 64),
            context=self.compute_loss_context_manager,
        )

    def _least_gainful_cluster(self) -> int | None:
        """The active cluster with the lowest gain on the latest EM scores, if below ``retire_min_gain``."""
        active = self.cluster_mask.active
        if self.retire_min_gain is None or self._em_scores is None or int(active.sum()) < 2:
            return None
        gains = cluster_gains(*self._em_scores, self.labels, active)
        cluster = int(gains.nan_to_num(nan=float("inf")).argmin())
        return cluster if float(gains[cluster]) < self.retire_min_gain else None

    def _cheapest_merge(self) -> int | None:
        """The active cluster whose retirement costs the validation users least (:func:`merge_costs` on their per-token
        NLLs), if at most ``merge_max_cost``; recorded in ``merge_history``."""
        active = self.cluster_mask.active
        if self.merge_max_cost is None or int(active.sum()) < 2 or self.state.global_step < self.reassign_warmup_steps:
            return None
        users = self.eval_dataset
        nll = self._score(users)
        if self._merge_tokens is None:  # the validation users' scored tokens: the same at every pruning
            self._merge_tokens = torch.tensor([sum(label != -100 for label in row[1:]) for row in users["labels"]])
        nll = nll / self._merge_tokens.clamp_min(1).unsqueeze(1)
        if self.model.config.routing == "likelihood":
            routed = nll.argmin(dim=1)
        else:
            routed = self._assign(torch.tensor(users["user_embeddings"], dtype=torch.float32), routing="selector")
        costs = merge_costs(nll, routed, active)
        cluster = int(costs.nan_to_num(nan=float("inf")).argmin())
        self.merge_history.append(
            {"step": self.state.global_step, "costs": [None if c != c else round(float(c), 5) for c in costs.tolist()]}
        )
        return cluster if float(costs[cluster]) <= self.merge_max_cost else None

    def prune_small_clusters(self) -> list[int]:
        """Retire active clusters routed fewer than ``min_cluster_size`` training users; returns those retired.

        The largest cluster is never retired, so K stays >= 1. Every rank takes the same decision
        (same weights, same embeddings), so DDP stays in step.
        """
        previous = self.assignments
        self.assignments = self.route_training_users()
        self.cluster_sizes = self._sizes(self.assignments)
        active = self.cluster_mask.active_clusters
        largest = max(active, key=lambda cluster: self.cluster_sizes[cluster])
        retired = [c for c in active if self.cluster_sizes[c] < self.min_cluster_size and c != largest]
        least_gainful = None if retired else self._least_gainful_cluster()
        if least_gainful is None and not retired:
            least_gainful = self._cheapest_merge()
        if least_gainful is not None:
            retired = [least_gainful]
        if retired:
            self.cluster_mask.retire(retired)
            if self.labels is not None:
                self._relabel_retired_users()
            self.assignments = self.route_training_users()
            self.cluster_sizes = self._sizes(self.assignments)
            logger.info(
                "step %d: retired clusters %s (below %d users)", self.state.global_step, retired, self.min_cluster_size
            )
        entry = {
            "step": self.state.global_step,
            "epoch": self.state.epoch,
            "num_clusters": len(self.cluster_mask.active_clusters),
            "active_clusters": self.cluster_mask.active_clusters,
            "cluster_sizes": list(self.cluster_sizes),
            "retired": retired,
            "users_moved_since_last": int((self.assignments != previous).sum()),
        }
        if self.reference_labels is not None:
            entry["users_moved_since_kmeans"] = int((self.assignments != self.reference_labels).sum())
        self.cluster_history.append(entry)
        share = {f"share_{key}": entry[key] / len(self.assignments) for key in entry if key.startswith("users_moved")}
        self.log(
            {
                "num_clusters": entry["num_clusters"],
                **share,
                **{f"cluster_size_{c}": self.cluster_sizes[c] for c in entry["active_clusters"]},
            }
        )
        return retired

    def _relabel_retired_users(self) -> None:
        """Online / held-out EM: the users of retired clusters take their best active predictor by the latest EM
        scores (the selector's choice where they have none yet)."""
        active = self.cluster_mask.active
        stranded = ~active[self.labels]
        if not stranded.any():
            return
        users = len(self.labels)
        nll, seen = self._em_scores or (torch.zeros(users, len(active)), torch.zeros(users, dtype=torch.bool))
        best = nll.masked_fill(~active, float("inf")).argmin(dim=1)
        routed = self._assign(self.routing_embeddings, routing="selector")
        self.labels = torch.where(stranded, torch.where(seen, best, routed), self.labels)

    def save_cluster_state(self, folder: str | os.PathLike) -> None:
        """Write the active cluster set and the cluster history to ``folder/hetlm_clusters.json``."""
        state = {
            "active_clusters": self.cluster_mask.active_clusters,
            "history": self.cluster_history,
            "reassignments": self.reassignment_history,
            "merges": self.merge_history,
            "assignments": self.assignments.tolist(),
        }
        if self.labels is not None:
            state["em_labels"] = self.labels.tolist()
        if self.row_scores is not None:
            state["row_scores"] = self.row_scores.table.nan_to_num(nan=-1.0).tolist()
        if self.cluster_sampler is not None:
            state["cluster_sampler"] = self.cluster_sampler.state_dict()
        (Path(folder) / CLUSTER_STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    def load_cluster_state(self, folder: str | os.PathLike) -> None:
        """Restore the active cluster set and history saved by :meth:`save_cluster_state`."""
        path = Path(folder) / CLUSTER_STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: this checkpoint was not written by HeTLMTrainer")
        state = json.loads(path.read_text(encoding="utf-8"))
        active = set(state["active_clusters"])
        self.cluster_mask.active[:] = torch.tensor(
            [cluster in active for cluster in range(len(self.cluster_mask.active))]
        )
        self.cluster_history = state["history"]
        self.reassignment_history = state.get("reassignments", [])
        self.merge_history = state.get("merges", [])
        self._sampler_state = state.get("cluster_sampler")
        if self.labels is not None:
            if "em_labels" not in state:
                raise ValueError(f"{path} holds no EM labels: not written with reassignment={self.reassignment!r}")
            self.labels = torch.tensor(state["em_labels"], dtype=torch.long)
        if self.row_scores is not None:
            table = torch.tensor(state["row_scores"], dtype=torch.float32)
            self.row_scores.table = table.masked_fill(table < 0, float("nan"))
        saved = state.get("assignments")
        self.assignments = torch.tensor(saved) if saved is not None else self.route_training_users()
        self.cluster_sizes = self._sizes(self.route_training_users())

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """``Trainer.train``, restoring the cluster set first when resuming from a checkpoint.

        ``resume_from_checkpoint=True`` resumes from the newest complete checkpoint of the output folder
        (:func:`trainers.checkpoints.newest_complete_checkpoint`: an incomplete newer one, e.g. cut short by a
        crash while saving, is passed over with a warning) and logs which; a named checkpoint must be complete.
        """
        if resume_from_checkpoint is True:
            resume_from_checkpoint = newest_complete_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(f"No complete checkpoint found in {self.args.output_dir} to resume from")
            logger.info("resuming from %s, the newest complete checkpoint", resume_from_checkpoint)
        elif resume_from_checkpoint:
            problem = checkpoint_problem(resume_from_checkpoint)
            if problem is not None:
                raise ValueError(f"checkpoint {resume_from_checkpoint} cannot be resumed from: {problem}")
        if resume_from_checkpoint:
            resume_from_checkpoint = str(resume_from_checkpoint)
            self.load_cluster_state(resume_from_checkpoint)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def finalize_clusters(self) -> list[int]:
        """Remove the retired clusters from the model for good, detach the mask, and keep the final cluster sizes
        (training users per kept cluster, in the new order) in ``self.cluster_sizes``. Call once, after training.
        Returns the kept original cluster ids, in their new order.
        """
        self.cluster_sizes = self._sizes(self.route_training_users())
        keep = self.cluster_mask.active_clusters
        model = self.model
        if len(keep) < len(self.cluster_mask.active):
            model.prune_clusters(keep)
        self._mask_hook.remove()
        self.cluster_mask.active = torch.ones(len(keep), dtype=torch.bool)
        self.cluster_sizes = [self.cluster_sizes[cluster] for cluster in keep]
        return keep
