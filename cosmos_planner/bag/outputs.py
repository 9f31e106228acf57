"""The replay's run directory: output bag, per-request records, video and summary.

Layout of ``OUT`` (``--out``)::

    OUT/run.json        options of the run (written first: marks OUT as a replay run)
    OUT/bag/            rosbag2, MCAP: the inputs used and everything published
    OUT/plans.jsonl     one JSON record per planning request (failures included)
    OUT/annotated.mp4   primary frames with the plan in force drawn
    OUT/summary.json    counts, failures by reason, stage latencies, speed

Stamping rule of the output bag: every output message is *logged* at the bag time the node
would have published it (request time plus model time, see ``schedule``), and its header
carries the plan's stamp (the source frame's header stamp), exactly as the node's messages
do; ``~/plan`` and ``~/status`` are std_msgs/String (no header) logged at the same time.
Copied inputs keep their recorded log time and bytes. Output messages are the neutral
records of :mod:`cosmos_planner.pipeline.outputs`, the ones the node publishes, serialized
with ``rosbags`` (:func:`cosmos_planner.bag.writer.to_rosbags`), so they hold what the node
publishes and writing them needs no ROS install.

Everything is closed properly on errors and Ctrl-C (the bag gets its index and
metadata.yaml, the MP4 its trailer), and ``OUT`` is never replaced without ``force``, and
even then only when it is a previous run (``run.json``) or empty.
"""

import json
from pathlib import Path
import shutil
from typing import Any, Dict, Optional, Set, Tuple

from cosmos_planner.bag.errors import BagError
from cosmos_planner.bag.video import AnnotatedVideo
from cosmos_planner.bag.writer import BagWriter
from cosmos_planner.pipeline.outputs import Msg, OUTPUT_TYPES

RUN_MARKER = 'run.json'
BAG_DIR = 'bag'
PLANS_FILE = 'plans.jsonl'
VIDEO_FILE = 'annotated.mp4'
SUMMARY_FILE = 'summary.json'


def prepare_run_dir(out: Path, force: bool) -> None:
    """Create ``out``; an existing one is replaced only with ``force`` and if it is a run."""
    if out.is_dir() and not any(out.iterdir()):
        return  # an empty directory holds nothing to overwrite
    if out.exists():
        if not force:
            raise BagError(f'output {out} exists; pass --force to replace it', kind='exists')
        if not out.is_dir() or (any(out.iterdir()) and not (out / RUN_MARKER).exists()):
            raise BagError(f'{out} exists and is not a replay run directory (no {RUN_MARKER}); '
                           'refusing to delete it', kind='exists')
        shutil.rmtree(out)
    out.mkdir(parents=True)


class RunWriter:
    """Writes one replay run; use as a context manager so everything is closed."""

    def __init__(self, out: Path, options: Dict[str, Any], force: bool = False,
                 video_fps: float = 5.0, video_max_width: int = 640,
                 video: bool = True) -> None:
        self.out = Path(out)
        prepare_run_dir(self.out, force)
        (self.out / RUN_MARKER).write_text(json.dumps(options, indent=2, default=str) + '\n')
        self.bag = BagWriter(self.out / BAG_DIR, storage='mcap')
        self.video = (AnnotatedVideo(self.out / VIDEO_FILE, video_fps, video_max_width)
                      if video else None)
        self._plans: Any = None
        self._copied: Set[Tuple[str, int]] = set()
        self.published: Dict[str, int] = {}

    def open(self) -> 'RunWriter':
        self.bag.open()
        self.bag.prepare(OUTPUT_TYPES.values())
        self.bag.set_custom_data('cosmos_planner.replay', 'output of cosmos-planner replay')
        self._plans = open(self.out / PLANS_FILE, 'w')
        return self

    def __enter__(self) -> 'RunWriter':
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def copy_input(self, topic: str, msgtype: str, log_time_ns: int, raw: bytes,
                   definition: Tuple[str, str]) -> None:
        """Copy a recorded message (once per topic and log time) with its exact type."""
        key = (topic, log_time_ns)
        if key in self._copied:
            return
        self._copied.add(key)
        if not self.bag.has_topic(topic):
            self.bag.add_topic(topic, msgtype, msgdef=definition[0], rihs01=definition[1])
        self.bag.write(topic, log_time_ns, raw)

    def publish(self, topic: str, log_time_ns: int, record: Msg) -> None:
        """Write a message record as the node would publish it on ``topic``."""
        self.bag.write_record(topic, log_time_ns, record)
        self.published[topic] = self.published.get(topic, 0) + 1

    def record(self, record: Dict[str, Any]) -> None:
        """Append one request record to plans.jsonl (flushed: readable if the run dies)."""
        self._plans.write(json.dumps(record, sort_keys=True, default=str) + '\n')
        self._plans.flush()

    def write_summary(self, summary: Dict[str, Any]) -> None:
        (self.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True,
                                                        default=str) + '\n')

    def close(self) -> None:
        """Close bag, records and video; every part is attempted even if one fails."""
        errors = []
        for closer in (self.bag.close, self._close_plans,
                       self.video.close if self.video else None):
            if closer is None:
                continue
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - close the rest, then report
                errors.append(exc)
        if errors:
            raise BagError(f'closing the run in {self.out} failed: {errors[0]}',
                           kind='write_failed') from errors[0]

    def _close_plans(self) -> None:
        plans, self._plans = self._plans, None
        if plans is not None:
            plans.close()


def load_summary(out: Path) -> Optional[Dict[str, Any]]:
    """Load the summary of a finished run (None when it has none)."""
    path = Path(out) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.exists() else None
