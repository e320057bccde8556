"""HeTLMConfig validation and HeTLMForBrowsing's encoder, losses, gradients, clusters and input checks."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from modeling_fixtures import FAMILIES, PAGES, USERS, predictor_config, prompt_batch, tiny_model, training_batch
from modeling_hetlm import (
    HeTLMConfig,
    HeTLMForBrowsing,
    build_encoder_tokenizer,
    build_hetlm,
    page_text,
    page_vocabulary_hash,
)
from modeling_hetlm.encoder_inputs_hetlm import page_vocabulary
from tokenization.page_tokenizer import build_page_tokenizer, encode_sessions


@pytest.fixture(scope="module")
def opt_model() -> HeTLMForBrowsing:
    return tiny_model("opt")


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize("family", FAMILIES)
def test_config_round_trip_keeps_sub_configs(family, tmp_path):
    config = HeTLMConfig(
        predictor_config=predictor_config(family, 40),
        num_clusters=2,
        num_pages=9,
        page_vocabulary_hash=page_vocabulary_hash(PAGES[:5] + ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]),
        pad_token_id=5,
        unk_token_id=6,
        bos_token_id=7,
        eos_token_id=8,
    )
    config.save_pretrained(tmp_path)
    loaded = HeTLMConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert type(loaded.predictor_config) is type(config.predictor_config)
    assert loaded.predictor_config.model_type == family
    assert loaded.encoder_config.hidden_size == loaded.embedding_dim == 384  # all-MiniLM-L6-v2 by default


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"num_clusters": 0}, "num_clusters"),
        ({"alpha": -1.0}, "alpha"),
        ({"beta": -0.5}, "beta"),
        ({"centroid_distance": "cosine"}, "centroid_distance"),
        ({"centroid_temperature": 0.0}, "centroid_temperature"),
        ({"centroid_momentum": 1.0}, "centroid_momentum"),
        ({"routing": "random"}, "routing"),
        ({"l1_reduction": "max"}, "l1_reduction"),
        ({"selector_hidden_sizes": [8, 0]}, "selector_hidden_sizes"),
        ({"predictor_config": {"model_type": "gpt2"}}, "gpt2"),
        ({"encoder_config": {"model_type": "roberta"}}, "encoder_config"),
        ({"encoder_max_length": 1000}, "encoder_max_length"),
        ({"num_pages": 3}, "eos_token_id"),
        ({"num_pages": 100}, "vocab_size"),
        ({"num_pages": 9, "page_vocabulary_hash": "abc"}, "page_vocabulary_hash"),
        ({"page_vocabulary_hash": "0" * 64}, "num_pages"),
        ({"bos_token_id": 0}, "distinct"),
    ],
)
def test_config_rejects_invalid_values(settings, message):
    settings = {"predictor_config": predictor_config("llama", 50), **settings}
    with pytest.raises(ValueError, match=message):
        HeTLMConfig(**settings)


def test_page_text_turns_paths_into_words():
    assert page_text("/google+redesign/apparel/mens-t_shirts") == "google redesign apparel mens t shirts"
    assert page_text("cart") == "cart"
    assert page_text("/") == "/"


# ---------------------------------------------------------------- encoder
def test_tiny_encoder_tokenizer_is_the_same_in_every_process():
    script = (
        "import json; from modeling_hetlm import build_encoder_tokenizer; from modeling_fixtures import PAGES; "
        "print(json.dumps(sorted(build_encoder_tokenizer(PAGES, vocab_size=40).get_vocab().items())))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), str(Path(__file__).parent)]),
    }
    vocabularies = [
        subprocess.run(
            [sys.executable, "-c", script],
            env={**env, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    ]
    assert vocabularies[0] == vocabularies[1] and len(json.loads(vocabularies[0])) == 40


def test_session_texts_cover_the_history_only(opt_model):
    tokenizer = opt_model.page_tokenizer
    history = [["/home", "/basket.html"], ["cart", "never/seen"]]
    prompt = torch.tensor([encode_sessions(tokenizer, history, open_next_session=True)])
    stream = torch.tensor([encode_sessions(tokenizer, history + [["purchase"]])])
    expected = "home basket html | cart [UNK]"
    assert opt_model.session_texts(prompt) == opt_model.session_texts(stream) == [expected]
    assert torch.equal(opt_model.embed_users(prompt), opt_model.embed_users(stream))


def test_embeddings_are_normalised_and_padding_free(opt_model):
    left_ids, left_mask = prompt_batch(opt_model.page_tokenizer)
    z = opt_model.embed_users(left_ids, left_mask)
    assert z.shape == (len(USERS), 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(len(USERS)))
    alone = torch.cat([opt_model.embed_users(left_ids[i : i + 1, left_mask[i].bool()]) for i in range(len(USERS))])
    torch.testing.assert_close(z, alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(opt_model.embed_users(left_ids, left_mask, batch_size=2), z, atol=1e-6, rtol=0)
    torch.testing.assert_close(opt_model.embed_users(left_ids, left_mask, chunk_pieces=1), z, atol=1e-6, rtol=0)
    for bad in ({"batch_size": 0}, {"chunk_pieces": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            opt_model.embed_users(left_ids, left_mask, **bad)


def random_streams(num_pages: int, count: int = 60, seed: int = 0) -> torch.Tensor:
    """Left-padded random streams with a history: empty sessions, unknown pages, missing [EOS], stray padding."""
    pad, unk, bos, eos = 0, 1, 2, 3
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        row = []
        for _ in range(int(torch.randint(1, 5, (1,), generator=generator))):
            length = int(torch.randint(0, 5, (1,), generator=generator))
            pages = torch.randint(unk, num_pages, (length,), generator=generator)
            row += [bos, *[int(page) if page > eos else unk for page in pages]]
            row += [eos] if torch.rand(1, generator=generator) < 0.8 else [pad]
        row += [bos] if torch.rand(1, generator=generator) < 0.7 else []
        if any(
            token > eos or token == unk for token in row[: len(row) - row[::-1].index(bos) - 1 if bos in row else None]
        ):
            rows.append(row)
    width = max(len(row) for row in rows)
    return torch.tensor([[pad] * (width - len(row)) + row for row in rows])


def loop_session_texts(ids: torch.Tensor, pages: list[str]) -> list[str]:
    """The encoder text as the former per-token loop built it (pad 0, unk 1, bos 2, eos 3): the non-empty
    sessions before the row's last [BOS], pages joined by spaces, sessions by " | "."""
    texts = []
    for row in ids.tolist():
        row = [token for token in row if token != 0]
        if 2 in row:
            row = row[: len(row) - 1 - row[::-1].index(2)]
        sessions, current = [], []
        for token in [*row, 3]:
            if token not in (2, 3):
                current.append("[UNK]" if token == 1 else page_text(pages[token]))
            elif current:
                sessions.append(current)
                current = []
        texts.append(" | ".join(" ".join(session) for session in sessions))
    return texts


def test_session_texts_equal_the_former_loop_on_random_streams(opt_model):
    ids = random_streams(len(opt_model.page_tokenizer))
    texts = opt_model.session_texts(ids)
    assert texts == loop_session_texts(ids, page_vocabulary(opt_model.page_tokenizer))
    assert len(texts) > 40 and any(" | " in text for text in texts) and any("[UNK]" in text for text in texts)


def test_page_tokenizer_must_match_the_fingerprint(opt_model, tmp_path):
    other = build_page_tokenizer([*PAGES[:-1], "checkout"])  # as many pages, one renamed
    assert len(other) == len(opt_model.page_tokenizer)
    opt_model.check_page_tokenizer(opt_model.page_tokenizer)
    with pytest.raises(ValueError, match="page tokenizer does not match"):
        opt_model.check_page_tokenizer(other)
    with pytest.raises(ValueError, match="page tokenizer does not match"):
        opt_model.session_texts(torch.tensor([[2, 5, 3, 2]]), page_tokenizer=other)
    with pytest.raises(ValueError, match="page tokenizer does not match"):
        opt_model.save_pretrained(tmp_path, page_tokenizer=other)
    assert page_vocabulary_hash(["a", "b"]) != page_vocabulary_hash(["b", "a"]) != page_vocabulary_hash(["a b"])


def test_set_page_vocabulary_refuses_duplicate_pages():
    model = tiny_model("opt", num_clusters=1)
    pages = page_vocabulary(model.page_tokenizer)
    with pytest.raises(ValueError, match="duplicate"):
        model.set_page_vocabulary(pages[:-1] + [pages[4]], build_encoder_tokenizer(PAGES, vocab_size=80))


@pytest.mark.parametrize("max_length", [64, 9])
def test_encoder_pieces_equal_the_encoder_tokenizer_on_session_texts(max_length):
    from transformers import AutoTokenizer

    from modeling_hetlm import minilm_path

    encoder_tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()))
    encoder_config = {
        "model_type": "bert",
        "vocab_size": encoder_tokenizer.vocab_size,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
    }
    model = tiny_model("opt", encoder_config=encoder_config, encoder_max_length=max_length)
    model.set_page_vocabulary(page_vocabulary(model.page_tokenizer), encoder_tokenizer)
    pad = 0
    ids = random_streams(len(model.page_tokenizer))
    pieces, mask = model._encoder_inputs(ids, (ids != pad).long())
    expected = encoder_tokenizer(model.session_texts(ids), truncation=True, max_length=max_length)["input_ids"]
    assert [row[: int(length)] for row, length in zip(pieces.tolist(), mask.sum(dim=1))] == expected
    assert mask.sum(dim=1).max() == pieces.shape[1] and not pieces[mask == 0].any()


def test_minilm_encoder_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from modeling_hetlm import minilm_path

    tokenizer = build_page_tokenizer(PAGES)
    model = build_hetlm(
        tokenizer, predictor_config=predictor_config("llama", len(tokenizer)), num_clusters=1, selector_hidden_sizes=[]
    )
    ids, mask = prompt_batch(tokenizer)
    reference = SentenceTransformer(str(minilm_path()), device="cpu")
    expected = reference.encode(model.session_texts(ids, mask), convert_to_tensor=True, normalize_embeddings=False)
    torch.testing.assert_close(model.embed_users(ids, mask), expected, atol=1e-5, rtol=0)


def test_encoder_is_frozen_and_stays_in_eval_mode(opt_model):
    model = copy.deepcopy(opt_model).train()
    assert not model.encoder.training and model.selector.training and model.predictors[0].training
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_embedding_needs_a_page_table():
    tokenizer = build_page_tokenizer(PAGES)
    config = HeTLMConfig(
        predictor_config=predictor_config("opt", len(tokenizer)),
        num_clusters=2,
        num_pages=len(tokenizer),
        encoder_config={
            "model_type": "bert",
            "vocab_size": 50,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
    )
    ids, mask = prompt_batch(tokenizer)
    with pytest.raises(ValueError, match="set_page_vocabulary"):
        HeTLMForBrowsing(config).embed_users(ids, mask)


# ---------------------------------------------------------------- losses and gradients
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_losses_follow_their_definitions(family):
    model = tiny_model(family, num_clusters=3, centroid_distance="paper")
    ids, mask = training_batch(model.page_tokenizer)
    out = model(ids, mask)
    batch, clusters = ids.shape[0], 3
    assert out.per_cluster_nll.shape == out.cluster_probs.shape == (batch, clusters)
    assert torch.equal(out.assignments, out.cluster_probs.argmax(dim=1))
    nll, pi = out.per_cluster_nll.detach(), out.cluster_probs.detach()
    for row in range(batch):
        length = int(mask[row].sum())
        for k in range(clusters):
            reference = model.predictors[k](
                input_ids=ids[row : row + 1, :length], labels=ids[row : row + 1, :length]
            ).loss
            torch.testing.assert_close(nll[row, k], reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.critic_loss, nll[torch.arange(batch), out.assignments].mean())
    tokens = (mask.sum(dim=1) - 1).unsqueeze(1).float()  # scored tokens: every real one after the first
    torch.testing.assert_close(out.l1, (pi * nll * tokens).sum(dim=1).mean())  # l1_reduction="sum" (default)
    model.config.l1_reduction = "mean"
    torch.testing.assert_close(model(ids, mask).l1, (pi * nll).sum(dim=1).mean())
    model.config.l1_reduction = "sum"
    torch.testing.assert_close(out.l2, -(pi * pi.log()).sum(dim=1).mean())
    z = out.user_embeddings
    centroids = (pi.t() @ z) / pi.sum(dim=0).unsqueeze(1)
    torch.testing.assert_close(out.batch_centroids.detach(), centroids)
    pairwise = sum(
        (centroids[a] - centroids[b]).abs().sum() for a in range(clusters) for b in range(clusters) if a != b
    )
    torch.testing.assert_close(out.l3, torch.sigmoid(-pairwise))
    torch.testing.assert_close(out.selector_loss, out.l1 + 5.0 * out.l2 + 9.0 * out.l3)
    torch.testing.assert_close(out.loss, out.critic_loss + out.selector_loss)


def reference_losses(model: HeTLMForBrowsing, ids, mask, z, active: torch.Tensor | None = None) -> dict:
    """HeTLM's losses computed the plain way: every active predictor runs the whole batch with gradient."""
    rows, clusters = ids.shape[0], model.config.num_clusters
    active = torch.ones(clusters, dtype=torch.bool) if active is None else active
    probs = torch.softmax(model.selector(z).masked_fill(~active, float("-inf")), dim=-1)
    assignments = probs.detach().argmax(dim=1)
    labels = ids.masked_fill(mask == 0, -100)
    columns = []
    for k, predictor in enumerate(model.predictors):
        if not active[k]:
            columns.append(torch.full((rows,), float("nan")))
            continue
        logits = predictor(input_ids=ids, attention_mask=mask).logits
        columns.append(
            torch.stack([torch.nn.functional.cross_entropy(logits[b, :-1], labels[b, 1:]) for b in range(rows)])
        )
    nll = torch.stack(columns, dim=1)
    critic_loss = nll[torch.arange(rows), assignments].mean()
    tokens = (labels[:, 1:] != -100).sum(dim=1, keepdim=True).float()
    l1 = (probs[:, active] * nll[:, active].detach() * tokens).sum(dim=1).mean()
    l2 = -(probs * probs.clamp(min=1e-12).log()).sum(dim=1).mean()
    kept = probs[:, active]
    kept = (kept.t() @ z) / kept.sum(dim=0).unsqueeze(1)
    pairwise = sum((kept[a] - kept[b]).abs().sum() for a in range(len(kept)) for b in range(len(kept)) if a != b)
    l3 = torch.sigmoid(-pairwise)
    selector_loss = l1 + model.config.alpha * l2 + model.config.beta * l3
    return {
        "per_cluster_nll": nll,
        "assignments": assignments,
        "critic_loss": critic_loss,
        "l1": l1,
        "l2": l2,
        "l3": l3,
        "selector_loss": selector_loss,
        "loss": critic_loss + selector_loss,
        "active_centroids": kept,
    }


def spread_rows(model: HeTLMForBrowsing, clusters: list[int]) -> None:
    """Make the selector route row b to clusters[b] (a hook adding a large bonus), with soft probabilities
    elsewhere."""
    bonus = 4.0 * torch.nn.functional.one_hot(torch.tensor(clusters), model.config.num_clusters)
    model.selector.register_forward_hook(lambda module, inputs, logits: logits + bonus[: logits.shape[0]])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("retired", [None, 1])
def test_forward_equals_k_full_passes_values_and_gradients(family, retired):
    model = tiny_model(family, num_clusters=3, centroid_distance="paper").train()
    ids, mask = training_batch(model.page_tokenizer)
    spread_rows(model, [0, 2, 1, 0, 2])
    z = model.embed_users(ids, mask)
    active = None if retired is None else torch.arange(3) != retired
    reference_model = copy.deepcopy(model)
    calls = []
    for k, predictor in enumerate(model.predictors):
        predictor.register_forward_hook(lambda module, args, output, k=k: calls.append(k))
    out = model(ids, mask, user_embeddings=z, active_clusters=active)
    expected = reference_losses(reference_model, ids, mask, z, active)
    torch.testing.assert_close(out.per_cluster_nll, expected["per_cluster_nll"], equal_nan=True)
    assert torch.equal(out.assignments, expected["assignments"])
    for name in ("critic_loss", "l1", "l2", "l3", "selector_loss", "loss"):
        torch.testing.assert_close(getattr(out, name), expected[name], msg=name)
    used = torch.ones(3, dtype=torch.bool) if active is None else active
    torch.testing.assert_close(out.batch_centroids[used], expected["active_centroids"])
    assert retired not in calls
    out.loss.backward()
    expected["loss"].backward()
    reference_parameters = dict(reference_model.named_parameters())
    for name, parameter in model.named_parameters():
        reference = reference_parameters[name].grad
        if reference is None or (retired is not None and name.startswith(f"predictors.{retired}.")):
            assert parameter.grad is None or not parameter.grad.any(), name
        else:
            torch.testing.assert_close(parameter.grad, reference, atol=1e-6, rtol=1e-4, msg=name)


def test_underflowing_cluster_probabilities_give_finite_centroids_and_gradients(opt_model):
    model = copy.deepcopy(opt_model).train()
    with torch.no_grad():
        model.selector[-1].bias.copy_(torch.tensor([-1e4, 0.0, 0.0]))  # pi_0 is exactly 0 for every row
    ids, mask = training_batch(model.page_tokenizer)
    out = model(ids, mask)
    assert float(out.cluster_probs.detach()[:, 0].max()) == 0.0
    assert torch.equal(out.batch_centroids[0], torch.zeros_like(out.batch_centroids[0]))
    assert torch.isfinite(out.batch_centroids).all() and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_active_clusters_are_checked(opt_model):
    ids, mask = training_batch(opt_model.page_tokenizer)
    for bad in (torch.tensor([True, False]), torch.tensor([1, 0, 1]), torch.zeros(3, dtype=torch.bool)):
        with pytest.raises(ValueError, match="active_clusters"):
            opt_model(ids, mask, active_clusters=bad)


def test_normalized_centroid_distance():
    model = tiny_model("opt", num_clusters=3, centroid_distance="normalized", centroid_temperature=0.1)
    centroids = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    mean_gap = (1 + 2 + 3) / 3 / 2  # unordered pair L1 distances 1, 2, 3; D = 2
    torch.testing.assert_close(model.centroid_separation(centroids), torch.sigmoid(torch.tensor(-mean_gap / 0.1)))
    assert float(model.centroid_separation(centroids[:1])) == 0.5


def test_gradients_reach_only_their_own_modules(opt_model):
    model = copy.deepcopy(opt_model)
    ids, mask = training_batch(model.page_tokenizer)
    out = model(ids, mask)
    out.critic_loss.backward(retain_graph=True)
    assert all(p.grad is None for p in model.selector.parameters())
    for k, predictor in enumerate(model.predictors):
        has_grad = any(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor.parameters())
        assert has_grad == bool((out.assignments == k).any())
    model.zero_grad(set_to_none=True)
    out.selector_loss.backward(retain_graph=True)
    assert all(p.grad is None for p in model.predictors.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    model.zero_grad(set_to_none=True)
    out.l3.backward()
    assert model.selector[0].weight.grad.abs().sum() > 0  # L3 depends on the selector through the soft centroids


def test_each_row_runs_with_gradient_under_its_assigned_predictor_only(opt_model):
    model = copy.deepcopy(opt_model).train()
    ids, mask = training_batch(model.page_tokenizer)
    calls = []
    for k, predictor in enumerate(model.predictors):
        predictor.register_forward_hook(
            lambda module, args, kwargs, output, k=k: calls.append(
                (k, kwargs["input_ids"].shape[0], torch.is_grad_enabled())
            ),
            with_kwargs=True,
        )
    out = model(ids, mask)
    with_grad = {k: rows for k, rows, grad in calls if grad}
    without_grad = sum(rows for _, rows, grad in calls if not grad)
    assert with_grad == {k: int((out.assignments == k).sum()) for k in out.assignments.unique().tolist()}
    assert without_grad == ids.shape[0] * (model.config.num_clusters - 1)
    calls.clear()
    critic_only = model(ids, mask, compute_selector_loss=False)
    assert sum(rows for _, rows, _ in calls) == ids.shape[0]
    assert critic_only.selector_loss is None and torch.equal(critic_only.loss, critic_only.critic_loss)
    assigned = critic_only.per_cluster_nll[torch.arange(ids.shape[0]), critic_only.assignments]
    assert not assigned.isnan().any() and int(critic_only.per_cluster_nll.isnan().sum()) == ids.shape[0] * 2


def test_labels_and_precomputed_embeddings(opt_model):
    ids, mask = training_batch(opt_model.page_tokenizer)
    z = opt_model.embed_users(ids, mask)
    default = opt_model(ids, mask)
    given = opt_model(ids, mask, labels=ids.masked_fill(mask == 0, -100), user_embeddings=z)
    torch.testing.assert_close(default.per_cluster_nll, given.per_cluster_nll)
    torch.testing.assert_close(default.loss, given.loss)


# ---------------------------------------------------------------- clusters
def test_prune_clusters_keeps_the_chosen_clusters(opt_model):
    model = copy.deepcopy(opt_model)
    model.set_centroids(torch.randn(3, 16))
    ids, mask = training_batch(model.page_tokenizer)
    before = model(ids, mask)
    model.prune_clusters([2, 0])
    after = model(ids, mask)
    assert model.config.num_clusters == len(model.predictors) == 2
    assert model.centroids.shape == (2, 16)
    torch.testing.assert_close(after.per_cluster_nll, before.per_cluster_nll[:, [2, 0]])
    logits = model.selector(after.user_embeddings)
    torch.testing.assert_close(logits, opt_model.selector(before.user_embeddings)[:, [2, 0]])
    for keep in ([], [0, 0], [5]):
        with pytest.raises(ValueError, match="keep"):
            model.prune_clusters(keep)


def test_from_single_lm_copies_the_lm_into_every_predictor():
    tokenizer = build_page_tokenizer(PAGES)
    torch.manual_seed(1)
    lm = AutoModelForCausalLM.from_config(
        HeTLMConfig(predictor_config=predictor_config("qwen2", len(tokenizer))).predictor_config
    )
    config = HeTLMConfig(predictor_config=predictor_config("opt", len(tokenizer)), num_clusters=3)
    model = HeTLMForBrowsing.from_single_lm(config, lm)
    assert model.config.predictor_config.model_type == "qwen2"
    reference = lm.state_dict()
    for predictor in model.predictors:
        assert all(torch.equal(value, reference[name]) for name, value in predictor.state_dict().items())
    with torch.no_grad():
        model.predictors[0].model.embed_tokens.weight.add_(1.0)
    assert torch.equal(model.predictors[1].model.embed_tokens.weight, lm.model.embed_tokens.weight)
    assert model.predictors[0].lm_head.weight is model.predictors[0].model.embed_tokens.weight


def test_centroid_routing_and_running_average(opt_model):
    model = copy.deepcopy(opt_model)
    ids, mask = prompt_batch(model.page_tokenizer)
    z = model.embed_users(ids, mask)
    with pytest.raises(ValueError, match="set_centroids"):
        model.assign_clusters(z, routing="centroids")
    model.set_centroids(z[[3, 0, 1]])
    assert model.assign_clusters(z[[0, 1, 3]], routing="centroids").tolist() == [1, 2, 0]
    model.update_centroids(torch.zeros(3, 16), momentum=0.5)
    torch.testing.assert_close(model.centroids, z[[3, 0, 1]] * 0.5)
    with pytest.raises(ValueError, match="shape"):
        model.set_centroids(torch.zeros(2, 16))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ids, mask: (ids.masked_fill(ids == 4, 999), mask), "outside the vocabulary"),
        (lambda ids, mask: (ids.masked_fill(ids == 4, -3), mask), "outside the vocabulary"),
        (lambda ids, mask: (ids[:0], mask[:0]), "empty"),
        (lambda ids, mask: (ids, mask[:, :-1]), "attention_mask has shape"),
        (lambda ids, mask: (ids, mask * torch.tensor([[0]] + [[1]] * (ids.shape[0] - 1))), "row 0 is empty"),
        (lambda ids, mask: (ids[0], mask[0]), "2-D"),
        (lambda ids, mask: (ids.float(), mask), "integer"),
    ],
)
def test_bad_batches_are_refused(opt_model, make, message):
    ids, mask = make(*training_batch(opt_model.page_tokenizer))
    for call in (opt_model.forward, opt_model.embed_users, opt_model.generate):
        with pytest.raises(ValueError, match=message):
            call(ids, mask)


def test_rows_without_history_or_scored_tokens_are_refused(opt_model):
    ids, mask = training_batch(opt_model.page_tokenizer)
    no_history = torch.tensor([[2, 4, 3, 2], [2, 3, 2, 0]])  # row 1: an empty session, then the open one
    with pytest.raises(ValueError, match="row 1 has no page"):
        opt_model.embed_users(no_history)
    with pytest.raises(ValueError, match="no scored token"):
        opt_model(ids, mask, labels=torch.full_like(ids, -100))
    with pytest.raises(ValueError, match="labels has shape"):
        opt_model(ids, mask, labels=ids[:, 1:])
    with pytest.raises(ValueError, match="user_embeddings must have shape"):
        opt_model(ids, mask, user_embeddings=torch.zeros(ids.shape[0], 3))
