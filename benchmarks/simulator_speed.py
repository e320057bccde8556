"""Time the built-in browsing simulator (SYNTHETIC data) and print users/s and events/s.

Target: 100,000 users in under a minute on a 2-core machine.

Example:
    python benchmarks/simulator_speed.py --users 5000 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import time

from tokenization.simulator import SimulatorConfig, simulate_events


def time_simulation(num_users: int, seed: int) -> tuple[float, int]:
    """Seconds to simulate `num_users` users (table included) and the number of events made.

    Example:
        >>> seconds, events = time_simulation(100, seed=0)
        >>> events > 100
        True
    """
    start = time.perf_counter()
    table = simulate_events(SimulatorConfig(num_users=num_users, seed=seed))
    return time.perf_counter() - start, table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[5_000, 100_000], help="population sizes to time")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size; the fastest is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'users':>10} {'events':>11} {'seconds':>8} {'users/s':>10} {'events/s':>11}")
    for num_users in args.users:
        seconds, events = min(time_simulation(num_users, args.seed) for _ in range(args.repeats))
        print(
            f"{num_users:>10,} {events:>11,} {seconds:>8.2f} {num_users / seconds:>10,.0f} {events / seconds:>11,.0f}"
        )


if __name__ == "__main__":
    main()
