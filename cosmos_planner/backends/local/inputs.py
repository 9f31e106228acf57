"""Turn a ``GenerationRequest`` into Qwen3-VL model inputs with the checkpoint's processor.

The prompt is rendered with the checkpoint's own chat template; media items map onto the
clips in order ``(clip, *clip.context)`` (see ``cosmos_planner.model.prompts``). A video clip goes
to the video processor with its real frame rate as video metadata and ``do_sample_frames``
off, so the ``<t seconds>`` text the processor writes before each temporal patch is the
clip's real time (without metadata the processor assumes 24 fps). Frames were resized once at
ingest; the processor's own resize is then the identity for frames that already fit its
32-pixel grid and budget.

One correction to the installed transformers (5.x): its Qwen3-VL processor expands only the
``<|video_pad|>`` token, leaving the chat template's ``<|vision_start|>`` / ``<|vision_end|>``
around the expanded per-frame blocks (each already wrapped in its own pair), whereas the
reference processors (transformers 4.57, vLLM, qwen-vl-utils) replace the whole wrapped
placeholder. The wrapped placeholder is therefore collapsed to the bare token before
processing, which gives the reference layout ``<0.2 seconds><|vision_start|>...<|vision_end|>``
with either behaviour.
"""

from typing import Any, Dict, List, Tuple

import numpy as np

from cosmos_planner.model.protocol import GenerationRequest
from cosmos_planner.errors import ConfigError, ImageDecodeError

VISION_START = '<|vision_start|>'
VISION_END = '<|vision_end|>'
VIDEO_PAD = '<|video_pad|>'
_WRAPPED_VIDEO = VISION_START + VIDEO_PAD + VISION_END


def render_prompt(processor: Any, request: GenerationRequest) -> str:
    """Render the chat with the checkpoint's template, ready for the processor."""
    text = processor.apply_chat_template(list(request.messages), tokenize=False,
                                         add_generation_prompt=True)
    if isinstance(text, list):
        text = text[0]
    return text.replace(_WRAPPED_VIDEO, VIDEO_PAD)


def media_arrays(request: GenerationRequest) -> Tuple[List[np.ndarray], List[np.ndarray],
                                                      List[Dict[str, Any]]]:
    """Images, videos (T x H x W x 3) and video metadata in the order of the media items."""
    clips = (request.clip, *request.clip.context)
    items = [item for message in request.messages if isinstance(message.get('content'), list)
             for item in message['content']
             if isinstance(item, dict) and item.get('type') in ('image', 'video')]
    if len(items) > len(clips):
        raise ConfigError(f'the request has {len(items)} media items but only {len(clips)} '
                          'clips (primary plus context)')
    images: List[np.ndarray] = []
    videos: List[np.ndarray] = []
    metadata: List[Dict[str, Any]] = []
    for item, clip in zip(items, clips):
        if item['type'] == 'image' or clip.fps is None or len(clip.frames) < 2:
            images.append(clip.newest.image)
            continue
        shapes = {frame.image.shape for frame in clip.frames}
        if len(shapes) != 1:
            raise ImageDecodeError(
                f'clip of camera {clip.camera!r} mixes frame sizes {sorted(shapes)}; a video '
                'needs frames of one size', kind='inconsistent_sizes')
        video = np.stack([frame.image for frame in clip.frames])
        count, height, width = video.shape[:3]
        fps = float(clip.fps)
        videos.append(video)
        metadata.append({'total_num_frames': count, 'fps': fps,
                         'frames_indices': list(range(count)), 'height': height,
                         'width': width, 'duration': count / fps})
    return images, videos, metadata


def prepare_inputs(processor: Any, request: GenerationRequest) -> Any:
    """Return the processor's tensors (``input_ids``, pixel values, grids) for ``request``."""
    text = render_prompt(processor, request)
    images, videos, metadata = media_arrays(request)
    kwargs: Dict[str, Any] = {'text': [text], 'return_tensors': 'pt'}
    if not images and not videos:
        return processor(**kwargs)
    import torch

    # Channels-first uint8 tensors: the processors then skip their own layout conversion,
    # which halves their time on an 8-frame clip (bench/bench_request_prep.py); the copy
    # also spares torch a non-writable array (frames are read-only after ingest).
    if images:
        kwargs['images'] = [torch.tensor(image).permute(2, 0, 1).contiguous()
                            for image in images]
    if videos:
        kwargs.update(videos=[torch.from_numpy(video).permute(0, 3, 1, 2).contiguous()
                              for video in videos],
                      video_metadata=metadata, do_sample_frames=False, cap_pixels_per_frame=True)
    return processor(**kwargs)
