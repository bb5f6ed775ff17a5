#!/usr/bin/env python3
"""Load benchmark of a running streaming_server.py (127.0.0.1 only): how many concurrent real-time clients it
serves while every client's final result arrives within --final-deadline of its end of audio.

For each count of --clients, that many clients start together (spread over the first second), each streaming one
wave file at real-time pace in messages of --seconds-per-message; the script reports, per count: the final-result
latency (max, p95), the partial-result latency (p50, p95: arrival minus the moment the client had sent the
decoded_seconds the result covers; a chunk also needs 70 ms of look-ahead audio, counted in it), and, with
--server-pid, the server's CPU (percent of one core) and peak RSS. It stops at the first count that misses the
deadline, or after --max-seconds in all.

Usage (from egs/librispeech/ASR, with a server on port 6006 whose pid is PID):
  ./local/bench_streaming_server.py --server-port 6006 --server-pid PID --clients 10,20,30,40,50,60 \\
      download/LibriSpeech/test-clean/*/*/*.flac
"""

import argparse
import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from icefall_lite.cli import positive_float, setup_logging
from icefall_lite.export.inputs import read_wave
from icefall_lite.server.client import Transcript, stream_samples

STARTUP_SPREAD_SECONDS = 1.0


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-port", type=int, default=6006, help="the server on 127.0.0.1 (default 6006)")
    parser.add_argument("--server-pid", type=int, default=None, help="the server's process id, to measure its CPU and memory")
    parser.add_argument("--clients", default="10,20,30,40,50", help="client counts to try, in order (default 10,20,30,40,50)")
    parser.add_argument("--seconds-per-message", type=positive_float, default=0.1, help="(default 0.1)")
    parser.add_argument("--final-deadline", type=positive_float, default=1.0, help="seconds from end of audio to final result (default 1)")
    parser.add_argument("--max-seconds", type=positive_float, default=600, help="stop starting new rounds after this (default 600)")
    parser.add_argument("--max-file-seconds", type=positive_float, default=15, help="use files up to this long (default 15)")
    parser.add_argument("sound_files", type=Path, nargs="+", help="16 kHz mono files, used in turn by the clients")
    return parser


class ProcessMeter:
    """CPU seconds and peak resident memory of a process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start_cpu = self.cpu_seconds()
        self.start = time.monotonic()
        self.peak_rss_mb = 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)

    def cpu_percent(self) -> float:
        return 100 * (self.cpu_seconds() - self.start_cpu) / (time.monotonic() - self.start)


async def client(url: str, samples: np.ndarray, delay: float, seconds_per_message: float) -> Transcript:
    await asyncio.sleep(delay)
    return await stream_samples(url, samples, seconds_per_message, real_time=True)


async def sample_memory(meter: Optional[ProcessMeter], stop: asyncio.Event) -> None:
    while meter is not None and not stop.is_set():
        meter.sample()
        await asyncio.sleep(0.5)


async def one_round(url: str, waves: List[np.ndarray], count: int, args: argparse.Namespace) -> Dict[str, float]:
    meter = ProcessMeter(args.server_pid) if args.server_pid else None
    stop = asyncio.Event()
    memory = asyncio.create_task(sample_memory(meter, stop))
    delays = np.linspace(0, STARTUP_SPREAD_SECONDS, count, endpoint=False)
    transcripts = await asyncio.gather(
        *(client(url, waves[i % len(waves)], float(delays[i]), args.seconds_per_message) for i in range(count))
    )
    stop.set()
    await memory
    finals = [t.messages[-1][0] - t.done_time for t in transcripts if t.messages]
    partials = [
        arrival - t.time_audio_sent(message["decoded_seconds"])
        for t in transcripts for arrival, message in t.messages if not message.get("is_final") and "decoded_seconds" in message
    ]
    stats = {
        "clients": count,
        "complete": sum(1 for t in transcripts if t.close_code == 1000 and t.messages),
        "final_max": max(finals, default=float("inf")),
        "final_p95": float(np.percentile(finals, 95)) if finals else float("inf"),
        "partial_p50": float(np.percentile(partials, 50)) if partials else float("nan"),
        "partial_p95": float(np.percentile(partials, 95)) if partials else float("nan"),
    }
    if meter is not None:
        stats.update(cpu_percent=meter.cpu_percent(), peak_rss_mb=meter.peak_rss_mb)
    return stats


def main() -> None:
    args = get_parser().parse_args()
    setup_logging()
    waves = [read_wave(path).numpy() for path in args.sound_files]
    waves = [w for w in waves if len(w) <= args.max_file_seconds * 16000]
    if not waves:
        raise SystemExit(f"no file of at most --max-file-seconds {args.max_file_seconds:g}")
    url = f"ws://127.0.0.1:{args.server_port}/"
    logging.info(f"{len(waves)} files, {sum(map(len, waves)) / 16000 / len(waves):.1f} s on average")
    started = time.monotonic()
    for count in (int(c) for c in args.clients.split(",")):
        if time.monotonic() - started > args.max_seconds:
            logging.info(f"--max-seconds {args.max_seconds:g} reached")
            break
        stats = asyncio.run(one_round(url, waves, count, args))
        logging.info(" ".join(f"{key} {value:.3f}" if isinstance(value, float) else f"{key} {value}" for key, value in stats.items()))
        if stats["complete"] < count or stats["final_max"] > args.final_deadline:
            logging.info(f"{count} clients: a final result came later than {args.final_deadline:g} s (or not at all)")
            break


if __name__ == "__main__":
    main()
