"""Hub round trips of HeTLM model folders, against servers on 127.0.0.1 only.

* Download: `olah` (a self-hosted Hub mirror, offline mode) serves a saved folder committed as a
  git repository under its mirrors path; a fresh process with an empty cache loads it by repo id.
* Upload: `push_to_hub` to the protocol-level server of `hub_server.py`, then `from_pretrained`
  by repo id in another fresh process with an empty cache; a wrong token is refused.

The Hub clients run in fresh processes because `huggingface_hub` reads `HF_ENDPOINT` and
`HF_HUB_OFFLINE` once, at import (the test process itself runs with `HF_HUB_OFFLINE=1`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hub_server import LocalHub, git_blob_sha1
from modeling_hetlm import HeTLMForBrowsing, build_encoder_tokenizer, build_hetlm
from modeling_hetlm.hub_hetlm import update_model_card
from tokenization.page_tokenizer import build_page_tokenizer, encode_sessions

REPO_ID = "org/tiny-hetlm"
WRITE_TOKEN = "hf_local_write_token"
CLIENT_TIMEOUT_S = 180
SERVER_START_TIMEOUT_S = 60
PAGES = ["home", "category/shoes", "category/bags", "product/shoes/run-1", "product/bags/tote-2", "cart", "purchase"]
DATA_SUMMARY = {
    "synthetic": True,
    "source": "simulator",
    "format": "simulator",
    "users": {"in_examples": 3},
    "outcome_rates": {"cart": 0.5, "purchase": 0.25},
}
PROMPT_SESSIONS = [
    [["home", "category/shoes"], ["product/shoes/run-1"]],
    [["category/bags"]],
    [["product/bags/tote-2", "cart"], ["home", "unseen/page"]],
]

# Loads the model by repo id, writes its weights and its greedy generations for the prompts of
# argv[2] (a JSON list of token-id lists) to argv[3] (safetensors) and argv[4] (JSON, with the
# page tokenizer's vocabulary). The tokenizer loads by repo id, or with argv[5] == "snapshot" from
# the downloaded snapshot folder (olah answers the tree listing of a folder missing from a mirrored
# repository, which AutoTokenizer asks for, with 401 RepoNotFound instead of 404 EntryNotFound).
PULL_SCRIPT = """
import json, sys
import torch
from huggingface_hub import snapshot_download
from safetensors.torch import save_file
from transformers import AutoTokenizer
from modeling_hetlm import HeTLMForBrowsing

repo_id, prompts_file, weights_file, result_file, tokenizer_source = sys.argv[1:6]
model = HeTLMForBrowsing.from_pretrained(repo_id).eval()
tokenizer = AutoTokenizer.from_pretrained(snapshot_download(repo_id) if tokenizer_source == "snapshot" else repo_id)
save_file({name: tensor.detach().clone().contiguous() for name, tensor in model.state_dict().items()}, weights_file)
prompts = json.load(open(prompts_file))
generations = [model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=6)[0].tolist() for ids in prompts]
json.dump({"generations": generations, "vocabulary": tokenizer.get_vocab()}, open(result_file, "w"))
"""

# Pushes the saved folder argv[1] (its page tokenizer attached, so it is pushed with the model) to
# REPO_ID: first with the wrong token argv[2] (the error is recorded), then with the right token
# argv[3]; writes {"refused": message} to argv[4].
PUSH_SCRIPT = """
import json, sys
from transformers import AutoTokenizer
from modeling_hetlm import HeTLMForBrowsing

model = HeTLMForBrowsing.from_pretrained(sys.argv[1])
model.page_tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
refused = None
try:
    model.push_to_hub("{repo_id}", token=sys.argv[2])
except Exception as error:
    refused = f"{{type(error).__name__}}: {{error}}"
model.push_to_hub("{repo_id}", token=sys.argv[3])
json.dump({{"refused": refused}}, open(sys.argv[4], "w"))
""".format(repo_id=REPO_ID)


def client_env(endpoint: str, hf_home: Path) -> dict[str, str]:
    """The environment of a fresh Hub client: this endpoint, an empty cache, online, no Xet."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_", "HUGGINGFACE_"))
    }
    hf_home.mkdir(parents=True, exist_ok=False)
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def run_client(script: str, args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python process; fail the test with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 0, f"client process failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tiny_hetlm() -> HeTLMForBrowsing:
    """A tiny HeTLM (K=3 OPT predictors, 2-layer 16-d BERT encoder) with its page tokenizer attached."""
    torch.manual_seed(0)
    page_tokenizer = build_page_tokenizer(PAGES)
    encoder_tokenizer = build_encoder_tokenizer(PAGES, vocab_size=60)
    model = build_hetlm(
        page_tokenizer,
        encoder_tokenizer=encoder_tokenizer,
        num_clusters=3,
        selector_hidden_sizes=[8],
        encoder_max_length=64,
        predictor_config={
            "model_type": "opt",
            "vocab_size": len(page_tokenizer),
            "hidden_size": 16,
            "ffn_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "word_embed_proj_dim": 16,
        },
        encoder_config={
            "model_type": "bert",
            "vocab_size": len(encoder_tokenizer),
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
        },
    )
    return model.eval()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> tuple[Path, Path, HeTLMForBrowsing]:
    """A tiny HeTLM saved with its page tokenizer, and a JSON of prompts with reference generations."""
    root = tmp_path_factory.mktemp("saved")
    model = tiny_hetlm()
    tokenizer = model.page_tokenizer
    folder = root / "tiny-hetlm"
    sizes = [2] + [1] * (model.config.num_clusters - 1)
    model.save_pretrained(folder, training_summary={"training users": 3, "cluster_sizes": sizes})
    update_model_card(folder, data_summary=DATA_SUMMARY, metrics={"IoU": 0.25, "HR": 0.5})
    prompts = [encode_sessions(tokenizer, sessions, open_next_session=True) for sessions in PROMPT_SESSIONS]
    with torch.inference_mode():
        generations = [
            model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=6)[0].tolist() for ids in prompts
        ]
    reference = root / "reference.json"
    reference.write_text(
        json.dumps({"prompts": prompts, "generations": generations, "vocabulary": tokenizer.get_vocab()})
    )
    return folder, reference, model


def pull_and_compare(
    repo_id: str, env: dict[str, str], work: Path, reference: Path, model: HeTLMForBrowsing, tokenizer_source: str
) -> None:
    """Load `repo_id` in a fresh process; its weights, generations and vocabulary equal the originals."""
    expected = json.loads(reference.read_text())
    (work / "prompts.json").write_text(json.dumps(expected["prompts"]))
    run_client(
        PULL_SCRIPT, [repo_id, "prompts.json", "pulled.safetensors", "pulled.json", tokenizer_source], env, work
    )
    pulled = load_file(work / "pulled.safetensors")
    original = model.state_dict()
    assert sorted(pulled) == sorted(original)
    for name, tensor in original.items():
        assert pulled[name].dtype == tensor.dtype and torch.equal(pulled[name], tensor), (
            f"{name} differs after the round trip"
        )
    result = json.loads((work / "pulled.json").read_text())
    assert result["generations"] == expected["generations"]
    assert result["vocabulary"] == expected["vocabulary"]


# -- download through olah ----------------------------------------------------------------------
def commit_as_git_repository(folder: Path, repository: Path) -> None:
    shutil.copytree(folder, repository)
    git = ["git", "-c", "user.name=hetlm-test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "Add tiny HeTLM"]):
        subprocess.run([*git, *command], cwd=repository, check=True, capture_output=True, timeout=60)


def wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"olah exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    pytest.fail(f"olah did not answer {url} within {SERVER_START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def olah_mirror(saved_model, tmp_path):
    """olah on 127.0.0.1 serving the saved folder as the git repository org/tiny-hetlm; stopped after the test."""
    folder, _, _ = saved_model
    mirrors = tmp_path / "mirrors"
    commit_as_git_repository(folder, mirrors / "models" / REPO_ID)
    port = free_port()
    config = tmp_path / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{tmp_path / "olah-cache"}"\n'
        f'mirrors-path = ["{mirrors}"]\n'
        "[accessibility]\noffline = true\n"
    )
    log = tmp_path / "olah.log"
    with open(log, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "--config", str(config), "--log-path", str(tmp_path / "olah-logs")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until_serving(f"{endpoint}/api/models/{REPO_ID}/revision/main", process, log)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_olah_mirror_serves_identical_model(saved_model, olah_mirror, tmp_path):
    _, reference, model = saved_model
    env = client_env(olah_mirror, tmp_path / "hf-home")
    pull_and_compare(REPO_ID, env, tmp_path, reference, model, tokenizer_source="snapshot")
    downloaded = {path.name for path in (tmp_path / "hf-home" / "hub").rglob("*") if path.is_file()}
    assert "model.safetensors" in downloaded and "config.json" in downloaded


# -- upload to the local Hub ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_hub():
    with LocalHub(tokens={WRITE_TOKEN: "org"}) as hub:
        yield hub


@pytest.fixture(scope="module")
def pushed(saved_model, local_hub, tmp_path_factory) -> dict:
    """Push the saved folder (wrong token first, then the right one) from a fresh process."""
    folder, _, _ = saved_model
    work = tmp_path_factory.mktemp("push")
    env = client_env(local_hub.endpoint, work / "hf-home")
    run_client(PUSH_SCRIPT, [str(folder), "hf_wrong_token", WRITE_TOKEN, "push.json"], env, work)
    return json.loads((work / "push.json").read_text())


def test_wrong_token_is_refused_with_a_clear_error(pushed, local_hub):
    refused = pushed["refused"]
    assert refused is not None, "a push with a wrong token was accepted"
    assert "401" in refused and "Invalid credentials" in refused
    assert "POST /api/repos/create" in local_hub.requests


def test_push_then_pull_gives_identical_model(saved_model, pushed, local_hub, tmp_path):
    folder, reference, model = saved_model
    env = client_env(local_hub.endpoint, tmp_path / "hf-home")
    pull_and_compare(REPO_ID, env, tmp_path, reference, model, tokenizer_source="repo")
    assert local_hub.file_bytes(REPO_ID, "model.safetensors") == (folder / "model.safetensors").read_bytes()
    assert any(request.startswith("PUT /lfs-upload/") for request in local_hub.requests), (
        "weights did not go through LFS"
    )
    assert local_hub.unhandled_requests == []


def test_pushed_model_card_is_hetlms(saved_model, pushed, local_hub):
    card = local_hub.file_bytes(REPO_ID, "README.md").decode()
    assert "HeTLM" in card and "hetlm" in card.split("---")[1]
    # The push reloaded the folder first: every section of the saved card survives, byte for byte.
    assert card == (saved_model[0] / "README.md").read_text()
    for section in ("## Training data", "## Training", "## Outcome definition", "## Metrics", "## Limitations"):
        assert f"\n{section}\n" in card
    assert "**Synthetic** sessions" in card and "| IoU | 0.2500 |" in card and "**training users**: 3" in card


# -- the local Hub's protocol answers ----------------------------------------------------------
def hub_request(hub: LocalHub, method: str, path: str, body: dict | None = None, token: str | None = None):
    """(status, headers, body bytes) of one request; HTTP errors are returned, not raised."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(hub.endpoint + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_local_hub_error_codes_and_auth():
    with LocalHub(tokens={WRITE_TOKEN: "org"}) as hub:
        status, headers, _ = hub_request(hub, "HEAD", "/org/missing/resolve/main/config.json")
        assert (status, headers["X-Error-Code"]) == (404, "RepoNotFound")
        assert hub_request(hub, "POST", "/api/repos/create", {"name": "demo", "organization": "org"})[0] == 401
        assert (
            hub_request(hub, "POST", "/api/repos/create", {"name": "demo", "organization": "other"}, WRITE_TOKEN)[0]
            == 403
        )
        status, _, body = hub_request(
            hub, "POST", "/api/repos/create", {"name": "demo", "organization": "org"}, WRITE_TOKEN
        )
        assert status == 200 and json.loads(body)["url"] == f"{hub.endpoint}/org/demo"
        assert (
            hub_request(hub, "POST", "/api/repos/create", {"name": "demo", "organization": "org"}, WRITE_TOKEN)[0]
            == 409
        )
        status, headers, _ = hub_request(hub, "HEAD", "/org/demo/resolve/main/config.json")
        assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
        status, headers, _ = hub_request(hub, "HEAD", "/org/demo/resolve/" + "f" * 40 + "/.gitattributes")
        assert (status, headers["X-Error-Code"]) == (404, "RevisionNotFound")
        status, headers, body = hub_request(hub, "GET", "/org/demo/resolve/main/.gitattributes")
        assert status == 200 and headers["ETag"] == f'"{git_blob_sha1(body)}"' and len(headers["X-Repo-Commit"]) == 40
        status, _, body = hub_request(hub, "GET", "/api/whoami-v2", token=WRITE_TOKEN)
        assert status == 200 and json.loads(body)["name"] == "org"
        status, headers, _ = hub_request(hub, "GET", "/api/models/org/demo", token="hf_wrong")
        assert status == 401 and headers["X-Error-Message"] == "Invalid credentials in Authorization header"


def test_local_hub_rejects_bad_uploads():
    with LocalHub(tokens={WRITE_TOKEN: "org"}) as hub:
        hub_request(hub, "POST", "/api/repos/create", {"name": "demo", "organization": "org"}, WRITE_TOKEN)
        oid = "0" * 64
        status, _, body = hub_request(
            hub,
            "POST",
            "/org/demo.git/info/lfs/objects/batch",
            {"operation": "upload", "objects": [{"oid": oid, "size": 3}]},
            WRITE_TOKEN,
        )
        href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
        upload = urllib.request.Request(href, data=b"abc", method="PUT")
        with pytest.raises(urllib.error.HTTPError, match="400"):
            urllib.request.urlopen(upload, timeout=10)
        commit = (
            json.dumps({"key": "header", "value": {"summary": "x"}})
            + "\n"
            + json.dumps(
                {"key": "lfsFile", "value": {"path": "w.safetensors", "algo": "sha256", "oid": oid, "size": 3}}
            )
        )
        request = urllib.request.Request(
            f"{hub.endpoint}/api/models/org/demo/commit/main",
            data=commit.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {WRITE_TOKEN}"},
        )
        with pytest.raises(urllib.error.HTTPError, match="422"):
            urllib.request.urlopen(request, timeout=10)
