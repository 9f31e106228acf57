"""What a replay run did: counts, failures by reason, stage latencies, throughput.

Printed at the end of ``cosmos-planner replay`` and written as ``OUT/summary.json``.
"""

from dataclasses import dataclass, field
from typing import Dict


@dataclass
class ReplaySummary:
    """What a replay did; also written as ``summary.json``."""

    bag: str
    out: str
    frames: int = 0
    messages: int = 0
    requests: int = 0
    plans: int = 0
    statuses: Dict[str, int] = field(default_factory=dict)
    failures: Dict[str, int] = field(default_factory=dict)
    stage_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    skipped_ticks: int = 0
    bag_duration_s: float = 0.0
    #: Whole run, start-up (imports, model load) included.
    wall_s: float = 0.0
    #: The replay loop only (read, ingest, plan, write): what scales with the bag.
    loop_s: float = 0.0
    frames_per_s: float = 0.0
    #: Bag duration over loop time (steady state); ``bag_duration_s / wall_s`` for totals.
    realtime_factor: float = 0.0
    decoded_frames: int = 0
    #: Bytes read from the bag's storage files (index, headers, payloads): measured I/O.
    read_bytes: int = 0
    video_frames: int = 0
    published: Dict[str, int] = field(default_factory=dict)
    bad_inputs: Dict[str, int] = field(default_factory=dict)
    error: str = ''
    interrupted: bool = False

    def text(self) -> str:
        """Human summary printed at the end of a run."""
        lines = [f'replayed {self.frames} frames ({self.messages} messages, '
                 f'{self.bag_duration_s:.1f} s of bag) in {self.loop_s:.1f} s '
                 f'({self.wall_s:.1f} s with start-up): {self.frames_per_s:.1f} frames/s, '
                 f'{self.realtime_factor:.1f}x real time',
                 f'requests {self.requests}, plans {self.plans}, skipped ticks '
                 f'{self.skipped_ticks}, statuses {dict(sorted(self.statuses.items()))}']
        if self.failures:
            lines.append('failures by reason: ' + ', '.join(
                f'{k}: {v}' for k, v in sorted(self.failures.items())))
        if self.bad_inputs:
            lines.append('bad inputs: ' + ', '.join(
                f'{k}: {v}' for k, v in sorted(self.bad_inputs.items())))
        if self.stage_ms:
            lines.append('stage latencies ms (p50 / p95 / max): ' + ', '.join(
                f'{k} {v["p50"]:.1f}/{v["p95"]:.1f}/{v["max"]:.1f}'
                for k, v in sorted(self.stage_ms.items())))
        lines.append(f'output: {self.out}')
        if self.error:
            lines.append(f'stopped by error: {self.error}')
        if self.interrupted:
            lines.append('interrupted: outputs hold what was replayed so far')
        return '\n'.join(lines)
