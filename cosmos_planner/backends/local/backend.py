"""The embedded default backend: a Qwen3-VL checkpoint run in this process by transformers.

Loads Cosmos-Reason2-2B/8B or any compatible folder or Hugging Face id found offline through
the transformers Auto classes, never running repository code (``trust_remote_code=False``)
and reading safetensors only. Device and dtype are decided before loading from the
safetensors headers (``cosmos_planner.backends.local.memory``).

Each request is rendered with the checkpoint's chat template (``backends.local.inputs``:
videos carry their real fps), sampled with the preset's parameters (presence penalty
included, applied to generated tokens as vLLM does) and, when ``constrained``, decoded under
an xgrammar grammar built from the request's JSON Schema: compact JSON (no free whitespace),
and in reasoning mode a bounded ``<think>...</think>`` block first. Cancelling the job's
token (``generate(request, cancel)``) from another thread stops generation at the next token
(a stopping criterion reads the token after every token) and ``generate`` raises
``GenerationCancelled``; a token cancelled before the model starts cancels before it starts.
One generation runs at a time. Nothing is retried here: a failure in this process is not a
transport failure a retry could fix.
"""

import importlib.util
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, \
    StoppingCriteriaList

from cosmos_planner.model.cancel import CancelToken, token_or_new
from cosmos_planner.model.protocol import Completion, GenerationRequest
from cosmos_planner.errors import BackendError, ConfigError, GenerationCancelled, \
    PlannerError
from cosmos_planner.backends.local.memory import choose_placement, count_parameters, Placement
from cosmos_planner.backends.local.resolve import locate_model, resolve_default_model
from cosmos_planner.backends.local.tiny_checkpoint import is_tiny_checkpoint

THINK_OPEN = '<think>'
THINK_CLOSE = '</think>'


def split_reasoning(text: str) -> Tuple[Optional[str], str]:
    """Return (reasoning inside the last think block or None, the text after it)."""
    if THINK_CLOSE not in text:
        return None, text
    head, _, tail = text.rpartition(THINK_CLOSE)
    start = head.find(THINK_OPEN)
    reasoning = head[start + len(THINK_OPEN):] if start >= 0 else head
    return reasoning.strip(), tail


class LocalBackend:
    """Run a local Qwen3-VL checkpoint; see the module docstring for the behaviour."""

    name = 'local'

    def __init__(self, model: Optional[str] = None, device: str = 'auto', dtype: str = 'auto',
                 constrained: bool = True, max_think_chars: int = 6000,
                 attn_implementation: str = 'sdpa', memory_bytes: Optional[int] = None,
                 num_threads: Optional[int] = None,
                 on_step: Optional[Callable[[int], None]] = None) -> None:
        """Resolve, size and load the model.

        ``model``: folder or Hugging Face id (None: ``resolve_default_model()``).
        ``max_think_chars`` bounds the reasoning block under constrained decoding.
        ``memory_bytes`` overrides the RAM figure used for the placement decision.
        ``num_threads`` sets torch's CPU threads (process-wide); on a busy machine 1 thread
        can be several times faster than oversubscribed cores.
        ``on_step(n)`` is called after each generated token (progress, tests).
        Raises ModelNotFoundError, ModelTooLargeError or ConfigError before loading anything.
        """
        if model is None:
            model = resolve_default_model().path
        self.model_name = str(model)
        self.path = locate_model(model)
        self.is_tiny = is_tiny_checkpoint(self.path)
        self.constrained = bool(constrained)
        self.max_think_chars = int(max_think_chars)
        self._on_step = on_step
        self.n_params = count_parameters(self.path)
        if num_threads is not None:
            if num_threads < 1:
                raise ConfigError(f'num_threads must be >= 1, got {num_threads}')
            torch.set_num_threads(int(num_threads))
        cuda_free = torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
        self.placement: Placement = choose_placement(
            self.n_params, device=device, dtype=dtype, cuda_free_bytes=cuda_free,
            ram_bytes=memory_bytes)
        self._lock = threading.Lock()
        # Own lock: health() must answer while a generation holds self._lock.
        self._stats_lock = threading.Lock()
        self._stats: Dict[str, Any] = {'requests': 0, 'succeeded': 0, 'failed': 0,
                                       'cancelled': 0, 'last_error': ''}
        self._grammars: Dict[str, Any] = {}
        self._compiler: Any = None
        #: The transformers model (None once closed); Any: its stubs mistype ``.to(device)``.
        self.model: Any = None
        self._load(attn_implementation)

    def _load(self, attn_implementation: str) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        dtype = getattr(torch, self.placement.dtype)
        device = self.placement.device
        # With accelerate, weights stream straight to the device; without, load then move.
        placed = {'device_map': device} if importlib.util.find_spec('accelerate') else {}
        try:
            self.processor = AutoProcessor.from_pretrained(
                str(self.path), local_files_only=True, trust_remote_code=False)
            self.model = AutoModelForImageTextToText.from_pretrained(
                str(self.path), dtype=dtype, local_files_only=True, trust_remote_code=False,
                use_safetensors=True, attn_implementation=attn_implementation, **placed)
            if not placed:
                self.model.to(device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f'cannot load model {self.model_name} from {self.path}: {exc}',
                               retryable=False) from exc
        self.model.eval()
        self.tokenizer = self.processor.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
        for token in ('<|im_end|>', '<|endoftext|>'):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id >= 0 and token_id not in eos_ids:
                eos_ids.append(token_id)
        self.eos_ids: List[int] = [int(i) for i in eos_ids]
        pad = self.model.generation_config.pad_token_id
        self.pad_id = int(pad) if pad is not None else self.eos_ids[0]

    # -- Backend interface -------------------------------------------------------------------

    def generate(self, request: GenerationRequest,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Answer one request; raises GenerationCancelled or BackendError.

        ``cancel`` is the job's token (None: nobody cancels). Every call is counted
        (requests, succeeded, failed, cancelled, last_error) so that ``health()`` reports
        failures as the remote backend does.
        """
        token = token_or_new(cancel)
        self._count('requests')
        try:
            with self._lock:
                completion = self._generate(request, token)
        except GenerationCancelled:
            self._count('cancelled')
            raise
        except Exception as exc:
            self._count('failed', f'{type(exc).__name__}: {exc}')
            raise
        self._count('succeeded')
        return completion

    def _count(self, key: str, error: str = '') -> None:
        with self._stats_lock:
            self._stats[key] += 1
            if error:
                self._stats['last_error'] = error

    def health(self) -> Dict[str, Any]:
        """Report the loaded model, where it runs, the tiny flag and the request counters."""
        with self._stats_lock:
            stats = dict(self._stats)
        detail = f'{self.model_name} on {self.placement.device} ({self.placement.dtype})'
        if self.is_tiny:
            detail += ': TINY RANDOM CHECKPOINT, plans are meaningless'
        return {'ok': True, 'detail': detail, 'model': self.model_name,
                'device': self.placement.device, 'dtype': self.placement.dtype,
                'parameters': self.n_params, 'tiny_random': self.is_tiny,
                'constrained': self.constrained, 'busy': self._lock.locked(), **stats}

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        with self._lock:
            self.model = None
            self._grammars.clear()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # -- internals ----------------------------------------------------------------------------

    def _grammar(self, schema: Dict[str, Any], reasoning: bool) -> Any:
        import xgrammar as xgr

        from cosmos_planner.model.response_schemas import build_grammar

        key = json.dumps([schema, reasoning, self.max_think_chars], sort_keys=True)
        if key not in self._grammars:
            if self._compiler is None:
                vocab = self.model.get_output_embeddings().weight.shape[0]
                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=vocab, stop_token_ids=self.eos_ids)
                self._compiler = xgr.GrammarCompiler(info, max_threads=1)
            grammar = build_grammar(schema, reasoning, self.max_think_chars)
            self._grammars[key] = self._compiler.compile_grammar(grammar)
        return self._grammars[key]

    def _generate(self, request: GenerationRequest, cancel: CancelToken) -> Completion:
        from cosmos_planner.backends.local.inputs import prepare_inputs

        if self.model is None:
            raise BackendError('the local backend was closed', retryable=False)
        t0 = time.perf_counter()
        try:
            inputs = prepare_inputs(self.processor, request).to(self.model.device)
        except PlannerError:
            raise
        except (ValueError, RuntimeError, TypeError) as exc:
            raise BackendError(f'cannot prepare model inputs: {exc}') from exc
        for key in ('pixel_values', 'pixel_values_videos'):
            if key in inputs:
                inputs[key] = inputs[key].to(self.model.dtype)
        prompt_len = int(inputs['input_ids'].shape[1])
        t1 = time.perf_counter()
        sampling = request.sampling
        processors = LogitsProcessorList()
        if sampling.presence_penalty:
            processors.append(_PresencePenalty(sampling.presence_penalty, prompt_len))
        use_grammar = self.constrained and request.response_schema is not None
        if use_grammar and request.response_schema is not None:
            from xgrammar.contrib.hf import LogitsProcessor as GrammarProcessor
            processors.append(GrammarProcessor(self._grammar(request.response_schema,
                                                             request.reasoning)))
        stopper = _CancelOnToken(cancel, prompt_len, self._on_step)
        do_sample = sampling.temperature > 0
        options: Dict[str, Any] = dict(
            max_new_tokens=sampling.max_tokens, do_sample=do_sample,
            repetition_penalty=sampling.repetition_penalty, eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id, logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([stopper]))
        if do_sample:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p,
                           top_k=sampling.top_k if sampling.top_k > 0 else 0)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        cancel.raise_if_cancelled('generation cancelled before it started')
        t2 = time.perf_counter()
        try:
            with torch.inference_mode():
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                output = self.model.generate(**inputs, **options)
        except torch.cuda.OutOfMemoryError as exc:
            raise BackendError(f'out of GPU memory while generating: {exc}') from exc
        except (RuntimeError, ValueError, AssertionError) as exc:
            if cancel.cancelled:
                raise GenerationCancelled('generation cancelled') from exc
            raise BackendError(f'generation failed: {exc}') from exc
        t3 = time.perf_counter()
        new_ids = [int(i) for i in output[0, prompt_len:].tolist()]
        cancel.raise_if_cancelled(f'generation cancelled after {len(new_ids)} tokens')
        return self._completion(request, new_ids, prompt_len, use_grammar,
                                {'preprocess_ms': (t1 - t0) * 1e3,
                                 'grammar_ms': (t2 - t1) * 1e3, 'generate_ms': (t3 - t2) * 1e3})

    def _completion(self, request: GenerationRequest, new_ids: List[int], prompt_len: int,
                    constrained: bool, timings: Dict[str, float]) -> Completion:
        stopped = bool(new_ids) and new_ids[-1] in self.eos_ids
        while new_ids and new_ids[-1] == self.pad_id and self.pad_id not in self.eos_ids:
            new_ids.pop()
        count = len(new_ids)
        finish = 'stop' if stopped or count < request.sampling.max_tokens else 'length'
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        reasoning, _ = split_reasoning(text)
        meta = {'device': self.placement.device, 'dtype': self.placement.dtype,
                'constrained': constrained, 'tiny_random': self.is_tiny,
                'model_path': str(self.path)}
        meta.update({k: round(v, 3) for k, v in timings.items()})
        return Completion(text=text, reasoning=reasoning, finish_reason=finish,
                          prompt_tokens=prompt_len, completion_tokens=count,
                          model=self.model_name, backend=self.name,
                          generate_ms=timings['generate_ms'], meta=meta)


class _PresencePenalty(LogitsProcessor):
    """Subtract a fixed penalty from tokens already generated (vLLM's presence_penalty)."""

    def __init__(self, penalty: float, prompt_len: int) -> None:
        self.penalty = float(penalty)
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = input_ids[:, self.prompt_len:]
        if generated.shape[1]:
            mask = scores.new_zeros(scores.shape, dtype=scores.dtype)
            mask.scatter_(1, generated, self.penalty)
            scores = scores - mask
        return scores


class _CancelOnToken(StoppingCriteria):
    """Stopping criterion: stop every sequence once the job's token is cancelled.

    Runs after every generated token, so it is also where a streamed partial answer would be
    handed on.
    """

    def __init__(self, token: CancelToken, prompt_len: int,
                 on_step: Optional[Callable[[int], None]]) -> None:
        self.token = token
        self.prompt_len = prompt_len
        self.on_step = on_step

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        if self.on_step is not None:
            self.on_step(int(input_ids.shape[1]) - self.prompt_len)
        return torch.full((input_ids.shape[0],), self.token.cancelled, dtype=torch.bool,
                          device=input_ids.device)
