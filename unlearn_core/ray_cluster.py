r"""Joining a Ray cluster as its users run it: the address checked, token authentication detected, a deadline.

``ray.init(address=...)`` fails badly on the mistakes a user makes when moving to a cluster (measured with the
pinned Ray 2.60): a malformed address (``foo``) raises a ``ValueError`` traceback; a port where nothing listens makes
``ray.init`` retry for many minutes; a cluster started with ``ray start --head`` — which turns on **token
authentication** as soon as a token exists on the head (``~/.ray/auth_token``, written by any earlier local
``ray.init``) — answers a client without the token with "ray client connection timeout" after 30 s (``ray://``) or
an ``AuthenticationError`` traceback (GCS address). Here, before ``ray.init``:

1. :func:`parse_address` checks the form — ``HOST:PORT`` (the GCS address, ``ray start --head --port``, default
   6379), ``ray://HOST:PORT`` (Ray Client, default port 10001) or ``auto`` — and raises a one-line
   :class:`~unlearn_core.errors.ConfigError` naming the value otherwise.
2. :func:`probe` asks the server one cheap gRPC question (the GCS's ``GetClusterId``, the client server's
   ``ClusterInfo(PING)``) with a deadline and reads the answer's status: *unauthenticated* (the cluster wants a
   token — say what to set), *unavailable* (nothing listens: say which address and port were tried),
   *unimplemented* (a GCS port given as ``ray://`` or the other way round: say which form to use), or no answer
   within the deadline.
3. :func:`connect` then calls ``ray.init`` with what is left of the deadline (default
   :data:`CONNECT_TIMEOUT_S`, ``UNLEARN_RAY_TIMEOUT`` or the CLI's ``--connect-timeout``).

**Tokens.** A token is sent only when the user opted in with ``RAY_AUTH_MODE=token`` (what Ray itself asks for):
from ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token`` — Ray's own order. A
token found on this machine is never sent to a cluster on a guess: a bearer token handed to whatever answers at an
address is a credential leak.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn_core.errors import ConfigError, abbreviate

#: Default seconds to reach a cluster (probe and ``ray.init`` together).
CONNECT_TIMEOUT_S = 30.0
#: Environment variable that sets the deadline for the dashboard (and the CLI's default).
ENV_TIMEOUT = "UNLEARN_RAY_TIMEOUT"
#: Ray's own environment variables for token authentication.
AUTH_MODE_VAR, TOKEN_VAR, TOKEN_PATH_VAR = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"

FORMS = "HOST:PORT (the GCS address, e.g. 10.0.0.5:6379) or ray://HOST:PORT (Ray Client, e.g. ray://10.0.0.5:10001)"


@dataclass(frozen=True)
class RayAddress:
    """A parsed cluster address: ``kind`` is ``"gcs"``, ``"client"`` (``ray://``) or ``"auto"``."""

    text: str
    kind: str
    host: str = ""
    port: int = 0

    @property
    def target(self) -> str:
        """``HOST:PORT`` as gRPC wants it (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str) -> RayAddress:
    """Check a cluster address before anything else happens.

    Raises:
        ConfigError: one line naming the value and the forms allowed (``foo``, ``host:``, ``host:99999``,
            ``http://host:8265`` — the dashboard's address, not the cluster's).
    """
    raw = str(text).strip()
    if raw == "auto":
        return RayAddress(raw, "auto")
    kind, rest = ("client", raw[len("ray://"):]) if raw.startswith("ray://") else ("gcs", raw)
    bad = f"address={abbreviate(text)} is not valid: expected {FORMS}"
    if "://" in rest or "/" in rest or not rest:
        if raw.startswith(("http://", "https://")):
            bad += " — an http:// address is the Ray dashboard's, not the cluster's"
        raise ConfigError(bad)
    if rest.startswith("["):  # [IPv6]:PORT
        host, sep, port_text = rest[1:].partition("]:")
        if not sep:
            raise ConfigError(bad)
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ConfigError(bad)
    if not host or any(c.isspace() for c in host):
        raise ConfigError(bad)
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(bad) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"address={abbreviate(text)} is not valid: the port must be an integer in [1, 65535]; "
                          f"expected {FORMS}")
    return RayAddress(raw, kind, host, int(port_text))


def check_timeout(value: Any, *, name: str = "connect_timeout_s") -> float:
    """A positive, finite deadline in seconds (one-line :class:`ConfigError` otherwise)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={abbreviate(value)} is not valid: expected seconds > 0, e.g. 30") from None
    if not (0 < seconds <= 3600):
        raise ConfigError(f"{name}={abbreviate(value)} is not valid: expected seconds in (0, 3600], e.g. 30")
    return seconds


def timeout_from_env(environ: dict[str, str] | None = None) -> float:
    """``UNLEARN_RAY_TIMEOUT`` when set, else :data:`CONNECT_TIMEOUT_S`."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_TIMEOUT, "").strip()
    return check_timeout(text, name=ENV_TIMEOUT) if text else CONNECT_TIMEOUT_S


def token_opt_in(environ: dict[str, str] | None = None) -> tuple[str | None, str]:
    """The token to send and where it came from, when ``RAY_AUTH_MODE=token``; ``(None, reason)`` otherwise."""
    env = os.environ if environ is None else environ
    if env.get(AUTH_MODE_VAR, "").strip().lower() != "token":
        return None, f"{AUTH_MODE_VAR} is not 'token'"
    if env.get(TOKEN_VAR, "").strip():
        return env[TOKEN_VAR].strip(), TOKEN_VAR
    path = env.get(TOKEN_PATH_VAR, "").strip()
    candidates = [(Path(path).expanduser(), f"{TOKEN_PATH_VAR}={path}")] if path else []
    candidates.append((Path.home() / ".ray" / "auth_token", "~/.ray/auth_token"))
    for file, source in candidates:
        try:
            token = file.read_text().strip()
        except OSError:
            continue
        if token:
            return token, source
    return None, f"{AUTH_MODE_VAR}=token but no token in {TOKEN_VAR}, {TOKEN_PATH_VAR} or ~/.ray/auth_token"


def _ask_token(address: RayAddress) -> str:
    return (f"the Ray cluster at {address.text} asks for a token (token authentication, which 'ray start --head' "
            f"turns on when the head has one): set {AUTH_MODE_VAR}=token and {TOKEN_VAR}=<the head's token> (print "
            f"it on the head with 'ray get-auth-token'), or put it in ~/.ray/auth_token")


def probe(address: RayAddress, *, timeout_s: float, environ: dict[str, str] | None = None) -> None:
    """Ask the server at ``address`` one gRPC question with a deadline; a one-line :class:`ConfigError` unless it
    answers as the kind of server the address names, accepting this client.

    Imports grpc and Ray's generated stubs (the ``[cluster]`` extra); ``auto`` is not probed.
    """
    if address.kind == "auto":
        return
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc, ray_client_pb2, ray_client_pb2_grpc

    token, source = token_opt_in(environ)
    env = os.environ if environ is None else environ
    if token is None and env.get(AUTH_MODE_VAR, "").strip().lower() == "token":
        raise ConfigError(f"cannot connect to {address.text}: {source}")
    metadata = [("authorization", f"Bearer {token}")] if token else []

    def ask(kind: str, deadline: float) -> grpc.RpcError | None:
        channel = grpc.insecure_channel(address.target)
        try:
            if kind == "gcs":
                gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                    gcs_service_pb2.GetClusterIdRequest(), timeout=deadline, metadata=metadata)
            else:
                ray_client_pb2_grpc.RayletDriverStub(channel).ClusterInfo(
                    ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING), timeout=deadline,
                    metadata=metadata)
            return None
        except grpc.RpcError as exc:
            return exc
        finally:
            channel.close()

    tic = time.monotonic()
    error = ask(address.kind, timeout_s)
    if error is None:
        return
    code = error.code()
    tried = (f"tried {'the GCS' if address.kind == 'gcs' else 'the Ray Client server'} at {address.target} "
             f"for {time.monotonic() - tic:.1f} s")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if token:
            raise ConfigError(f"the Ray cluster at {address.text} refused the token from {source}: use the head's "
                              "token (print it on the head with 'ray get-auth-token')")
        raise ConfigError(_ask_token(address))
    if code == grpc.StatusCode.UNIMPLEMENTED:
        other = "client" if address.kind == "gcs" else "gcs"
        answer = ask(other, max(0.5, timeout_s - (time.monotonic() - tic)))
        if answer is None or answer.code() == grpc.StatusCode.UNAUTHENTICATED:
            fix = f"ray://{address.target}" if other == "client" else address.target
            what = "a Ray Client server" if other == "client" else "a GCS"
            raise ConfigError(f"{address.text} is {what}, not {'a GCS' if other == 'client' else 'a Ray Client server'}"
                              f": use --address {fix}")
        raise ConfigError(f"no Ray cluster at {address.text}: something answers there but not as Ray ({tried}); "
                          f"expected {FORMS}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise ConfigError(f"no answer from a Ray cluster at {address.text} within {timeout_s:g} s ({tried}); check "
                          "the address, the port and the firewall, or raise the deadline (--connect-timeout, "
                          f"{ENV_TIMEOUT})")
    detail = (error.details() or code.name).splitlines()[0]
    if "refused" in detail.lower():
        detail = "connection refused"
    raise ConfigError(f"no Ray cluster at {address.text} ({tried}: {abbreviate(detail, limit=120)}): is it up "
                      "('ray status' on the head) and is the port its GCS port ('ray start --head --port', default "
                      "6379) — or, with ray://, its client port (default 10001)?")


def connect(address: RayAddress, *, timeout_s: float = CONNECT_TIMEOUT_S, init_kwargs: dict[str, Any]) -> float:
    """Probe ``address``, then ``ray.init`` with what is left of ``timeout_s``; the seconds it took.

    ``ray.init`` runs in a helper thread so that a server which accepts the connection but never completes the
    handshake cannot hang the caller: past the deadline the caller gets one line, and the thread is left to Ray.
    """
    import ray

    tic = time.monotonic()
    probe(address, timeout_s=timeout_s)
    box: dict[str, Any] = {}

    def init() -> None:
        try:
            ray.init(address=address.text, **init_kwargs)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=init, name="ray-connect", daemon=True)
    thread.start()
    thread.join(max(1.0, timeout_s - (time.monotonic() - tic)))
    if thread.is_alive():
        raise ConfigError(f"ray.init did not finish within {timeout_s:g} s for {address.text} (the server answered "
                          f"the probe; raise the deadline with --connect-timeout or {ENV_TIMEOUT})")
    error = box.get("error")
    if error is not None:
        if type(error).__name__ == "AuthenticationError":
            raise ConfigError(_ask_token(address)) from None
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(f"could not join the Ray cluster at {address.text}: {abbreviate(first, limit=160)}") from None
    return time.monotonic() - tic
