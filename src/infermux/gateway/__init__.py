"""infermux.gateway: an OpenAI- and Anthropic-compatible HTTP server over the whole infermux engine.

Not imported by ``import infermux`` (extra ``[gateway]``; it needs aiohttp's server). Quick start::

    client = infermux.AsyncClient(config="infermux.toml")
    async with GatewayServer(Gateway(client, GatewaySettings(port=0))) as srv:
        ...  # point any OpenAI or Anthropic SDK at srv.url + "/v1" (OpenAI) or srv.url (Anthropic)

or ``infermux serve --config infermux.toml --host 127.0.0.1 --port 8080``.
"""

from .app import Gateway, Principal, RequestContext
from .errors import GatewayError
from .keys import KeyStore, VirtualKey
from .limits import KeyLimiter, TokenBucket
from .redis_state import RedisState, StateUnavailableError
from .server import GatewayServer, load_gateway_config, main
from .settings import MASTER_KEY_ENV, GatewaySettings, Price, settings_from_dict
from .state import GatewayState, LocalState

__all__ = [
    "MASTER_KEY_ENV",
    "Gateway",
    "GatewayError",
    "GatewayServer",
    "GatewaySettings",
    "GatewayState",
    "KeyLimiter",
    "KeyStore",
    "LocalState",
    "Price",
    "Principal",
    "RedisState",
    "RequestContext",
    "StateUnavailableError",
    "TokenBucket",
    "VirtualKey",
    "load_gateway_config",
    "main",
    "settings_from_dict",
]
