"""Prompt presets for Cosmos Reason 2, loaded from ``config/prompts/*.yaml``.

Prompts are configuration, not code: each YAML file holds the system prompt, the user prompt
(``{task}`` placeholder), NVIDIA's reasoning add-on, the sampling for both reasoning modes and
the decoding bounds (see ``trajectory.yaml`` for the documented format). A file path may be
given instead of a preset name, so users can try prompts without touching the package.

``build_request`` turns a preset, a clip and a task into a backend-neutral
``GenerationRequest``, following the format the model was trained on: system prompt
``You are a helpful assistant.``, media before text, and with reasoning on, the add-on after a
blank line.

Media items, in transformers content-list form, appear in the order ``(clip, *clip.context)``:
item ``i`` carries the pixels of that clip, ``{'type': 'video', 'camera': ...}`` for a clip of
several frames with a real frame rate, else ``{'type': 'image', 'camera': ...}`` (the clip's
newest frame). When context cameras are present, the text starts with one sentence per item
naming its camera and marking the primary one ("Video 1 is from the "wrist" camera; give all
coordinates in it. Image 2 is from the "scene" camera, for context."), then a blank line and
the prompt. Without context cameras the text is NVIDIA's prompt alone.
"""

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

from cosmos_planner.model.protocol import GenerationRequest, Sampling
from cosmos_planner.model.response_schemas import DecodingLimits, response_schema, RESPONSE_FORMATS
from cosmos_planner.errors import ConfigError
from cosmos_planner.frames.types import Clip
from cosmos_planner.resources import share_dir

PROMPTS_DIR = ('config', 'prompts')
MAX_TASK_CHARS = 500
_NAME = re.compile(r'^[a-z0-9][a-z0-9_-]*$')
_TOP_KEYS = ('name', 'description', 'system_prompt', 'user_prompt', 'reasoning_suffix',
             'media_labels', 'sampling', 'decoding')
_SAMPLING_KEYS = tuple(f.name for f in fields(Sampling))
_DECODING_KEYS = ('answer_format',) + tuple(f.name for f in fields(DecodingLimits))


@dataclass(frozen=True)
class PromptPreset:
    """One validated preset; immutable so a planner can share it across threads."""

    name: str
    description: str
    system_prompt: str
    user_prompt: str
    reasoning_suffix: str
    answer_format: str
    direct_sampling: Sampling
    reasoning_sampling: Sampling
    limits: DecodingLimits
    primary_label: str
    context_label: str
    source: str = ''

    def sampling(self, reasoning: bool) -> Sampling:
        """Return the sampling for the reasoning mode (NVIDIA's recommended values)."""
        return self.reasoning_sampling if reasoning else self.direct_sampling

    def response_schema(self) -> Dict[str, Any]:
        """JSON Schema decoding is constrained to (see ``model.response_schemas``)."""
        return response_schema(self.answer_format, self.limits)

    def user_text(self, task: str, reasoning: bool, legend: str = '') -> str:
        """Compose the user turn's text: camera legend, prompt with the task, reasoning add-on."""
        text = self.user_prompt.replace('{task}', task)
        if legend:
            text = f'{legend}\n\n{text}'
        if reasoning:
            text = f'{text}\n\n{self.reasoning_suffix}'
        return text


def prompts_dir() -> Path:
    """Return the folder of the installed presets."""
    return share_dir().joinpath(*PROMPTS_DIR)


def list_presets() -> List[str]:
    """List the installed presets (``config/prompts/*.yaml``) by name, sorted."""
    return sorted(p.stem for p in prompts_dir().glob('*.yaml') if _NAME.match(p.stem))


def load_preset(name_or_path: Union[str, Path]) -> PromptPreset:
    """Load a preset by name, or from a YAML file path; ConfigError says what is wrong."""
    path = Path(name_or_path)
    if str(name_or_path).endswith(('.yaml', '.yml')) or path.is_file():
        if not path.is_file():
            raise ConfigError(f'prompt preset file not found: {path}')
    else:
        name = str(name_or_path)
        if not _NAME.match(name) or not (prompts_dir() / f'{name}.yaml').is_file():
            raise ConfigError(f'unknown prompt preset {name!r}; available: '
                              + ', '.join(list_presets()) + ' (or give a .yaml file path)')
        path = prompts_dir() / f'{name}.yaml'
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f'cannot read prompt preset {path}: {exc}') from exc
    return preset_from_dict(data, source=str(path))


def preset_from_dict(data: Any, source: str = '') -> PromptPreset:
    """Validate a preset mapping (as read from YAML) into a ``PromptPreset``."""
    where = source or 'prompt preset'
    if not isinstance(data, Mapping):
        raise ConfigError(f'{where}: expected a mapping at the top level')
    _check_keys(data, _TOP_KEYS, where)
    for key in ('name', 'system_prompt', 'user_prompt', 'reasoning_suffix'):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f'{where}: {key!r} must be a non-empty string')
    if '{task}' not in data['user_prompt']:
        raise ConfigError(f'{where}: user_prompt must contain the {{task}} placeholder')
    labels = data.get('media_labels') or {}
    _check_keys(labels, ('primary', 'context'), f'{where}: media_labels')
    sampling = data.get('sampling') or {}
    _check_keys(sampling, ('direct', 'reasoning'), f'{where}: sampling')
    decoding = dict(data.get('decoding') or {})
    _check_keys(decoding, _DECODING_KEYS, f'{where}: decoding')
    answer_format = decoding.pop('answer_format', 'points')
    if answer_format not in RESPONSE_FORMATS:
        raise ConfigError(f'{where}: decoding.answer_format {answer_format!r} is not one of '
                          + ', '.join(RESPONSE_FORMATS))
    try:
        limits = DecodingLimits(**decoding)
    except TypeError as exc:
        raise ConfigError(f'{where}: bad decoding section: {exc}') from exc
    return PromptPreset(
        name=data['name'], description=str(data.get('description', '')).strip(),
        system_prompt=data['system_prompt'], user_prompt=data['user_prompt'],
        reasoning_suffix=data['reasoning_suffix'], answer_format=answer_format,
        direct_sampling=_sampling(sampling.get('direct'), f'{where}: sampling.direct'),
        reasoning_sampling=_sampling(sampling.get('reasoning'), f'{where}: sampling.reasoning'),
        limits=limits,
        primary_label=str(labels.get('primary', '{kind} {index} is from the "{camera}" '
                                     'camera; give all coordinates in it.')),
        context_label=str(labels.get('context', '{kind} {index} is from the "{camera}" '
                                     'camera, for context.')),
        source=source)


def _check_keys(data: Any, allowed: Tuple[str, ...], where: str) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError(f'{where}: expected a mapping')
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f'{where}: unknown key(s) {", ".join(unknown)}; valid keys: '
                          + ', '.join(allowed))


def _sampling(data: Any, where: str) -> Sampling:
    data = data or {}
    _check_keys(data, _SAMPLING_KEYS, where)
    try:
        sampling = Sampling(**data)
    except TypeError as exc:
        raise ConfigError(f'{where}: {exc}') from exc
    if sampling.temperature < 0:
        raise ConfigError(f'{where}: temperature must be >= 0')
    if not 0 < sampling.top_p <= 1:
        raise ConfigError(f'{where}: top_p must be in (0, 1]')
    if sampling.top_k < -1:
        raise ConfigError(f'{where}: top_k must be >= -1 (0 or -1: no top-k)')
    if sampling.max_tokens < 1:
        raise ConfigError(f'{where}: max_tokens must be >= 1')
    if sampling.repetition_penalty <= 0:
        raise ConfigError(f'{where}: repetition_penalty must be > 0')
    return sampling


def normalize_task(task: Any) -> str:
    """Return the instruction as the prompt quotes it: one line, no double quotes, bounded."""
    if not isinstance(task, str):
        raise ConfigError(f'task must be a string, got {type(task).__name__}')
    text = ' '.join(task.replace('"', "'").split())
    if not text:
        raise ConfigError('task is empty: give an instruction such as "pick up the red cube"')
    if len(text) > MAX_TASK_CHARS:
        raise ConfigError(f'task is {len(text)} characters long; at most {MAX_TASK_CHARS}')
    return text


def media_kind(clip: Clip) -> str:
    """Say ``video`` for several frames with a real frame rate, else ``image`` (newest)."""
    return 'video' if len(clip.frames) > 1 and clip.fps is not None else 'image'


def build_request(preset: Union[PromptPreset, str], clip: Clip, task: str,
                  reasoning: bool = False) -> GenerationRequest:
    """Build a backend-neutral request: system prompt, media first, then the prompt text."""
    if not isinstance(preset, PromptPreset):
        preset = load_preset(preset)
    if not isinstance(clip, Clip):
        raise ConfigError(f'clip must be a frames.Clip, got {type(clip).__name__}')
    task_text = normalize_task(task)
    clips = (clip, *clip.context)
    media: List[Dict[str, str]] = []
    legend: List[str] = []
    for index, item in enumerate(clips, start=1):
        kind = media_kind(item)
        media.append({'type': kind, 'camera': item.camera})
        template = preset.primary_label if index == 1 else preset.context_label
        legend.append(template.format(kind=kind.capitalize(), index=index, camera=item.camera))
    text = preset.user_text(task_text, reasoning, ' '.join(legend) if len(clips) > 1 else '')
    messages = (
        {'role': 'system', 'content': [{'type': 'text', 'text': preset.system_prompt}]},
        {'role': 'user', 'content': [*media, {'type': 'text', 'text': text}]},
    )
    return GenerationRequest(
        clip=clip, messages=messages, sampling=preset.sampling(reasoning),
        response_schema=preset.response_schema(), reasoning=bool(reasoning),
        preset=preset.name, task=task_text)
