"""HeTLM's clusters learn (issue 10): L1 on the sum scale reaches a soft selector, hard EM moves wrongly started
users to the predictor that fits them, and K shrinks when a cluster empties.

The planted case: two groups of users with disjoint page habits (group A walks pages 10-19 in order, group B
pages 30-39), a K-means start that puts a quarter of each group in the other group's cluster, and user
embeddings that carry the group only weakly (random directions plus a small group offset), as a sentence
encoder of surface features would.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

from modeling_hetlm import HeTLMConfig, HeTLMForBrowsing
from trainers.clustering import pretrain_selector
from trainers.data import BrowsingCollator
from trainers.hetlm_trainer import HeTLMTrainer
from trainers.hetlm_training import cluster_dynamics
from trainers.reassignment import hard_em_labels, score_users

VOCAB, DIM, USERS, LENGTH = 48, 32, 48, 16


def planted_users(seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """``USERS`` streams (half group A, half group B) with ``user_embeddings``, and the true groups."""
    rng = np.random.default_rng(seed)
    groups = np.repeat([0, 1], USERS // 2)
    rows = []
    for group in groups:
        first = 10 if group == 0 else 30
        start = int(rng.integers(10))
        pages = [first + (start + step) % 10 for step in range(LENGTH)]
        rows.append([2, *pages, 3])
    direction = rng.normal(size=DIM)
    noise = rng.normal(size=(USERS, DIM))
    embeddings = noise + 0.3 * np.where(groups[:, None] == 0, 1.0, -1.0) * direction
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    users = Dataset.from_dict(
        {"input_ids": rows, "labels": rows, "user_embeddings": embeddings.astype(np.float32).tolist()}
    )
    return users, groups


def planted_model(num_clusters: int, **config) -> HeTLMForBrowsing:
    torch.manual_seed(0)
    predictor = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    encoder = {
        "model_type": "bert",
        "vocab_size": 30,
        "hidden_size": DIM,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    }
    hetlm_config = HeTLMConfig(
        predictor_config=predictor.to_dict(),
        encoder_config=encoder,
        num_clusters=num_clusters,
        selector_hidden_sizes=[64],
        encoder_max_length=64,
        **config,
    )
    return HeTLMForBrowsing.from_single_lm(hetlm_config, LlamaForCausalLM(predictor))


def planted_trainer(model, users, labels, tmp_path, epochs: int = 3, **options) -> HeTLMTrainer:
    embeddings = np.asarray(users["user_embeddings"], dtype=np.float32)
    pretrain_selector(model, embeddings, labels, epochs=150, learning_rate=1e-2, label_smoothing=0.3)
    arguments = TrainingArguments(
        str(tmp_path),
        per_device_train_batch_size=8,
        num_train_epochs=epochs,
        learning_rate=5e-3,
        logging_steps=2,
        report_to=[],
        disable_tqdm=True,
        save_strategy="no",
        seed=0,
        use_cpu=True,
    )
    options.setdefault("reassign_selector_epochs", 60)  # 48 users: one selector step per epoch
    return HeTLMTrainer(
        model=model,
        args=arguments,
        train_dataset=users,
        selector_learning_rate=1e-3,
        selector_weight_decay=0.0,
        reference_labels=labels,
        label_smoothing=0.3,
        min_cluster_size=3,
        **options,
    )


def wrong_start(groups: np.ndarray) -> np.ndarray:
    """The true groups with every fourth user of each group put in the other group's cluster."""
    labels = groups.copy()
    flipped = np.arange(len(groups)) % 4 == 0
    labels[flipped] = 1 - labels[flipped]
    return labels


def split_start(groups: np.ndarray) -> np.ndarray:
    """Group A split 2:1 over clusters 0 and 1 (every third of its users in 1), group B in cluster 2."""
    labels = np.where(groups == 1, 2, 0)
    labels[np.flatnonzero(groups == 0)[::3]] = 1
    return labels


def selector_gradient_norms(model: HeTLMForBrowsing, users: Dataset) -> tuple[float, float]:
    """Norms of the selector gradients of L1 and of alpha * L2 on the first 16 users."""
    batch = BrowsingCollator(pad_token_id=0)(users.select(range(16)).to_list())
    outputs = model(**batch)
    parameters = list(model.selector.parameters())
    norms = []
    for term in (outputs.l1, model.config.alpha * outputs.l2):
        gradients = torch.autograd.grad(term, parameters, retain_graph=True)
        norms.append(sum(float(gradient.pow(2).sum()) for gradient in gradients) ** 0.5)
    return norms[0], norms[1]


def test_selector_keeps_an_l1_gradient_after_pretraining():
    """Summed NLL and a smoothed (soft) pretraining: L1's selector gradient is of the order of alpha * L2's, not
    ~70x below it as with the per-token mean and a saturated selector (the landed code's setup)."""
    users, groups = planted_users()
    embeddings = np.asarray(users["user_embeddings"], dtype=np.float32)
    norms = {}
    for reduction, smoothing in (("mean", 0.0), ("sum", 0.3)):
        model = planted_model(2, l1_reduction=reduction)
        with torch.no_grad():  # a second predictor that predicts worse, so L1 has something to say
            torch.manual_seed(1)
            model.predictors[1].lm_head.weight.normal_(0, 0.3)
        result = pretrain_selector(
            model, embeddings, groups, epochs=150, learning_rate=1e-2, label_smoothing=smoothing
        )
        norms[reduction] = selector_gradient_norms(model, users)
        if smoothing:
            assert result.accuracy == 1.0 and 0.8 < result.mean_max_probability < 0.9
        else:
            assert result.mean_max_probability > 0.99
    (l1_mean, l2_sharp), (l1_sum, l2_soft) = norms["mean"], norms["sum"]
    assert l1_mean < 0.05 * l2_sharp
    assert l1_sum > 1000 * l1_mean and l1_sum > 0.5 * l2_soft


def test_hard_em_moves_wrongly_started_users_to_the_predictor_that_fits_them(tmp_path):
    users, groups = planted_users()
    labels = wrong_start(groups)
    trainer = planted_trainer(
        planted_model(2), users, labels, tmp_path, reassignment="hard_em", reassign_size_prior=0.0
    )
    start = trainer.assignments.numpy()
    assert (start == labels).mean() >= 0.95  # the selector begins by mimicking the wrong start
    trainer.train()
    routed = trainer.route_training_users().numpy()
    flipped = labels != groups
    # Cluster ids are arbitrary: the majority of each cluster decides which group it stands for.
    agreement = max((routed == groups).mean(), (routed != groups).mean())
    assert agreement == 1.0
    assert (routed[flipped] != start[flipped]).all()
    last = trainer.cluster_history[-1]
    assert last["users_moved_since_kmeans"] == flipped.sum()
    rows = cluster_dynamics(trainer.cluster_history, trainer.state.log_history, USERS)
    assert rows[-1]["share_moved_since_kmeans"] == pytest.approx(flipped.mean())
    assert sum(row["users_moved_since_last"] for row in rows) >= flipped.sum()


def test_without_reassignment_the_wrong_start_stays(tmp_path):
    """The control: the paper's loop alone (mean-scale L1 as before) leaves the K-means fixed point in place."""
    users, groups = planted_users()
    labels = wrong_start(groups)
    trainer = planted_trainer(planted_model(2, l1_reduction="mean"), users, labels, tmp_path, reassignment="none")
    trainer.train()
    routed = trainer.route_training_users().numpy()
    assert (routed == labels).mean() >= 0.9


def test_k_shrinks_when_hard_em_empties_a_cluster(tmp_path):
    """Group A split 2:1 over clusters 0 and 1 (one segment, two predictors): with the size prior the users of
    the smaller half join the larger one, cluster 1 empties and is retired; K 3 -> 2."""
    users, groups = planted_users()
    labels = split_start(groups)
    trainer = planted_trainer(
        planted_model(3), users, labels, tmp_path, reassignment="hard_em", reassign_size_prior=3.0
    )
    trainer.train()
    assert trainer.cluster_history[-1]["num_clusters"] == 2
    assert 1 in [cluster for entry in trainer.cluster_history for cluster in entry["retired"]]
    assert trainer.finalize_clusters() == [0, 2]
    assert trainer.model.config.num_clusters == 2


def test_score_users_and_hard_em_labels_agree_with_the_forward():
    users, groups = planted_users()
    model = planted_model(2)
    active = torch.tensor([True, True])
    scores = score_users(model, users, BrowsingCollator(pad_token_id=0), active, batch_size=5)
    batch = BrowsingCollator(pad_token_id=0)(users.select(range(3)).to_list())
    with torch.no_grad():
        per_token = model.eval()(**batch).per_cluster_nll
    assert torch.allclose(scores[:3], per_token * (LENGTH + 1), atol=1e-4)  # 17 scored tokens per stream
    assert torch.equal(hard_em_labels(scores, active), scores.argmin(dim=1))
    retired = torch.tensor([False, True])
    assert torch.isinf(score_users(model, users.select(range(4)), BrowsingCollator(0), retired)[:, 0]).all()
    assert (hard_em_labels(scores, retired) == 1).all()


def test_online_em_moves_wrongly_started_users_and_likelihood_routing_follows(tmp_path):
    """Online EM (scores L1 recorded before each step, no extra pass): the critic follows the labels, the
    wrongly started users end in their group's cluster; then routing by likelihood sends each user's prompt to
    its group's predictor, although the embeddings carry the group only weakly."""
    users, groups = planted_users()
    labels = wrong_start(groups)
    trainer = planted_trainer(
        planted_model(2),
        users,
        labels,
        tmp_path,
        reassignment="online_em",
        reassign_every_steps=6,
        reassign_size_prior=1.0,
    )
    trainer.train()
    final = trainer.route_training_users().numpy()
    assert len(trainer.reassignment_history) == 3  # 6 steps per epoch, 3 epochs
    assert (final == groups).all() or (final != groups).all()
    flipped = labels != groups
    assert trainer.cluster_history[-1]["users_moved_since_kmeans"] == flipped.sum()
    model = trainer.model.eval()
    model.config.routing = "likelihood"
    prompts = torch.tensor([row + [2] for row in users["input_ids"]])  # the session, then the open [BOS]
    embeddings = torch.tensor(users["user_embeddings"])
    routed = model.route(prompts, torch.ones_like(prompts), embeddings).numpy()
    assert (routed == final).all()
    outputs = model(**BrowsingCollator(pad_token_id=0)(users.select(range(4)).to_list()), compute_selector_loss=False)
    single_session = model.assign_clusters(embeddings[:4], routing="selector")
    assert torch.equal(outputs.assignments, single_session)  # no history before the row's only [BOS]: the selector
    assert torch.equal(model.assign_clusters(embeddings[:4]), single_session)  # embeddings alone: the selector


def test_online_em_with_mixing_weights_merges_a_split_segment(tmp_path):
    """Group A split 2:1 over clusters 0 and 1: classification EM's mixing weights send the smaller half to the
    larger; cluster 1 empties and is retired, and its users' rows train predictor 0."""
    users, groups = planted_users()
    labels = split_start(groups)
    trainer = planted_trainer(
        planted_model(3),
        users,
        labels,
        tmp_path,
        reassignment="online_em",
        reassign_every_steps=6,
        reassign_size_prior=3.0,
    )
    trainer.train()
    assert trainer.cluster_history[-1]["num_clusters"] == 2
    assert trainer.finalize_clusters() == [0, 2]
    assert sorted(trainer.cluster_sizes) == [24, 24]


def test_online_em_needs_the_users_of_the_rows(tmp_path):
    users, groups = planted_users()
    model = planted_model(2)
    two_rows_each = Dataset.from_dict({name: list(users[name]) * 2 for name in users.column_names})
    with pytest.raises(ValueError, match="user_index"):
        HeTLMTrainer(
            model=model,
            args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True),
            train_dataset=two_rows_each,
            train_users=users,
            reference_labels=groups,
            selector_learning_rate=1e-3,
            selector_weight_decay=0.0,
            reassignment="online_em",
        )
    with pytest.raises(ValueError, match="reference_labels"):
        HeTLMTrainer(
            model=model,
            args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True),
            train_dataset=users,
            selector_learning_rate=1e-3,
            selector_weight_decay=0.0,
            reassignment="online_em",
        )


def test_forward_checks_given_assignments():
    users, _ = planted_users()
    model = planted_model(2)
    batch = BrowsingCollator(pad_token_id=0)(users.select(range(3)).to_list())
    outputs = model(**batch, assignments=torch.tensor([1, 0, 1]))
    assert outputs.assignments.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="not one of the active clusters"):
        model(**batch, assignments=torch.tensor([1, 0, 1]), active_clusters=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="shape"):
        model(**batch, assignments=torch.tensor([1, 0]))


def heldout_sessions(seed: int = 1) -> Dataset:
    """Another session of every planted user (same group, another start page): the held-out rows of held-out EM,
    scored on their last session only (the tokens after the stream's only [BOS] but the first)."""
    users, _ = planted_users(seed)
    labels = [[-100, *row[1:]] for row in users["labels"]]
    return Dataset.from_dict({**users.to_dict(), "labels": labels})


def test_heldout_em_moves_wrongly_started_users_on_sessions_nobody_trained_on(tmp_path):
    users, groups = planted_users()
    labels = wrong_start(groups)
    trainer = planted_trainer(
        planted_model(2),
        users,
        labels,
        tmp_path,
        reassignment="heldout_em",
        heldout_users=heldout_sessions(),
        reassign_every_steps=6,
        reassign_size_prior=1.0,
    )
    trainer.train()
    final = trainer.route_training_users().numpy()
    assert (final == groups).all() or (final != groups).all()
    assert trainer.cluster_history[-1]["users_moved_since_kmeans"] == (labels != groups).sum()


def test_heldout_em_retires_a_cluster_that_adds_nothing(tmp_path):
    """Group A split 2:1 over clusters 0 and 1: on held-out sessions neither half's predictor beats the other,
    so the least gainful of the two is retired (by gain, not size: no size prior, minimum size 3) and K 3 -> 2."""
    users, groups = planted_users()
    labels = split_start(groups)
    trainer = planted_trainer(
        planted_model(3),
        users,
        labels,
        tmp_path,
        reassignment="heldout_em",
        heldout_users=heldout_sessions(),
        reassign_every_steps=6,
        reassign_size_prior=0.0,
        retire_min_gain=2.0,
    )
    trainer.train()
    kept = trainer.finalize_clusters()
    assert len(kept) == 2 and 2 in kept
    assert sorted(trainer.cluster_sizes) == [24, 24]
    with pytest.raises(ValueError, match="heldout_users"):
        planted_trainer(planted_model(2), users, groups, tmp_path, reassignment="heldout_em")


@pytest.mark.parametrize("grad_clipping", ["separate", "global"])
def test_the_selector_gradient_does_not_shrink_the_critic_steps_when_clipped_apart(tmp_path, grad_clipping):
    users, groups = planted_users()
    trainer = planted_trainer(planted_model(2), users, groups, tmp_path, grad_clipping=grad_clipping)
    model = trainer.model
    selector = {id(parameter) for parameter in model.selector.parameters()}
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.grad = torch.ones_like(parameter)
    predictor_grads = [p.grad for p in model.parameters() if p.requires_grad and id(p) not in selector]
    selector_grads = [p.grad for p in model.selector.parameters()]
    for grads, norm in ((predictor_grads, 0.5), (selector_grads, 100.0)):
        scale = norm / torch.cat([grad.flatten() for grad in grads]).norm()
        for grad in grads:
            grad.mul_(scale)
    total = trainer._clip_grad_norm(model)
    assert float(total) == pytest.approx((0.5**2 + 100.0**2) ** 0.5, rel=1e-4)
    predictor_norm = float(torch.cat([grad.flatten() for grad in predictor_grads]).norm())
    selector_norm = float(torch.cat([grad.flatten() for grad in selector_grads]).norm())
    if grad_clipping == "separate":  # max_grad_norm 1: the selector is clipped, the predictors are not
        assert predictor_norm == pytest.approx(0.5, rel=1e-4) and selector_norm == pytest.approx(1.0, rel=1e-4)
    else:
        assert predictor_norm == pytest.approx(0.5 / float(total), rel=1e-3)
    with pytest.raises(ValueError, match="grad_clipping"):
        planted_trainer(planted_model(2), users, groups, tmp_path, grad_clipping="per_layer")
