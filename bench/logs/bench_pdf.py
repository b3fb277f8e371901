"""How long a run's PDF takes: ``run_pdf`` over a log file of N lines, with the host's TTF and
with the Courier fallback. Prints seconds, pages and size per case.

    python bench/logs/bench_pdf.py [--lines 1000,10000] [--width 80]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from manager.logs.pdf import find_font, run_pdf  # noqa: E402
from manager.logs.store import LogWriter, iter_lines  # noqa: E402


def write_log(path: Path, count: int, width: int) -> None:
    writer = LogWriter(path)
    start = datetime(2026, 12, 5, 8, 0, 0)
    for n in range(count):
        moment = start + timedelta(milliseconds=n)
        text = f"{n:>8} café 中文 " + "x" * max(0, width - 18)
        writer.append("stdout", text, moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", default="1000,10000")
    parser.add_argument("--width", type=int, default=80)
    args = parser.parse_args()
    font = find_font()
    print(f"font: {font or 'none (Courier fallback)'}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (int(n) for n in args.lines.split(",")):
            path = Path(tmp) / f"run_{count}.log"
            write_log(path, count, args.width)
            for label, use_font in (("ttf", True), ("courier", False)):
                if use_font and font is None:
                    continue
                began = time.perf_counter()
                body = run_pdf(
                    {"execution_id": "bench"}, iter_lines(path), use_default_font=use_font
                )
                took = time.perf_counter() - began
                pages = len(re.findall(rb"/Type\s*/Page\b", body))
                print(
                    f"{count:>7} lines x {args.width} chars, {label:<7}: {took:6.2f} s, "
                    f"{pages} pages, {len(body) / 1024:.0f} KiB, {count / took:,.0f} lines/s"
                )


if __name__ == "__main__":
    main()
