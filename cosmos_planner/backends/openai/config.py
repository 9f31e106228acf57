"""``OpenAICompatConfig``: every setting of the OpenAI-compatible backend, declared once.

Each field is a ``settings.setting`` carrying its default, description and range, so this
class is the one table of the backend's settings:

- the backend takes one validated config (``OpenAICompatBackend(base_url, model, **settings)``
  builds it with ``from_options``, which refuses unknown names);
- the request body reads the same object (``payload.build_payload(request, config, model)``);
- fields marked ``node=True`` are the node's read-only ``backend.NAME`` parameters
  (``ros.params``) and the ``--NAME`` flags of ``cosmos-planner plan``/``demo``/``sim``
  (``cli.plan``), with the node default where it differs.

Adding a setting is one field here (plus its use); ``config/planner.yaml`` is generated
from the node parameters and a test keeps it equal. No ``openai`` import: the node and the
CLI read these declarations without the client library installed.
"""

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional
import urllib.parse

from cosmos_planner.errors import ConfigError
from cosmos_planner.settings import check_settings, setting, unknown_options

MEDIA_MODES = ('video', 'images')
SCHEMA_MODES = ('structured_outputs', 'response_format', 'none')
#: The node's default server (vLLM's default port on this machine).
DEFAULT_BASE_URL = 'http://127.0.0.1:8000/v1'


@dataclass(frozen=True)
class OpenAICompatConfig:
    """Validated settings of the OpenAI-compatible backend (descriptions on each field)."""

    base_url: str = setting(
        DEFAULT_BASE_URL, 'OpenAI-compatible server URL (backend.kind openai).', node=True)
    model: Optional[str] = setting(
        None, 'Served model name (--served-model-name); None: the only model the server '
        'serves.', type='string')
    api_key_env: Optional[str] = setting(
        None, 'Environment variable holding the server API key (never a parameter: '
        'parameters are visible to every node).', node=True, node_default='OPENAI_API_KEY',
        type='string')
    timeout_s: float = setting(
        120.0, 'Request timeout of remote backends, seconds.', node=True, node_default=60.0,
        min=0.1, max=3600.0)
    media: str = setting(
        'video', 'How remote backends send a clip: video (one base64 MP4 at the clip\'s real '
        'fps) or images (one JPEG per frame; any OpenAI-compatible server, but the model '
        'loses the timing between frames).', node=True, choices=MEDIA_MODES)
    schema_mode: str = setting(
        'structured_outputs', 'How remote backends send the answer schema: '
        'structured_outputs (vLLM >= 0.12), response_format (json_schema) or none (servers '
        'that support neither; the parser still validates every answer).', node=True,
        choices=SCHEMA_MODES)
    max_retries: int = setting(
        2, 'Retries of retryable remote failures (5xx, timeouts, broken connections) with '
        'exponential backoff.', node=True, min=0, max=10)
    jpeg_quality: int = setting(90, 'JPEG quality of images sent to the server.', min=1,
                                max=100)
    mm_kwargs: bool = setting(
        True, 'Send media_io_kwargs/mm_processor_kwargs (vLLM): the clip\'s fps and size.')
    sampling_extras: bool = setting(
        True, 'Send top_k/repetition_penalty (vLLM, NIM; OpenAI itself rejects them).')
    thinking_hint: bool = setting(
        True, 'Send chat_template_kwargs.enable_thinking=false with requests without '
        'reasoning, so vLLM\'s qwen3 reasoning parser keeps the answer in content and '
        'applies the schema.')
    stream: bool = setting(
        True, 'Stream the answer, so a cancel or timeout aborts the request on the server.')
    connect_timeout_s: float = setting(5.0, 'TCP/TLS connect timeout, seconds.',
                                       min=0.001)
    backoff_s: float = setting(0.5, 'First retry delay, seconds (doubles each retry).',
                               min=0.0)
    backoff_max_s: float = setting(8.0, 'Cap of the retry delay, seconds.', min=0.0)
    extra_body: Dict[str, Any] = setting({}, 'More JSON fields merged into every request '
                                         'body.')

    def __post_init__(self) -> None:
        check_settings(self)
        url = urllib.parse.urlsplit(self.base_url or '')
        if url.scheme not in ('http', 'https') or not url.netloc:
            raise ConfigError(f'base_url must be an http(s) URL like http://host:8000/v1, '
                              f'got {self.base_url!r}')
        if url.path in ('', '/'):  # a bare server address: the OpenAI API lives under /v1
            object.__setattr__(self, 'base_url', self.base_url.rstrip('/') + '/v1')
        if self.model == '':   # the node's empty backend.model: the only model served
            object.__setattr__(self, 'model', None)
        if self.backoff_max_s < self.backoff_s:
            raise ConfigError(f'need 0 <= backoff_s <= backoff_max_s, got {self.backoff_s} '
                              f'and {self.backoff_max_s}')
        if self.api_key_env is not None and not self.api_key_env.strip():
            raise ConfigError('api_key_env must name an environment variable or be None')

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> 'OpenAICompatConfig':
        """Build from keyword options; None keeps a default, unknown names are refused."""
        unknown_options(cls, options)
        return cls(**{k: v for k, v in options.items() if v is not None})


__all__ = ['DEFAULT_BASE_URL', 'MEDIA_MODES', 'OpenAICompatConfig', 'SCHEMA_MODES']
