"""Cluster-grouped batches (issue 10): every batch of HeTLM's critic holds one cluster's rows, regrouped when the
EM labels change, so a predictor trains on whole batches of its own cluster as the K-means baseline's do."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments

from test_cluster_dynamics import planted_model, planted_trainer, planted_users, split_start, wrong_start
from trainers.cluster_batches import ClusterGroupedSampler, cluster_batches
from trainers.hetlm_trainer import HeTLMTrainer
from trainers.training_arguments import ClusterwiseTrainingArguments


def batches_of(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def test_cluster_batches_are_full_and_pure_until_the_left_over_rows():
    """10 rows of cluster 0 and 7 of cluster 1 in batches of 4: 2 + 1 pure batches, then the 2 + 3 left over."""
    clusters = torch.tensor([0] * 10 + [1] * 7)
    batches = cluster_batches(torch.arange(17), clusters, 4, torch.Generator().manual_seed(0))
    assert [len(batch) for batch in batches] == [4, 4, 4, 4, 1]
    assert sorted(len(set(clusters[batch].tolist())) for batch in batches[:3]) == [1, 1, 1]
    assert sorted(clusters[batch].tolist().count(0) for batch in batches[:3]) == [0, 4, 4]
    assert torch.cat(batches).sort().values.tolist() == list(range(17))
    with pytest.raises(ValueError, match="batch_size"):
        cluster_batches(torch.arange(3), torch.zeros(3, dtype=torch.long), 0, torch.Generator())


def test_sampler_regroups_the_rows_not_yet_drawn_when_the_labels_change():
    """After the first batch (four even or four odd rows) the labels change from parity to halves: the rest is
    regrouped by the new labels."""
    labels = torch.tensor([0, 1] * 8)
    sampler = ClusterGroupedSampler(lambda: labels, batch_size=4, seed=3)
    drawn = []
    for index in sampler:
        drawn.append(index)
        if len(drawn) == 4:
            labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0] * 2)
    assert sorted(drawn) == list(range(16))
    assert sampler.regroupings == 1
    first, *rest = batches_of(drawn, 4)
    assert len({index % 2 for index in first}) == 1  # pure under the old labels (parity)
    # 12 rows left, a + b = 12 per new cluster: floor(a/4) + floor(b/4) pure batches, and one batch of left-overs
    # when a % 4 + b % 4 = 4
    left = labels[torch.tensor([index for batch in rest for index in batch])]
    pure = sum(int((left == cluster).sum()) // 4 for cluster in (0, 1))
    assert pure >= 2 and all(len(set(labels[batch].tolist())) == 1 for batch in rest[:pure])


def test_sampler_shuffles_by_epoch_and_repeats_with_the_seed():
    labels = torch.tensor([0, 1, 2] * 8)
    sampler = ClusterGroupedSampler(lambda: labels, batch_size=4, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    again = ClusterGroupedSampler(lambda: labels, batch_size=4, seed=0)
    again.set_epoch(1)
    assert first != second and second == list(again) and len(sampler) == 24
    assert all(len(set(labels[batch].tolist())) == 1 for batch in batches_of(second, 4))


def test_trainer_batches_hold_one_cluster_and_leave_the_other_predictor_untouched(tmp_path):
    """Online EM with cluster batches on the planted case (48 users, batches of 8): each step's rows share one EM
    label (but an epoch's last, where the rows left over when a cluster's size is no multiple of 8 meet), the
    other predictor's weights do not change in that step, and the wrongly started users still end in their
    group's cluster (the first epoch, each predictor's three steps on its K-means cluster, is a warm-up)."""
    users, groups = planted_users()
    trainer = planted_trainer(
        planted_model(2),
        users,
        wrong_start(groups),
        tmp_path,
        epochs=5,
        reassignment="online_em",
        reassign_every_steps=6,
        reassign_size_prior=1.0,
        reassign_warmup_steps=6,
        cluster_batches=True,
    )
    predictors = trainer.model.predictors
    steps = []  # per training batch: its EM labels, and each predictor's weights before the step
    original = trainer.compute_loss

    def compute_loss(model, inputs, **kwargs):
        if model.training:
            weights = [[p.detach().clone() for p in predictor.parameters()] for predictor in predictors]
            steps.append((set(trainer.labels[inputs["user_index"]].tolist()), weights))
        return original(model, inputs, **kwargs)

    trainer.compute_loss = compute_loss
    trainer.train()
    assert len(steps) == 30  # 6 batches per epoch; only each epoch's last may mix the left-over rows
    assert all(len(label_set) == 1 for step, (label_set, _) in enumerate(steps) if step % 6 != 5)
    for (label_set, before), (_, after) in zip(steps[:5], steps[1:6]):  # the first epoch: no reassignment
        (cluster,) = label_set
        moved = [not all(torch.equal(a, b) for a, b in zip(old, new)) for old, new in zip(before, after)]
        assert moved == [cluster == 0, cluster == 1]
    final = trainer.route_training_users().numpy()
    assert (final == groups).all() or (final != groups).all()


def test_without_em_labels_batches_follow_the_latest_routing(tmp_path):
    """Hard EM has no labels: the rows are grouped by the training users' latest routing (the selector's, set at
    the start and at each pruning), so the first epoch's batches, before any reassignment, are pure."""
    users, groups = planted_users()
    trainer = planted_trainer(
        planted_model(2), users, wrong_start(groups), tmp_path, epochs=1, reassignment="hard_em", cluster_batches=True
    )
    routing = trainer.assignments.clone()
    label_sets = []
    original = trainer.compute_loss

    def compute_loss(model, inputs, **kwargs):
        if model.training:
            label_sets.append(set(routing[inputs["user_index"]].tolist()))
        return original(model, inputs, **kwargs)

    trainer.compute_loss = compute_loss
    trainer.train()
    sizes = torch.bincount(routing, minlength=2).tolist()
    pure = sum(size // 8 for size in sizes)
    assert len(label_sets) == 6 and all(len(label_set) == 1 for label_set in label_sets[:pure])


def test_cluster_batches_need_the_users_of_the_rows(tmp_path):
    users, groups = planted_users()
    two_rows_each = Dataset.from_dict({name: list(users[name]) * 2 for name in users.column_names})
    with pytest.raises(ValueError, match="cluster_batches needs a 'user_index' column"):
        HeTLMTrainer(
            model=planted_model(2),
            args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True),
            train_dataset=two_rows_each,
            train_users=users,
            selector_learning_rate=1e-3,
            selector_weight_decay=0.0,
            cluster_batches=True,
        )
    assert ClusterwiseTrainingArguments().cluster_batches


def test_a_cluster_the_others_stand_in_for_is_merged_on_validation_users(tmp_path):
    """Group A split 2:1 over clusters 0 and 1, group B in 2, no reassignment (the split stays). On validation
    users (other streams of both groups, routed by likelihood) the two halves' predictors stand in for each other:
    one of them is merged at the first epoch's end, cluster 2 never is; without ``merge_max_cost`` K stays 3."""
    users, groups = planted_users()
    validation, _ = planted_users(seed=2)

    def trained(**merge: float):
        trainer = planted_trainer(
            planted_model(3, routing="likelihood"),
            users,
            split_start(groups),
            tmp_path,
            eval_dataset=validation,
            reassignment="none",
            **merge,
        )
        trainer.train()
        return trainer

    trainer = trained(merge_max_cost=0.05)
    kept = trainer.finalize_clusters()
    assert len(kept) == 2 and 2 in kept
    assert sorted(trainer.cluster_sizes) == [24, 24]
    costs = trainer.merge_history[0]["costs"]
    assert min(costs[0], costs[1]) <= 0.05 < costs[2]
    unmerged = trained()
    assert unmerged.cluster_history[-1]["num_clusters"] == 3
    with pytest.raises(ValueError, match="eval_dataset"):
        planted_trainer(planted_model(2), users, groups, tmp_path, merge_max_cost=0.1)
