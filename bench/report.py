"""Turn ``pytest bench --benchmark-json=FILE`` output into a markdown table of median commands/s.

Usage: ``python bench/report.py FILE`` (prints to stdout). Each benchmark's ``extra_info`` carries the number
of commands it ran (``commands``), the ``path`` (per-command or run_batch) and the ``implementation``.
Ratios are per command, against the pure-Python reference's per-command median.
"""
from __future__ import annotations

import json
import sys


def rows_of(data: dict) -> list[dict]:
    rows = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        commands = info.get("commands")
        if not commands:
            continue
        median = bench["stats"]["median"]
        rows.append({
            "name": bench["name"], "implementation": info.get("implementation", "?"), "path": info.get("path", "?"),
            "commands": commands, "median_s": median, "rate": commands / median, "rounds": bench["stats"]["rounds"],
        })
    return rows


def table(data: dict) -> str:
    rows = rows_of(data)
    reference = next((r["rate"] for r in rows if r["implementation"] == "python" and r["path"] == "per-command"),
                     None)
    machine = data.get("machine_info", {})
    lines = [
        f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"Python {machine.get('python_version', '?')}; {data.get('datetime', '')}",
        "",
        "| benchmark | implementation | path | commands | median time | median commands/s | × reference |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: r["rate"]):
        ratio = f"{r['rate'] / reference:,.1f}×" if reference else "n/a"
        lines.append(f"| {r['name']} | {r['implementation']} | {r['path']} | {r['commands']:,} | "
                     f"{r['median_s'] * 1e3:,.1f} ms | {r['rate']:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1]) as stream:
        print(table(json.load(stream)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
