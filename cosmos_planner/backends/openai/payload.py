"""Build OpenAI chat-completion request bodies from GenerationRequests, and read answers back.

Pure functions (no network, no ``openai`` import), so the exact JSON a server receives and the
way every answer shape is read are tested without a server.

Request side:
- ``GenerationRequest.messages`` are in transformers content-list form with ``{'type':
  'video'}`` / ``{'type': 'image'}`` placeholders. The n-th placeholder refers to the n-th
  clip of ``(request.clip, *request.clip.context)`` (a placeholder may name its clip with a
  ``'camera'`` key instead). A video placeholder becomes one ``video_url`` part (base64 MP4 at
  the clip's real fps) in ``media='video'`` mode, or one ``image_url`` part per frame in
  ``media='images'`` mode; a clip of a single frame is always sent as an image (no frame
  rate to give). An image placeholder becomes the clip's newest frame as a JPEG. Media parts
  are moved before the text of their message, as Cosmos Reason 2 was trained.
- Sampling comes from the preset (``request.sampling``); ``top_k`` and
  ``repetition_penalty`` are vLLM/NIM extensions sent in the body only when they are not
  neutral.
- The response schema goes as ``structured_outputs: {json: schema}`` (vLLM >= 0.12; the old
  ``guided_json`` is silently ignored there), as ``response_format`` json_schema (OpenAI and
  servers that support it), or not at all, by ``schema_mode``.
- Requests without reasoning carry ``chat_template_kwargs: {enable_thinking: false}``
  (``thinking_hint``). vLLM's ``qwen3`` reasoning parser otherwise starts every answer in
  the reasoning state: the whole answer lands in ``reasoning`` with ``content`` None, and the
  schema is never applied because structured output waits for ``</think>``. With the hint
  the answer is content and constrained from its first token. Cosmos Reason 2's chat
  template (Qwen3-VL Instruct) does not use the variable, so the prompt is unchanged.
- For video, ``media_io_kwargs.video.fps`` is set a little above the clip's fps (vLLM's
  Qwen3-VL loader otherwise resamples to 2 fps and drops frames) and ``mm_processor_kwargs``
  carries the real ``fps`` (timestamps) and a ``size`` that matches the pixels already
  chosen at ingest, so the server neither drops frames nor rescales them.

Answer side (``answer_from_message``): the reasoning may come split by the server's reasoning
parser (``reasoning`` in newer vLLM, ``reasoning_content`` before) with ``content``
possibly None, or inline as ``<think>...</think>`` in the content. ``text`` stays the
server's content (the parser strips inline reasoning); ``reasoning`` carries the thinking
either way. With ``content`` None and only reasoning:
- request without reasoning: the known vLLM/qwen3-parser behaviour of putting the whole
  answer into ``reasoning`` when the prompt has no think add-on (servers that ignore the
  thinking hint); the reasoning *is* the answer and becomes ``text``
  (``meta['answer_from_reasoning'] = True``) and the parser validates it as usual;
- request with reasoning: the model never closed ``</think>`` (usually ``max_tokens``):
  a clear, non-retryable ``BackendError`` that says so and how long the reasoning was.
"""

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cosmos_planner.backends.openai import media as media_encode
from cosmos_planner.backends.openai.config import OpenAICompatConfig
from cosmos_planner.model.protocol import GenerationRequest
from cosmos_planner.errors import BackendError, ConfigError
from cosmos_planner.frames.types import Clip

#: vLLM's Qwen3-VL loader keeps ``int(frames / video_fps * fps)`` frames; asking a little
#: above the real rate keeps every frame despite the rounding of the stored MP4 rate.
LOADER_FPS_MARGIN = 1.05
#: One Qwen3-VL visual token covers 32x32 pixels (patch 16, spatial merge 2).
PIXEL_FACTOR = 32
_THINK = re.compile(r'<think>(.*?)</think>', re.DOTALL)


@dataclass
class PayloadStats:
    """What encoding one request cost, for ``Completion.meta`` and the benchmark."""

    media: str = ''
    n_video: int = 0
    n_images: int = 0
    media_bytes: int = 0
    fps: Optional[float] = None


def _pixels(size: Tuple[int, int]) -> int:
    """Pixels of one frame once the processor rounds it to whole 32 px tokens."""
    w, h = size
    hh = max(PIXEL_FACTOR, round(h / PIXEL_FACTOR) * PIXEL_FACTOR)
    ww = max(PIXEL_FACTOR, round(w / PIXEL_FACTOR) * PIXEL_FACTOR)
    return hh * ww


def _pick_clip(part: Dict[str, Any], clips: Sequence[Clip], index: int) -> Clip:
    camera = part.get('camera')
    if camera:
        for clip in clips:
            if clip.camera == camera:
                return clip
        raise ConfigError(f'message names camera {camera!r}; the request has clips of '
                          + ', '.join(repr(c.camera) for c in clips))
    if index >= len(clips):
        raise ConfigError(f'the messages hold {index + 1} media placeholders but the request '
                          f'has only {len(clips)} clip(s)')
    return clips[index]


def _media_parts(kind: str, clip: Clip, opts: OpenAICompatConfig,
                 stats: PayloadStats) -> List[Dict[str, Any]]:
    if kind == 'image' or len(clip.frames) == 1 or opts.media == 'images':
        if kind == 'image' or len(clip.frames) == 1:
            items = [media_encode.frame_to_image(clip.newest.image, opts.jpeg_quality)]
        else:
            items = media_encode.clip_to_images(clip, opts.jpeg_quality)
        stats.media = stats.media or 'images'
        stats.n_images += len(items)
        stats.media_bytes += sum(len(m.payload) for m in items)
        return [{'type': 'image_url', 'image_url': {'url': m.data_url}} for m in items]
    video = media_encode.clip_to_video(clip)
    stats.media = 'video'
    stats.n_video += 1
    stats.media_bytes += len(video.payload)
    stats.fps = video.fps
    return [{'type': 'video_url', 'video_url': {'url': video.data_url}}]


def convert_messages(request: GenerationRequest, opts: OpenAICompatConfig,
                     stats: Optional[PayloadStats] = None) -> List[Dict[str, Any]]:
    """Convert transformers content lists with placeholders to OpenAI parts, media first."""
    stats = stats if stats is not None else PayloadStats()
    clips = (request.clip, *request.clip.context)
    used = 0
    out: List[Dict[str, Any]] = []
    for i, message in enumerate(request.messages):
        if not isinstance(message, dict) or 'role' not in message:
            raise ConfigError(f'message {i} is not a {{role, content}} dict: {message!r:.80}')
        content = message.get('content')
        if content is None or isinstance(content, str):
            out.append({'role': message['role'], 'content': content or ''})
            continue
        media: List[Dict[str, Any]] = []
        text: List[Dict[str, Any]] = []
        for part in content:
            kind = part.get('type') if isinstance(part, dict) else None
            if kind in ('video', 'image'):
                media += _media_parts(kind, _pick_clip(part, clips, used), opts, stats)
                used += 1
            elif kind == 'text':
                text.append({'type': 'text', 'text': str(part.get('text', ''))})
            elif kind in ('image_url', 'video_url'):
                media.append(dict(part))  # already encoded by the caller
            else:
                raise ConfigError(f'message {i}: unsupported content part {part!r:.80}')
        out.append({'role': message['role'], 'content': media + text})
    return out


def build_payload(request: GenerationRequest, opts: OpenAICompatConfig, model: str,
                  stats: Optional[PayloadStats] = None) -> Dict[str, Any]:
    """Build the complete JSON body of ``POST /chat/completions`` for one request.

    ``opts`` is the backend's own config (its ``media``, ``jpeg_quality``, ``schema_mode``,
    ``mm_kwargs``, ``sampling_extras``, ``thinking_hint``, ``stream`` and ``extra_body``
    decide the body); ``model`` is the served model the backend resolved.

    Standard fields are top level; the vLLM extensions (``structured_outputs``, ``top_k``,
    ``media_io_kwargs``, ``mm_processor_kwargs``) are top level too, which is what the
    ``openai`` client's ``extra_body`` produces.
    """
    stats = stats if stats is not None else PayloadStats()
    s = request.sampling
    body: Dict[str, Any] = {
        'model': model,
        'messages': convert_messages(request, opts, stats),
        'temperature': s.temperature,
        'top_p': s.top_p,
        'max_tokens': s.max_tokens,
    }
    if s.presence_penalty:
        body['presence_penalty'] = s.presence_penalty
    if s.seed is not None:
        body['seed'] = s.seed
    if opts.sampling_extras:
        if s.top_k and s.top_k > 0:
            body['top_k'] = s.top_k
        if s.repetition_penalty and s.repetition_penalty != 1.0:
            body['repetition_penalty'] = s.repetition_penalty
    schema = request.response_schema
    if schema is not None and opts.schema_mode == 'structured_outputs':
        body['structured_outputs'] = {'json': schema}
    elif schema is not None and opts.schema_mode == 'response_format':
        body['response_format'] = {'type': 'json_schema', 'json_schema': {
            'name': 'cosmos_planner_answer', 'schema': schema, 'strict': True}}
    if opts.thinking_hint and not request.reasoning:
        body['chat_template_kwargs'] = {'enable_thinking': False}
    if opts.mm_kwargs and (stats.n_video or stats.n_images):
        body.update(mm_kwargs(request.clip, stats))
    if opts.stream:
        body['stream'] = True
        body['stream_options'] = {'include_usage': True}
    body.update(opts.extra_body)
    return body


def mm_kwargs(clip: Clip, stats: PayloadStats) -> Dict[str, Any]:
    """``media_io_kwargs`` / ``mm_processor_kwargs`` that keep the clip's frames and pixels.

    Only the primary clip's size is given (one ``size`` applies to every item of a request).
    """
    h, w = clip.newest.image.shape[:2]
    if stats.n_video:
        fps = float(stats.fps or media_encode.DEFAULT_FPS)
        n = len(clip.frames)
        pixels = (n + n % 2) * _pixels((w, h))  # frames pair up into temporal patches
        loader_fps = min(media_encode.MAX_VIDEO_FPS, fps * LOADER_FPS_MARGIN)
        return {
            'media_io_kwargs': {'video': {'fps': loader_fps, 'num_frames': -1}},
            'mm_processor_kwargs': {
                'fps': fps, 'do_sample_frames': False,
                'size': {'shortest_edge': min(pixels, 4096), 'longest_edge': pixels}},
        }
    pixels = _pixels((w, h))
    return {'mm_processor_kwargs': {
        'size': {'shortest_edge': min(pixels, 4096), 'longest_edge': pixels}}}


# -- answers ------------------------------------------------------------------------------
@dataclass
class Answer:
    """What one response (or stream) said, before it becomes a Completion."""

    content: Optional[str] = None
    reasoning: Optional[str] = None
    finish_reason: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ''


def message_reasoning(obj: Any) -> Optional[str]:
    """Return the server-split reasoning of a message or delta (either field name)."""
    for name in ('reasoning', 'reasoning_content'):
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is None and not isinstance(obj, dict):
            extra = getattr(obj, 'model_extra', None) or {}
            value = extra.get(name)
        if isinstance(value, str):
            return value
    return None


def finish_answer(answer: Answer, request: GenerationRequest,
                  max_tokens: int) -> Tuple[str, Optional[str], Dict[str, Any]]:
    """Decide ``(text, reasoning, meta)`` from an answer; raises BackendError when empty."""
    content = answer.content or ''
    reasoning = answer.reasoning.strip() if answer.reasoning else None
    meta: Dict[str, Any] = {}
    if content.strip():
        if reasoning:
            meta['reasoning_source'] = 'server'
        else:
            inline = _THINK.findall(content)
            if inline:
                reasoning = inline[-1].strip() or None
                meta['reasoning_source'] = 'inline'
        return content, reasoning, meta
    if reasoning and not request.reasoning:
        meta['answer_from_reasoning'] = True
        return answer.reasoning or '', None, meta
    why = f'finish_reason={answer.finish_reason}, {answer.completion_tokens} tokens'
    if reasoning:
        hint = (f'; raise max_tokens (now {max_tokens})' if answer.finish_reason == 'length'
                else '')
        raise BackendError(
            f'server returned only reasoning ({len(reasoning)} characters) and no answer '
            f'after </think> ({why}){hint}', retryable=False)
    hint = (f'; raise max_tokens (now {max_tokens}): the tokens held no visible text'
            if answer.finish_reason == 'length' else '')
    raise BackendError(f'server returned an empty answer ({why}){hint}', retryable=False)


def payload_size(body: Dict[str, Any]) -> int:
    """Rough size of the request in bytes (media dominate), without serialising it."""
    total = 0
    for message in body.get('messages', ()):
        content = message.get('content')
        if isinstance(content, str):
            total += len(content)
            continue
        for part in content or ():
            for key in ('image_url', 'video_url'):
                if key in part:
                    total += len(part[key].get('url', ''))
            total += len(part.get('text', ''))
    return total
