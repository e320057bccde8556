"""`AutoModel.from_pretrained(folder, trust_remote_code=True)` in a fresh virtual environment without `hetlm`.

The environment is a real `python -m venv` whose site-packages holds symlinks to exactly the
distributions that torch, transformers, safetensors and tokenizers need (their dependency
closure, read from the installed metadata) and nothing else: neither this package (nor its
editable-install finder) nor sentence-transformers. The child process checks that first, then
loads each saved folder through the code files copied into it (as `AutoModel` and, for the text-generation
pipeline, as `AutoModelForCausalLM`) and writes its losses and greedy generations, which must equal those of the
original models bit for bit; a folder with a flipped weight
byte or another data set's page tokenizer must be refused there too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from safetensors.torch import load_file

from modeling_fixtures import FAMILIES, prompt_batch, tiny_model, training_batch
from tokenization.page_tokenizer import build_page_tokenizer

RUNTIME_PACKAGES = ("torch", "transformers", "safetensors", "tokenizers")
CHILD_TIMEOUT_S = 300
GENERATION = {"max_new_tokens": 6, "do_sample": False}

CHILD_SCRIPT = """
import importlib.util, json, sys
for name in ("modeling_hetlm", "tokenization", "trainers", "evaluation", "sentence_transformers"):
    if importlib.util.find_spec(name) is not None:
        sys.exit(f"{name} is importable: not a fresh environment")
import torch
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer, pipeline

torch.set_num_threads(1)
request = json.load(open(sys.argv[1]))
results = {}
for name, folder in request["folders"].items():
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) == model.config.num_pages
    batch = {key: torch.tensor(value) for key, value in request["inputs"].items()}
    results[f"{name}.nll"] = model(batch["ids"], batch["mask"]).per_cluster_nll
    results[f"{name}.generated"] = model.generate(batch["prompts"], batch["prompt_mask"], **request["generation"])
    generator = pipeline("text-generation", model=folder, trust_remote_code=True)
    assert type(generator.model).__module__.startswith("transformers_modules"), type(generator.model).__module__
    results[f"{name}.causal_lm"] = generator.model.generate(
        batch["prompts"], batch["prompt_mask"], **request["generation"]
    )
for folder, expected in request["refused"].items():
    try:
        AutoModel.from_pretrained(folder, trust_remote_code=True)
    except (OSError, ValueError) as error:
        assert expected in str(error), error
    else:
        sys.exit(f"{folder}: a damaged folder loaded")
save_file(results, sys.argv[2])
"""


def _dependency_closure(roots: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need (without optional extras), roots included."""
    seen: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in seen:
            continue
        distribution = metadata.distribution(name)
        seen[name] = distribution
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(seen.values())


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory) -> Path:
    """The interpreter of a new venv holding only the runtime packages of a saved HeTLM folder."""
    root = tmp_path_factory.mktemp("fresh-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    target = Path(sysconfig.get_path("purelib", vars={"base": str(root), "platbase": str(root)}))
    source = Path(sysconfig.get_path("purelib"))
    for distribution in _dependency_closure(RUNTIME_PACKAGES):
        tops = {Path(str(file)).parts[0] for file in distribution.files or []}
        for top in tops - {"..", "__pycache__"}:
            if not top.endswith(".pth") and (source / top).exists() and not (target / top).exists():
                (target / top).symlink_to(source / top)
    return root / "bin" / "python"


def test_remote_code_loads_in_a_fresh_environment(fresh_python, tmp_path):
    models = {family: tiny_model(family, num_clusters=3) for family in FAMILIES}
    models["llama"].prune_clusters([2, 0])
    folders = {}
    for family, model in models.items():
        folders[family] = str(tmp_path / family)
        model.save_pretrained(folders[family])
    refused = {str(tmp_path / "flipped"): "sha256 differs", str(tmp_path / "other-pages"): "does not match"}
    for folder in refused:
        shutil.copytree(folders["opt"], folder)
    weights = Path(tmp_path / "flipped" / "model.safetensors")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    build_page_tokenizer([f"/other/{index}" for index in range(9)]).save_pretrained(tmp_path / "other-pages")
    tokenizer = models["opt"].page_tokenizer
    ids, mask = training_batch(tokenizer)
    prompts, prompt_mask = prompt_batch(tokenizer)
    inputs = {"ids": ids, "mask": mask, "prompts": prompts, "prompt_mask": prompt_mask}
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "folders": folders,
                "refused": refused,
                "generation": GENERATION,
                "inputs": {k: v.tolist() for k, v in inputs.items()},
            }
        )
    )
    environment = {"PATH": os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    output = tmp_path / "results.safetensors"
    child = subprocess.run(
        [str(fresh_python), "-I", "-c", CHILD_SCRIPT, str(request), str(output)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results = load_file(output)
    for family, model in models.items():
        assert torch.equal(results[f"{family}.nll"], model(ids, mask).per_cluster_nll)
        assert torch.equal(results[f"{family}.generated"], model.generate(prompts, prompt_mask, **GENERATION))
        assert torch.equal(results[f"{family}.causal_lm"], torch.cat([prompts, results[f"{family}.generated"]], 1))
