"""The scripted expert's oracle channel: a ground-truth state file keyed by frame stamp.

Why a file, and not a topic or a fake model server:

- The expert is a *backend* (``generate(request) -> Completion``) inside the planner
  process, and backends are core code that must not import rclpy; a topic would need a
  node handle the backend does not have.
- Its answers must travel the model's path (request -> backend -> parse -> ground -> gate
  -> publish). A file read inside ``generate`` keeps that path untouched, while an
  OpenAI-compatible endpoint served by the sim would force the ``openai`` backend and an
  HTTP server into every test for no gain.
- Keying entries by the header stamp of each published frame lets the expert answer about
  exactly the frame the planner's clip ends with (the one a model would look at), not
  about whatever the simulator shows when the request happens to arrive.

The sim node writes the file (``GroundTruthWriter``), atomically (write then rename), with
the last ``keep`` frames of the current episode; a reset starts a new episode and drops
the old frames, so a stale request cannot be answered from a scene that no longer exists.
The file also makes runs inspectable: it is plain JSON. The same JSON (one frame) is
published on the sim node's ``~/ground_truth`` topic for bags and debugging.
"""

import json
import os
from collections import deque
from pathlib import Path
from typing import Any, Deque, Dict, Optional, Union

from cosmos_planner.errors import BackendError, ConfigError

SCHEMA = 'cosmos_planner/sim_ground_truth/v1'
#: Environment variable naming the state file when the expert gets no explicit path.
GROUND_TRUTH_ENV = 'COSMOS_PLANNER_GROUND_TRUTH'


class GroundTruthWriter:
    """Keeps the last ``keep`` frames of the current episode in an atomically replaced file."""

    def __init__(self, path: Path, keep: int = 32) -> None:
        if keep < 1:
            raise ConfigError(f'ground truth keep must be >= 1, got {keep}')
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._frames: Deque[Dict[str, Any]] = deque(maxlen=keep)
        self._episode = 0

    def reset(self, episode: int) -> None:
        """Start a new episode: forget every frame (stamps are reused from zero)."""
        self._episode = int(episode)
        self._frames.clear()
        self._write()

    def add(self, stamp_ns: int, truth: Dict[str, Any]) -> None:
        """Record the truth of the frame published with header stamp ``stamp_ns``."""
        self._frames.append({'stamp_ns': int(stamp_ns), **truth})
        self._write()

    def _write(self) -> None:
        doc = {'schema': SCHEMA, 'episode': self._episode, 'frames': list(self._frames)}
        tmp = self.path.with_name(self.path.name + f'.tmp{os.getpid()}')
        tmp.write_text(json.dumps(doc, separators=(',', ':')))
        os.replace(tmp, self.path)


class GroundTruthReader:
    """Looks up the truth of a frame by its stamp (the expert's side of the channel)."""

    def __init__(self, path: Optional[Union[str, Path]] = None) -> None:
        if path is None:
            env = os.environ.get(GROUND_TRUTH_ENV, '')
            if not env:
                raise ConfigError(
                    'the scripted expert needs the simulator\'s ground-truth file: pass '
                    f'ground_truth=PATH or set {GROUND_TRUTH_ENV} (cosmos-planner sim does)')
            path = Path(env)
        self.path = Path(path)

    def read(self) -> Dict[str, Any]:
        """Return the whole current document; BackendError when missing or unreadable."""
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise BackendError(f'no ground truth yet at {self.path} (is the sim running?)',
                               retryable=True) from None
        except (OSError, ValueError) as exc:
            raise BackendError(f'cannot read ground truth {self.path}: {exc}',
                               retryable=True) from None
        if not isinstance(doc, dict) or doc.get('schema') != SCHEMA:
            raise BackendError(f'{self.path} is not a {SCHEMA} document')
        return doc

    def lookup(self, stamp_ns: int, tolerance_ns: int = 0) -> Dict[str, Any]:
        """Return the frame stamped ``stamp_ns`` (or the nearest within ``tolerance_ns``).

        Raises a retryable BackendError when the frame is not in the current episode (too
        old, or from before a reset), so the planner reports it instead of acting on a
        scene that is gone.
        """
        frames = self.read().get('frames', [])
        best = None
        for frame in frames:
            gap = abs(int(frame.get('stamp_ns', -1)) - int(stamp_ns))
            if gap <= tolerance_ns and (best is None or gap < best[0]):
                best = (gap, frame)
        if best is None:
            have = [f.get('stamp_ns') for f in frames[-3:]]
            raise BackendError(
                f'no ground truth for frame stamp {stamp_ns} ns in the current episode '
                f'(newest stamps: {have})', retryable=True)
        return best[1]
