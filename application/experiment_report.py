"""The experiment's ``report.md``: what ran, a glossary of every abbreviation (:mod:`evaluation.glossary`), the
headline table and plot, cluster recovery, cluster profiles and dynamics, every plot of the evaluation (relative
image links), stage timings and the full comparison, rendered from the run's summary and folder.

Example:
    >>> summary = {"models": {"m": {"Combined": {"N": 2, "HR": 1.0}}}, "clusterwise": {}}
    >>> summary_table(summary).splitlines()[0]
    '| Model | N | HR | IoA | IoP | IoU | Val-P | New-P | CoP F1 | CoP ROC-AUC | NDCG@10 | Recall@10 | BLEU | K |'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.cluster_profiles import load_cluster_profiles, profiles_markdown
from evaluation.glossary import glossary_markdown, without_glossary
from evaluation.history_blend import HISTORY_SUFFIX
from evaluation.report import INTERVALS_PLOT
from evaluation.report_tables import markdown_table

from .experiment_settings import ExperimentSettings

EVALUATION_STAGE = "evaluation"
# The evaluation's plots of each model, in the report's order, with their captions.
PLOT_CAPTIONS: dict[str, str] = {
    "training.png": "training curves",
    "cluster_sizes.png": "users per cluster",
    "page_metrics_per_cluster.png": "page generation per cluster",
    "outcomes_per_cluster.png": "outcome prediction per cluster",
    "reliability.png": "reliability of the outcome probabilities",
}
_PLOT_ORDER = {name: index for index, name in enumerate(PLOT_CAPTIONS)}


def summary_table(summary: dict[str, Any]) -> str:
    """The headline table printed at the end: each model's main Combined figures and its final K.

    Example:
        >>> summary = {"models": {"m": {"Combined": {"N": 2, "HR": 1.0}}}, "clusterwise": {"m": {"num_clusters": 3}}}
        >>> print(summary_table(summary).splitlines()[-1])
        | m | 2 | 1.000 | - | - | - | - | - | - | - | - | - | - | 3 |
    """
    columns = [
        "Model",
        "N",
        "HR",
        "IoA",
        "IoP",
        "IoU",
        "Val-P",
        "New-P",
        "CoP F1",
        "CoP ROC-AUC",
        "NDCG@10",
        "Recall@10",
        "BLEU",
        "K",
    ]
    rows = []
    for name, result in summary["models"].items():
        rows.append(
            {
                "Model": name,
                **result["Combined"],
                "K": summary["clusterwise"].get(name.removesuffix(HISTORY_SUFFIX), {}).get("num_clusters"),
            }
        )
    return markdown_table(rows, columns)


def cluster_dynamics_lines(clusterwise: dict[str, Any]) -> list[str]:
    """The report's "Cluster dynamics" section: per HeTLM model, how many training users left their start's cluster
    (the K-means one, or the browsing-statistics one when ``initial_partition`` chose it) and how K changed, against
    the K-means baseline of the same K, then the per-epoch table.

    Example:
        >>> row = {"epoch": 1.0, "num_clusters": 1, "cluster_sizes": [10], "users_moved_since_kmeans": 4,
        ...        "users_moved_since_last": 4, "validation_nll": 2.8}
        >>> clusterwise = {"kmeans-k2": {"num_clusters": 2, "routed_validation_nll": 2.9, "segment_ari": 0.1},
        ...                "hetlm-a5-b9": {"num_clusters": 1, "cluster_sizes": [10],
        ...                                "kmeans": {"k": 2, "sizes": [6, 4]},
        ...                                "routed_validation_nll": 2.8, "segment_ari": 0.4, "dynamics": [row]}}
        >>> print(cluster_dynamics_lines(clusterwise)[2].replace("; ", ";\\n"))
        **hetlm-a5-b9**: 4 of 10 training users moved (40.0%);
        K 2 -> 1;
        sizes [6, 4] -> [10];
        routed validation NLL 2.800 (K-means K=2: 2.900);
        segment ARI 0.400 (K-means: 0.100).
    """
    lines = ["## Cluster dynamics (HeTLM vs its K-means start)", ""]
    for name, result in clusterwise.items():
        dynamics = result.get("dynamics")
        if not dynamics:
            continue
        start_k = result["kmeans"]["k"]
        baseline = clusterwise.get(f"kmeans-k{start_k}", {})
        users = sum(result["cluster_sizes"])
        last = dynamics[-1]
        moved = last.get("users_moved_since_kmeans")
        partition = result.get("initial_partition") or {"chosen": "encoder"}
        since = "K-means" if partition["chosen"] == "encoder" else "start"
        sentence = f"**{name}**: "
        if partition["chosen"] != "encoder":
            sentence += f"started from the {partition['chosen']} partition ({start_description(partition)}); "
        if moved is not None:
            sentence += f"{moved} of {users} training users moved{' from it' if since == 'start' else ''} "
            sentence += f"({moved / users:.1%}); "
        sentence += f"K {start_k} -> {result['num_clusters']}; "
        sentence += f"sizes {result['kmeans']['sizes']} -> {result['cluster_sizes']}"
        if result.get("routed_validation_nll") is not None:
            sentence += f"; routed validation NLL {result['routed_validation_nll']:.3f}"
            if baseline.get("routed_validation_nll") is not None:
                sentence += f" (K-means K={start_k}: {baseline['routed_validation_nll']:.3f})"
        if result.get("segment_ari") is not None:
            sentence += f"; segment ARI {result['segment_ari']:.3f}"
            if baseline.get("segment_ari") is not None:
                sentence += f" (K-means: {baseline['segment_ari']:.3f})"
        lines += [sentence + ".", ""]
        if result.get("selector_pretraining_mean_max_probability") is not None:
            lines += [
                f"Selector after pretraining: K-means agreement {result['selector_pretraining_agreement']:.3f}, "
                f"mean max-probability {result['selector_pretraining_mean_max_probability']:.3f}.",
                "",
            ]
        rows = [
            {
                "Epoch": row["epoch"],
                "K": row["num_clusters"],
                "Sizes": str(row["cluster_sizes"]),
                f"Moved since {since}": row.get("users_moved_since_kmeans"),
                "Moved since last": row.get("users_moved_since_last"),
                "Validation NLL": row.get("validation_nll"),
            }
            for row in dynamics
        ]
        lines += [
            markdown_table(
                rows, ["Epoch", "K", "Sizes", f"Moved since {since}", "Moved since last", "Validation NLL"]
            ),
            "",
        ]
    return lines if len(lines) > 2 else []


def start_description(partition: dict[str, Any]) -> str:
    """How HeTLM's start was chosen, in words (``partition``: its training history's ``initial_partition``).

    Example:
        >>> start_description({"chosen": "browsing", "validation_nll": {"encoder": 2.857, "browsing": 2.840},
        ...                    "ari_with_encoder_kmeans": {"encoder": 1.0, "browsing": 0.002}})
        'routed validation NLL 2.840 vs 2.857 for the encoder K-means; ARI with the encoder K-means 0.002'
    """
    chosen, scores = partition["chosen"], partition.get("validation_nll") or {}
    agreement = f"ARI with the encoder K-means {partition['ari_with_encoder_kmeans'][chosen]:.3f}"
    if scores.get(chosen) is None:
        return f"set by initial_partition; {agreement}"
    others = "; ".join(f"{scores[name]:.3f} for the {name} K-means" for name in scores if name != chosen)
    return f"routed validation NLL {scores[chosen]:.3f} vs {others}; {agreement}"


def cluster_profile_lines(clusterwise: dict[str, Any], run_dir: Path) -> list[str]:
    """The report's "Cluster profiles" section: each clusterwise model's profiles (saved in its folder at
    training, :mod:`evaluation.cluster_profiles`) as a table, or a line saying they are missing.

    Example:
        >>> import tempfile
        >>> from evaluation.cluster_profiles import compute_cluster_profiles, save_cluster_profiles
        >>> run = Path(tempfile.mkdtemp())
        >>> _ = save_cluster_profiles(compute_cluster_profiles([[["a", "cart"]], [["b"]]], [0, 1]), run / "kmeans-k2")
        >>> lines = cluster_profile_lines({"kmeans-k2": {}, "hetlm-a5-b9": {}}, run)
        >>> lines[2], lines[-2]
        ('**kmeans-k2**', '**hetlm-a5-b9**: no cluster profiles saved with the model.')
    """
    if not clusterwise:
        return []
    lines = ["## Cluster profiles (training users of each cluster)", ""]
    for name in clusterwise:
        profiles = load_cluster_profiles(run_dir / name)
        if profiles is None:
            lines += [f"**{name}**: no cluster profiles saved with the model.", ""]
            continue
        lines += [f"**{name}**", "", profiles_markdown(profiles), ""]
    return lines


def plot_lines(summary: dict[str, Any], run_dir: Path) -> list[str]:
    """The report's "Plots" section: every PNG the evaluation wrote for each model, as image links relative
    to ``run_dir`` (where ``report.md`` is), with a caption.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> (run / EVALUATION_STAGE / "m").mkdir(parents=True)
        >>> _ = (run / EVALUATION_STAGE / "m" / "training.png").write_bytes(b"png")
        >>> plot_lines({"models": {"m": {}, "n": {}}}, run)[2:]
        ['### m', '', '![m: training curves](evaluation/m/training.png)', '']
    """
    lines = ["## Plots", ""]
    for name in summary["models"]:
        folder = run_dir / EVALUATION_STAGE / name
        plots = sorted(
            folder.glob("*.png"), key=lambda path: (_PLOT_ORDER.get(path.name, len(_PLOT_ORDER)), path.name)
        )
        if not plots:
            continue
        lines += [f"### {name}", ""]
        lines += [
            f"![{name}: {PLOT_CAPTIONS.get(path.name, path.stem.replace('_', ' '))}]"
            f"({path.relative_to(run_dir).as_posix()})"
            for path in plots
        ]
        lines.append("")
    return lines if len(lines) > 2 else []


def report_markdown(summary: dict[str, Any], comparison: str, settings: ExperimentSettings, run_dir: Path) -> str:
    """The run's ``report.md`` in ``run_dir``: what ran, the glossary, the headline table and plot, cluster
    recovery, profiles and dynamics, every plot, timings and the full comparison (its image links relative to
    ``run_dir``)."""
    lines = ["# HeTLM experiment report", ""]
    if summary["synthetic"]:
        lines += ["**SYNTHETIC DATA**: users generated by the built-in browsing simulator, not real users.", ""]
    data = summary.get("data", {})
    scenario = f", scenario `{settings.simulator_scenario}`" if settings.format == "simulator" else ""
    source = f"Source `{data.get('source', settings.source)}` ({data.get('format', settings.format)}{scenario})"
    if settings.prepared_data is not None:
        source = f"Prepared data `{settings.prepared_data}` ({source[0].lower()}{source[1:]})"
    lines += [
        f"{source}, family `{settings.family}`, "
        f"initial K={settings.num_clusters}, (alpha, beta) pairs {settings.ablation}. "
        f"Machine: {summary['machine']['processor']}, {summary['machine']['cpu_count']} CPUs"
        f"{', GPU ' + summary['machine']['cuda'] if summary['machine']['cuda'] else ''}.",
        "",
        glossary_markdown(),
        f"## Summary (test users, Combined; {summary.get('decodings', ['sampled'])[0]} decoding)",
        "",
        summary_table(summary),
        "",
    ]
    headline_plot = run_dir / EVALUATION_STAGE / INTERVALS_PLOT
    if headline_plot.is_file():
        lines += [
            f"![All models on HR, IoU, CoP F1 and NDCG@10 with 95% bootstrap intervals]"
            f"({headline_plot.relative_to(run_dir).as_posix()})",
            "",
        ]
    lines += ["## Cluster recovery of the known segments", ""]
    recovery_rows = [
        {"Model": name, "ARI": result["cluster_recovery"]["ARI"], "NMI": result["cluster_recovery"]["NMI"]}
        for name, result in summary["models"].items()
        if result.get("cluster_recovery")
    ]
    lines += [
        markdown_table(recovery_rows, ["Model", "ARI", "NMI"])
        if recovery_rows
        else "No known segments (the simulator's, or a log's segment column): no recovery scores.",
        "",
    ]
    lines += cluster_profile_lines(summary["clusterwise"], run_dir)
    lines += cluster_dynamics_lines(summary["clusterwise"])
    lines += plot_lines(summary, run_dir)
    lines += [
        "## Stage timings",
        "",
        markdown_table(
            [{"Stage": t["name"], "Seconds": t["seconds"], "Reused": t["reused"]} for t in summary["stage_timings"]],
            ["Stage", "Seconds", "Reused"],
            digits=1,
        ),
        "",
        without_glossary(comparison).replace("# Combined results", "## All metrics (Combined rows)"),
    ]
    return "\n".join(lines) + "\n"
