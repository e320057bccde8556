"""Throughput and peak memory of ``hetlm prepare`` on REES46-format CSVs of N million events.

For each N: writes a realistic synthetic REES46 CSV (see ``rees46_synthetic.py``) to a temporary
folder, then, each in a fresh child process, (1) only reads it with ``read_events(..., "rees46")``
and (2) runs the full ``tokenization.prepare.prepare``. Prints events per second (CSV rows / wall
seconds of the call, imports excluded), the CPU seconds it used (user + system, all threads: on
a machine shared with other jobs the wall clock overstates the cost) and the child's peak RSS
(VmHWM, imports included). The target is at least 1,000,000 events/s end to end with a peak RSS
that stays flat as N grows.

Example:
    $ .venv/bin/python benchmarks/prepare_throughput.py 1 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rees46_synthetic import write_rees46_csv  # noqa: E402

_CHILD = r"""
import json, resource, sys, time
from tokenization.prepare import prepare
from tokenization.readers import read_events

stage, csv_path, out_dir, granularity = sys.argv[1:5]
def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(u.ru_utime + u.ru_stime for u in usage)

started, cpu_started = time.perf_counter(), cpu_seconds()
if stage == "read":
    stream = read_events(csv_path, "rees46", granularity=granularity, on_bad_rows="skip")
    events = sum(batch.num_rows for batch in stream)
    extra = {"events_out": events, "report": stream.report}
else:
    summary = prepare(
        csv_path, "rees46", out_dir, on_bad_rows="skip", reader_options={"granularity": granularity}, progress=False
    )
    extra = {"users": summary.get("users"), "timings_s": summary.get("timings_s")}
seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would include the parent's
# memory (the CSV generator) at fork time.
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak_kib / 1024, **extra}, default=str))
"""


def run_child(stage: str, csv_path: Path, out_dir: Path, granularity: str) -> dict:
    """Run one stage in a fresh Python process and return what it measured."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, stage, str(csv_path), str(out_dir), granularity],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "millions", nargs="*", type=float, default=[1.0, 10.0], help="Sizes in millions of events (default: 1 10)."
    )
    parser.add_argument("--granularity", default="product", choices=("product", "category", "both"))
    parser.add_argument("--tmp-dir", default=None, help="Where to write the CSVs (default: the system temp folder).")
    parser.add_argument("--skip-read", action="store_true", help="Only time prepare, not the reader alone.")
    args = parser.parse_args()

    print(
        f"{'events':>12} {'csv MB':>8} {'stage':>8} {'seconds':>8} {'events/s':>12} {'CPU s':>7} "
        f"{'events/CPU-s':>13} {'peak RSS MiB':>13}"
    )
    for millions in args.millions:
        num_events = int(millions * 1_000_000)
        with tempfile.TemporaryDirectory(dir=args.tmp_dir) as folder:
            csv_path = write_rees46_csv(Path(folder) / "rees46.csv", num_events)
            size_mb = csv_path.stat().st_size / 1e6
            stages = ("prepare",) if args.skip_read else ("read", "prepare")
            for stage in stages:
                clock = time.perf_counter()
                measured = run_child(stage, csv_path, Path(folder) / "prepared", args.granularity)
                rate = num_events / measured["seconds"]
                cpu_rate = num_events / max(measured["cpu_seconds"], 1e-9)
                print(
                    f"{num_events:>12,} {size_mb:>8.0f} {stage:>8} {measured['seconds']:>8.2f} {rate:>12,.0f} "
                    f"{measured['cpu_seconds']:>7.2f} {cpu_rate:>13,.0f} {measured['peak_rss_mib']:>13,.0f}"
                    f"   (child wall incl. start-up {time.perf_counter() - clock:.1f}s)",
                    flush=True,
                )
                if stage == "prepare" and measured.get("timings_s"):
                    timings = ", ".join(
                        f"{k} {v:.2f}s" for k, v in measured["timings_s"].items() if isinstance(v, (int, float))
                    )
                    print(f"{'':>12} prepare stages: {timings}", flush=True)


if __name__ == "__main__":
    main()
