"""Live-interop peers: real reference implementations that our tests can talk to.

Two kinds of peer expose the same methods (bytes in, bytes out):

* :class:`NodePeer` drives ``node peer.mjs <lib>`` (one process per peer) for
  ``ls072`` / ``ls090`` / ``ls0103`` (@signalapp/libsignal-client 0.72.1 / 0.90.0 /
  0.103.0) and ``node`` (libsignal-node 6.0.0, the library Baileys uses).
* :class:`AxolotlPeer` runs python-axolotl 0.2.3 in-process (X3DH v3 only).

Failures reported by a library raise :class:`PeerError` with a normalised ``kind``
(see :data:`ERROR_KINDS`) and the library's own message. Failures of the harness
itself (process died, timeout, protocol violation) raise :class:`PeerProcessError`.

The reference libraries are GPL/AGPL and are only *run* here as test-time peers;
none of their code is part of this repository.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import logging
import os
import queue
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

__all__ = [
    "ERROR_KINDS",
    "INTEROP_DIR",
    "NODE_LIBS",
    "AxolotlPeer",
    "Fingerprint",
    "NodePeer",
    "Peer",
    "PeerError",
    "PeerProcessError",
    "available_node_libs",
    "axolotl_available",
    "bundle_from_wire",
    "bundle_to_wire",
    "node_available",
    "require_axolotl",
    "require_node_lib",
]

INTEROP_DIR = Path(__file__).resolve().parent

#: Peer names accepted by :class:`NodePeer`, mapped to their folder in node_modules.
NODE_LIBS: dict[str, str] = {
    "ls072": "ls072",
    "ls090": "ls090",
    "ls0103": "ls0103",
    "node": "libsignal",
}

#: Normalised error kinds (``PeerError.kind``).
ERROR_KINDS = frozenset(
    {
        "duplicate",
        "untrusted_identity",
        "invalid_message",
        "invalid_key_id",
        "no_session",
        "invalid_version",
        "signature",
        "unsupported",
        "other",
    }
)

WHISPER_TYPE = 2
PREKEY_TYPE = 3

_BUNDLE_BYTES = (
    "identity_key",
    "prekey_public",
    "signed_prekey_public",
    "signed_prekey_signature",
    "kyber_prekey_public",
    "kyber_prekey_signature",
)
_BUNDLE_INTS = ("registration_id", "device_id", "prekey_id", "signed_prekey_id", "kyber_prekey_id")


class PeerError(Exception):
    """A reference library refused an operation (normalised ``kind`` + its message)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class PeerProcessError(RuntimeError):
    """The harness itself failed: the peer process died, timed out or spoke nonsense."""


class Fingerprint(NamedTuple):
    displayable: str
    scannable: bytes


# ---------------------------------------------------------------------------
# Availability helpers (for pytest fixtures).
# ---------------------------------------------------------------------------


def node_available() -> bool:
    """Whether a ``node`` executable is on PATH."""
    return shutil.which("node") is not None


def available_node_libs() -> list[str]:
    """The peer libs whose npm package is installed under tests/interop/node_modules."""
    out = []
    for lib, folder in NODE_LIBS.items():
        if (INTEROP_DIR / "node_modules" / folder / "package.json").is_file():
            out.append(lib)
    return out


def axolotl_available() -> bool:
    """Whether python-axolotl (and a protobuf it can import with) is usable."""
    if importlib.util.find_spec("axolotl") is None:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importlib.import_module("axolotl.sessioncipher")
    except Exception:
        return False
    return True


def require_node_lib(lib: str) -> None:
    """Skip the calling test (``pytest.skip``) unless ``lib`` can be run."""
    import pytest

    if lib not in NODE_LIBS:
        raise ValueError(f"unknown node peer lib {lib!r}; expected one of {sorted(NODE_LIBS)}")
    if not node_available():
        raise pytest.skip.Exception("node is not installed (needed for the interop peers)")
    if lib not in available_node_libs():
        raise pytest.skip.Exception(
            f"interop peer {lib!r} is not installed: run `npm ci --prefix tests/interop`"
        )


def require_axolotl() -> None:
    """Skip the calling test (``pytest.skip``) unless python-axolotl can be imported."""
    import pytest

    if not axolotl_available():
        raise pytest.skip.Exception(
            "python-axolotl is not installed: run `pip install -r tests/interop/requirements.txt`"
        )


# ---------------------------------------------------------------------------
# Bundles: Python form has bytes values and int-or-None ids; wire form is base64.
# ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def bundle_to_wire(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """Encode a bundle (bytes values) for peer.mjs; str values are taken as base64 already."""
    out: dict[str, Any] = {}
    for k, v in bundle.items():
        if isinstance(v, bytes | bytearray | memoryview):
            out[k] = _b64(bytes(v))
        else:
            out[k] = v
    for k in _BUNDLE_BYTES + _BUNDLE_INTS:
        out.setdefault(k, None)
    return out


def bundle_from_wire(wire: Mapping[str, Any]) -> dict[str, Any]:
    """Decode a bundle from peer.mjs: base64 values to bytes, ids to int or None."""
    out: dict[str, Any] = dict(wire)
    for k in _BUNDLE_BYTES:
        v = wire.get(k)
        out[k] = _unb64(v) if isinstance(v, str) else None
    for k in _BUNDLE_INTS:
        v = wire.get(k)
        out[k] = int(v) if v is not None else None
    return out


def _bundle_bytes(bundle: Mapping[str, Any], key: str) -> bytes | None:
    v = bundle.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        return _unb64(v)
    return bytes(v)


class Peer(Protocol):
    """What every peer offers (NodePeer and AxolotlPeer)."""

    lib: str

    def create(self, name: str, device_id: int, registration_id: int | None = None) -> bytes: ...

    def bundle(
        self,
        *,
        prekey_id: int | None = None,
        signed_prekey_id: int,
        kyber_prekey_id: int | None = None,
        one_time: bool = True,
        kyber: bool = False,
        last_resort: bool = False,
    ) -> dict[str, Any]: ...

    def process_bundle(
        self,
        name: str,
        device_id: int,
        bundle: Mapping[str, Any],
        *,
        pq_ratchet: str | None = None,
    ) -> None: ...

    def encrypt(self, name: str, device_id: int, plaintext: bytes) -> tuple[int, bytes]: ...

    def decrypt(self, name: str, device_id: int, type: int, body: bytes) -> bytes: ...

    def trust(self, name: str, device_id: int, identity_key: bytes) -> None: ...

    def identity(self, name: str, device_id: int) -> bytes | None: ...

    def has_session(self, name: str, device_id: int) -> bool: ...

    def session_record(self, name: str, device_id: int) -> bytes: ...

    def import_session(self, name: str, device_id: int, record: bytes) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------
# NodePeer
# ---------------------------------------------------------------------------


class NodePeer:
    """One ``node peer.mjs <lib>`` process, driven over its JSON-lines protocol."""

    def __init__(
        self,
        lib: str,
        *,
        timeout: float = 60.0,
        startup_timeout: float = 60.0,
        node: str | None = None,
        debug: bool = False,
    ) -> None:
        if lib not in NODE_LIBS:
            raise ValueError(f"unknown node peer lib {lib!r}; expected one of {sorted(NODE_LIBS)}")
        exe = node or shutil.which("node")
        if exe is None:
            raise PeerProcessError("node is not installed")
        self.lib = lib
        self.timeout = timeout
        self.version = ""
        self._lock = threading.Lock()
        self._closed = False
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        env = dict(os.environ)
        if debug:
            env["INTEROP_PEER_DEBUG"] = "1"
        self._proc = subprocess.Popen(
            [exe, str(INTEROP_DIR / "peer.mjs"), lib],
            cwd=INTEROP_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_stdout, name=f"peer-{lib}", daemon=True)
        self._reader.start()
        try:
            ready = self._next_message(startup_timeout)
        except BaseException:
            self._kill()
            raise
        if "error" in ready:
            err = ready["error"]
            self._kill()
            raise PeerError(str(err.get("kind", "other")), str(err.get("message", "")))
        info = ready.get("ready")
        if not isinstance(info, dict):
            self._kill()
            raise PeerProcessError(f"peer {lib}: unexpected first line {ready!r}")
        self.version = str(info.get("version", ""))

    # -- plumbing ---------------------------------------------------------

    def _read_stdout(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            for line in stdout:
                self._lines.put(line)
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(None)

    def _stderr_tail(self, limit: int = 4000) -> str:
        try:
            self._stderr.seek(0)
            data = self._stderr.read()
        except (OSError, ValueError):
            return ""
        return data[-limit:].decode("utf-8", "replace")

    def _next_message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self._stderr_tail()
                self._kill()
                raise PeerProcessError(f"peer {self.lib}: no reply within {timeout:.0f}s: {tail}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise self._died("its output ended")
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                msg = None
            if not isinstance(msg, dict):
                # The line protocol is out of step: this process cannot be trusted any more.
                tail = self._stderr_tail()
                self._kill()
                raise PeerProcessError(f"peer {self.lib}: bad reply line {line!r}; stderr: {tail}")
            return msg

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one raw command (values already JSON-ready) and return its ``ok`` result."""
        with self._lock:
            if self._closed:
                raise PeerProcessError(f"peer {self.lib} is closed")
            stdin = self._proc.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
                stdin.flush()
            except (BrokenPipeError, OSError) as e:
                # A killed peer shows up either as a failed write (it died before the request)
                # or as the end of its output (it died after): both are reported as "exited".
                raise self._died(f"cannot write ({e})") from e
            msg = self._next_message(self.timeout)
        if "error" in msg:
            err = msg["error"]
            if not isinstance(err, dict):
                raise PeerProcessError(f"peer {self.lib}: malformed error {msg!r}")
            raise PeerError(str(err.get("kind", "other")), str(err.get("message", "")))
        ok = msg.get("ok")
        if not isinstance(ok, dict):
            raise PeerProcessError(f"peer {self.lib}: malformed reply {msg!r}")
        return ok

    def _died(self, cause: str, wait: float = 5.0) -> PeerProcessError:
        """The error for a peer whose pipe broke (``cause``), after reaping it for a moment.

        If the process has exited within ``wait`` seconds the message says ``exited (rc=N)``,
        whichever side of the pipe noticed first; otherwise the pipe broke under a live
        process, which is then killed. Either way the peer is closed afterwards.
        """
        try:
            rc: int | None = self._proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            rc = None
        tail = self._stderr_tail()
        self._kill()
        if rc is None:
            return PeerProcessError(
                f"peer {self.lib}: {cause}, but it is still running (killed); stderr: {tail}"
            )
        return PeerProcessError(f"peer {self.lib} exited (rc={rc}; {cause}); stderr: {tail}")

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self._stderr.close()
        except OSError:
            pass

    def close(self) -> None:
        """Ask the peer to quit; kill it if it does not."""
        if self._closed:
            return
        try:
            with self._lock:
                stdin = self._proc.stdin
                if stdin is not None and self._proc.poll() is None:
                    stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    stdin.flush()
            self._proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self._kill()

    def __enter__(self) -> NodePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The peer process id."""
        return self._proc.pid

    def __repr__(self) -> str:
        return f"NodePeer({self.lib!r}, version={self.version!r})"

    # -- commands ---------------------------------------------------------

    def create(self, name: str, device_id: int, registration_id: int | None = None) -> bytes:
        args: dict[str, Any] = {"name": name, "device_id": device_id}
        if registration_id is not None:
            args["registration_id"] = registration_id
        return _unb64(self.call("create", **args)["identity_key"])

    def bundle(
        self,
        *,
        prekey_id: int | None = None,
        signed_prekey_id: int,
        kyber_prekey_id: int | None = None,
        one_time: bool = True,
        kyber: bool = False,
        last_resort: bool = False,
    ) -> dict[str, Any]:
        r = self.call(
            "bundle",
            prekey_id=prekey_id,
            signed_prekey_id=signed_prekey_id,
            kyber_prekey_id=kyber_prekey_id,
            one_time=one_time,
            kyber=kyber,
            last_resort=last_resort,
        )
        return bundle_from_wire(r)

    def process_bundle(
        self,
        name: str,
        device_id: int,
        bundle: Mapping[str, Any],
        *,
        pq_ratchet: str | None = None,
    ) -> None:
        args: dict[str, Any] = {
            "name": name,
            "device_id": device_id,
            "bundle": bundle_to_wire(bundle),
        }
        if pq_ratchet is not None:
            args["pq_ratchet"] = pq_ratchet
        self.call("process_bundle", **args)

    def encrypt(self, name: str, device_id: int, plaintext: bytes) -> tuple[int, bytes]:
        r = self.call("encrypt", name=name, device_id=device_id, plaintext=_b64(plaintext))
        return int(r["type"]), _unb64(r["body"])

    def decrypt(self, name: str, device_id: int, type: int, body: bytes) -> bytes:
        r = self.call("decrypt", name=name, device_id=device_id, type=type, body=_b64(body))
        return _unb64(r["plaintext"])

    def trust(self, name: str, device_id: int, identity_key: bytes) -> None:
        self.call("trust", name=name, device_id=device_id, identity_key=_b64(identity_key))

    def identity(self, name: str, device_id: int) -> bytes | None:
        v = self.call("identity", name=name, device_id=device_id)["identity_key"]
        return _unb64(v) if isinstance(v, str) else None

    def has_session(self, name: str, device_id: int) -> bool:
        return bool(self.call("has_session", name=name, device_id=device_id)["has_session"])

    def session_record(self, name: str, device_id: int) -> bytes:
        return _unb64(self.call("session_record", name=name, device_id=device_id)["record"])

    def import_session(self, name: str, device_id: int, record: bytes) -> None:
        self.call("import_session", name=name, device_id=device_id, record=_b64(record))

    # Sender keys (libsignal-client's current format).

    def group_create_distribution(self, distribution_id: str | uuid.UUID) -> bytes:
        r = self.call("group_create_distribution", distribution_id=str(distribution_id))
        return _unb64(r["skdm"])

    def group_process_distribution(self, name: str, device_id: int, skdm: bytes) -> None:
        self.call("group_process_distribution", name=name, device_id=device_id, skdm=_b64(skdm))

    def group_encrypt(self, distribution_id: str | uuid.UUID, plaintext: bytes) -> bytes:
        r = self.call(
            "group_encrypt", distribution_id=str(distribution_id), plaintext=_b64(plaintext)
        )
        return _unb64(r["body"])

    def group_decrypt(self, name: str, device_id: int, body: bytes) -> bytes:
        r = self.call("group_decrypt", name=name, device_id=device_id, body=_b64(body))
        return _unb64(r["plaintext"])

    # Safety numbers.

    def fingerprint(
        self,
        *,
        version: int,
        iterations: int,
        local_id: bytes,
        local_key: bytes,
        remote_id: bytes,
        remote_key: bytes,
    ) -> Fingerprint:
        r = self.call(
            "fingerprint",
            version=version,
            iterations=iterations,
            local_id=_b64(local_id),
            local_key=_b64(local_key),
            remote_id=_b64(remote_id),
            remote_key=_b64(remote_key),
        )
        return Fingerprint(str(r["displayable"]), _unb64(r["scannable"]))

    def fingerprint_compare(self, scannable: bytes, other: bytes) -> bool:
        r = self.call("fingerprint_compare", scannable=_b64(scannable), other=_b64(other))
        return bool(r["matches"])

    # Sealed sender (libsignal-client peers only).

    def keypair(self) -> tuple[bytes, bytes]:
        """A fresh Curve25519 pair from the peer: (private 32 bytes, public 33 bytes)."""
        r = self.call("keypair")
        return _unb64(r["private"]), _unb64(r["public"])

    def server_certificate(
        self, *, key_id: int, server_public: bytes, trust_root_private: bytes
    ) -> bytes:
        r = self.call(
            "server_certificate",
            key_id=key_id,
            server_public=_b64(server_public),
            trust_root_private=_b64(trust_root_private),
        )
        return _unb64(r["server_certificate"])

    def sender_certificate(
        self,
        *,
        sender_uuid: str,
        sender_device_id: int,
        expiration: int,
        server_certificate: bytes,
        server_private: bytes,
        identity_key: bytes | None = None,
        sender_e164: str | None = None,
    ) -> bytes:
        """A sender certificate (for this peer's identity unless ``identity_key`` is given)."""
        r = self.call(
            "sender_certificate",
            sender_uuid=sender_uuid,
            sender_device_id=sender_device_id,
            expiration=expiration,
            server_certificate=_b64(server_certificate),
            server_private=_b64(server_private),
            identity_key=_b64(identity_key) if identity_key is not None else None,
            sender_e164=sender_e164,
        )
        return _unb64(r["sender_certificate"])

    def sender_certificate_info(
        self, certificate: bytes, *, trust_root: bytes | None = None, time: int | None = None
    ) -> dict[str, Any]:
        """The peer's reading of a sender certificate; ``valid`` when a trust root is given."""
        args: dict[str, Any] = {"sender_certificate": _b64(certificate)}
        if trust_root is not None:
            args.update(trust_root=_b64(trust_root), time=time)
        r = dict(self.call("sender_certificate_info", **args))
        r["identity_key"] = _unb64(r["identity_key"])
        return r

    def _sealed_args(
        self,
        sender_certificate: bytes,
        plaintext_content: bytes | None,
        distribution_id: str | uuid.UUID | None,
        plaintext: bytes | None,
        content_hint: int,
        group_id: bytes | None,
    ) -> dict[str, Any]:
        return {
            "sender_certificate": _b64(sender_certificate),
            "plaintext_content": _b64(plaintext_content) if plaintext_content is not None else None,
            "distribution_id": str(distribution_id) if distribution_id is not None else None,
            "plaintext": _b64(plaintext) if plaintext is not None else None,
            "content_hint": content_hint,
            "group_id": _b64(group_id) if group_id is not None else None,
        }

    def sealed_encrypt_v1(
        self,
        name: str,
        device_id: int,
        *,
        sender_certificate: bytes,
        plaintext_content: bytes | None = None,
        distribution_id: str | uuid.UUID | None = None,
        plaintext: bytes | None = None,
        content_hint: int = 0,
        group_id: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """Seals (v1) a PlaintextContent (``0xC0 || body``) or, with ``distribution_id``, a
        SenderKeyMessage of ``plaintext``, to the identity stored for name.device_id.
        Returns (sealed message, serialized USMC)."""
        r = self.call(
            "sealed_encrypt_v1",
            name=name,
            device_id=device_id,
            **self._sealed_args(
                sender_certificate,
                plaintext_content,
                distribution_id,
                plaintext,
                content_hint,
                group_id,
            ),
        )
        return _unb64(r["body"]), _unb64(r["usmc"])

    def sealed_encrypt_v2(
        self,
        recipients: list[tuple[str, int]],
        *,
        sender_certificate: bytes,
        excluded: list[str] | None = None,
        plaintext_content: bytes | None = None,
        distribution_id: str | uuid.UUID | None = None,
        plaintext: bytes | None = None,
        content_hint: int = 0,
        group_id: bytes | None = None,
    ) -> tuple[bytes, bytes]:
        """Multi-recipient (v2) sent form to (name, device) addresses this peer has sessions
        with. Returns (sent message, serialized USMC)."""
        r = self.call(
            "sealed_encrypt_v2",
            recipients=[{"name": n, "device_id": d} for n, d in recipients],
            excluded=excluded or [],
            **self._sealed_args(
                sender_certificate,
                plaintext_content,
                distribution_id,
                plaintext,
                content_hint,
                group_id,
            ),
        )
        return _unb64(r["body"]), _unb64(r["usmc"])

    def sealed_single_recipient(self, sent: bytes) -> bytes:
        return _unb64(self.call("sealed_single_recipient", body=_b64(sent))["body"])

    def sealed_parse_sent(self, sent: bytes) -> dict[str, Any]:
        """The peer's server-side parse: recipients {sid: [[device, reg id]...]}, excluded,
        and the received form per recipient (messages {sid: bytes})."""
        r = dict(self.call("sealed_parse_sent", body=_b64(sent)))
        r["messages"] = {k: _unb64(v) for k, v in r["messages"].items()}
        return r

    def sealed_decrypt_to_usmc(
        self, body: bytes, *, trust_root: bytes | None = None, time: int | None = None
    ) -> dict[str, Any]:
        """Opens a sealed message with this peer's identity; with a trust root also reports
        whether the sender certificate is ``valid`` at ``time``."""
        args: dict[str, Any] = {"body": _b64(body)}
        if trust_root is not None:
            args.update(trust_root=_b64(trust_root), time=time)
        r = dict(self.call("sealed_decrypt_to_usmc", **args))
        for k in ("contents", "sender_certificate", "sender_key", "usmc"):
            r[k] = _unb64(r[k])
        r["group_id"] = _unb64(r["group_id"]) if r["group_id"] is not None else None
        return r


# ---------------------------------------------------------------------------
# AxolotlPeer (python-axolotl 0.2.3, in-process)
# ---------------------------------------------------------------------------


def _ax(module: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"axolotl.{module}")


class _AxIdentityStore:
    """python-axolotl IdentityKeyStore with strict trust on first use (per name)."""

    def __init__(self, owner: AxolotlPeer) -> None:
        self._owner = owner
        self.known: dict[str, bytes] = {}

    def getIdentityKeyPair(self) -> Any:
        return self._owner._require_self()["pair"]

    def getLocalRegistrationId(self) -> int:
        return int(self._owner._require_self()["registration_id"])

    def saveIdentity(self, recipientId: str, identityKey: Any) -> None:
        self.known[recipientId] = bytes(identityKey.serialize())

    def isTrustedIdentity(self, recipientId: str, identityKey: Any) -> bool:
        old = self.known.get(recipientId)
        return old is None or old == bytes(identityKey.serialize())


class _AxSessionStore:
    """Sessions kept serialized, so a failed operation never leaves half-updated state."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], bytes] = {}

    def loadSession(self, recipientId: str, deviceId: int) -> Any:
        cls = _ax("state.sessionrecord").SessionRecord
        b = self.records.get((recipientId, deviceId))
        return cls(serialized=b) if b is not None else cls()

    def getSubDeviceSessions(self, recipientId: str) -> list[int]:
        return [d for (n, d) in self.records if n == recipientId and d != 1]

    def storeSession(self, recipientId: str, deviceId: int, sessionRecord: Any) -> None:
        self.records[(recipientId, deviceId)] = bytes(sessionRecord.serialize())

    def containsSession(self, recipientId: str, deviceId: int) -> bool:
        return (recipientId, deviceId) in self.records

    def deleteSession(self, recipientId: str, deviceId: int) -> None:
        self.records.pop((recipientId, deviceId), None)

    def deleteAllSessions(self, recipientId: str) -> None:
        for k in [k for k in self.records if k[0] == recipientId]:
            del self.records[k]


class _AxPreKeyStore:
    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}

    def loadPreKey(self, preKeyId: int) -> Any:
        b = self.records.get(preKeyId)
        if b is None:
            raise _ax("invalidkeyidexception").InvalidKeyIdException(
                f"No such prekeyrecord! {preKeyId}"
            )
        return _ax("state.prekeyrecord").PreKeyRecord(serialized=b)

    def storePreKey(self, preKeyId: int, preKeyRecord: Any) -> None:
        self.records[preKeyId] = bytes(preKeyRecord.serialize())

    def containsPreKey(self, preKeyId: int) -> bool:
        return preKeyId in self.records

    def removePreKey(self, preKeyId: int) -> None:
        self.records.pop(preKeyId, None)


class _AxSignedPreKeyStore:
    def __init__(self) -> None:
        self.records: dict[int, bytes] = {}

    def loadSignedPreKey(self, signedPreKeyId: int) -> Any:
        b = self.records.get(signedPreKeyId)
        if b is None:
            raise _ax("invalidkeyidexception").InvalidKeyIdException(
                f"No such signedprekeyrecord! {signedPreKeyId}"
            )
        return _ax("state.signedprekeyrecord").SignedPreKeyRecord(serialized=b)

    def loadSignedPreKeys(self) -> list[Any]:
        cls = _ax("state.signedprekeyrecord").SignedPreKeyRecord
        return [cls(serialized=b) for b in self.records.values()]

    def storeSignedPreKey(self, signedPreKeyId: int, signedPreKeyRecord: Any) -> None:
        self.records[signedPreKeyId] = bytes(signedPreKeyRecord.serialize())

    def containsSignedPreKey(self, signedPreKeyId: int) -> bool:
        return signedPreKeyId in self.records

    def removeSignedPreKey(self, signedPreKeyId: int) -> None:
        self.records.pop(signedPreKeyId, None)


class _AxSenderKeyStore:
    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def storeSenderKey(self, senderKeyName: Any, senderKeyRecord: Any) -> None:
        self.records[str(senderKeyName.serialize())] = bytes(senderKeyRecord.serialize())

    def loadSenderKey(self, senderKeyName: Any) -> Any:
        cls = _ax("groups.state.senderkeyrecord").SenderKeyRecord
        b = self.records.get(str(senderKeyName.serialize()))
        return cls(serialized=b) if b is not None else cls()


def _axolotl_error(e: BaseException) -> PeerError:
    name = type(e).__name__
    text = str(e) or name
    message = f"{name}: {text}"
    if name == "DuplicateMessageException":
        return PeerError("duplicate", message)
    if name == "UntrustedIdentityException":
        return PeerError(
            "untrusted_identity", f"{name}: untrusted identity for {e.args[0] if e.args else '?'}"
        )
    if name == "InvalidKeyIdException":
        return PeerError("invalid_key_id", message)
    if name == "NoSessionException":
        return PeerError("no_session", message)
    if name in ("InvalidVersionException", "LegacyMessageException"):
        return PeerError("invalid_version", message)
    if "signature" in text.lower():
        return PeerError("signature", message)
    if (
        name == "InvalidMessageException"
        and "version" in text.lower()
        and "No valid sessions" not in text
    ):
        return PeerError("invalid_version", message)
    if name in ("InvalidMessageException", "InvalidKeyException", "DecodeError", "ValueError"):
        return PeerError("invalid_message", message)
    return PeerError("other", message)


class AxolotlPeer:
    """python-axolotl 0.2.3 behind the same interface as :class:`NodePeer` (in-process).

    X3DH (session version 3) only: ``bundle(kyber=True)`` and ``pq_ratchet`` raise
    ``PeerError('unsupported')``; Kyber fields of a received bundle are ignored (as a
    v3-only client would). Identities are tracked per name (python-axolotl keys them
    by recipient id, not by device). As receiver, python-axolotl refuses a PreKey
    message that used no one-time prekey (``invalid_key_id``).
    """

    lib = "axolotl"

    def __init__(self) -> None:
        if not axolotl_available():
            raise PeerProcessError(
                "python-axolotl is not importable: pip install -r tests/interop/requirements.txt"
            )
        dist = importlib.import_module("importlib.metadata")
        try:
            self.version = str(dist.version("python-axolotl"))
        except Exception:
            self.version = "?"
        # Its informational log lines ("already setup a session ...") are not ours to print.
        ax_logger = logging.getLogger("axolotl")
        if not any(isinstance(h, logging.NullHandler) for h in ax_logger.handlers):
            ax_logger.addHandler(logging.NullHandler())
        self._self: dict[str, Any] | None = None
        self._identities = _AxIdentityStore(self)
        self._sessions = _AxSessionStore()
        self._prekeys = _AxPreKeyStore()
        self._signed = _AxSignedPreKeyStore()
        self._senderkeys = _AxSenderKeyStore()
        self._next_prekey_id = 1000

    def __enter__(self) -> AxolotlPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"AxolotlPeer(version={self.version!r})"

    def _require_self(self) -> dict[str, Any]:
        if self._self is None:
            raise PeerError("other", "no local identity: call create first")
        return self._self

    def _cipher(self, name: str, device_id: int) -> Any:
        return _ax("sessioncipher").SessionCipher(
            self._sessions, self._prekeys, self._signed, self._identities, name, device_id
        )

    def _guard(self, fn: Any, *args: Any) -> Any:
        # python-axolotl calls the deprecated Logger.warn (a DeprecationWarning, which
        # test suites often turn into errors); keep its warnings out of our callers' way.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return fn(*args)
        except PeerError:
            raise
        except Exception as e:
            raise _axolotl_error(e) from e

    # -- commands ---------------------------------------------------------

    def create(self, name: str, device_id: int, registration_id: int | None = None) -> bytes:
        pair = _ax("util.keyhelper").KeyHelper.generateIdentityKeyPair()
        reg = registration_id if registration_id is not None else random.randint(1, 16380)
        replacing = self._self is not None
        self._self = {"name": name, "device_id": device_id, "registration_id": reg, "pair": pair}
        if replacing:
            # A re-installed device: its old prekeys were signed by the old identity.
            self._prekeys.records.clear()
            self._signed.records.clear()
        return bytes(pair.getPublicKey().serialize())

    def bundle(
        self,
        *,
        prekey_id: int | None = None,
        signed_prekey_id: int,
        kyber_prekey_id: int | None = None,
        one_time: bool = True,
        kyber: bool = False,
        last_resort: bool = False,
    ) -> dict[str, Any]:
        me = self._require_self()
        if kyber:
            raise PeerError("unsupported", "python-axolotl has no Kyber prekeys (X3DH v3 only)")
        curve = _ax("ecc.curve").Curve
        out: dict[str, Any] = {
            "registration_id": me["registration_id"],
            "device_id": me["device_id"],
            "identity_key": bytes(me["pair"].getPublicKey().serialize()),
            "prekey_id": None,
            "prekey_public": None,
            "signed_prekey_id": signed_prekey_id,
            "signed_prekey_public": None,
            "signed_prekey_signature": None,
            "kyber_prekey_id": None,
            "kyber_prekey_public": None,
            "kyber_prekey_signature": None,
        }
        if one_time:
            pid = prekey_id if prekey_id is not None else self._next_prekey_id
            if prekey_id is None:
                self._next_prekey_id += 1
            if not self._prekeys.containsPreKey(pid):
                rec = _ax("state.prekeyrecord").PreKeyRecord(pid, curve.generateKeyPair())
                self._prekeys.storePreKey(pid, rec)
            rec = self._prekeys.loadPreKey(pid)
            out["prekey_id"] = pid
            out["prekey_public"] = bytes(rec.getKeyPair().getPublicKey().serialize())
        if not self._signed.containsSignedPreKey(signed_prekey_id):
            spk = _ax("util.keyhelper").KeyHelper.generateSignedPreKey(me["pair"], signed_prekey_id)
            self._signed.storeSignedPreKey(signed_prekey_id, spk)
        spk = self._signed.loadSignedPreKey(signed_prekey_id)
        out["signed_prekey_public"] = bytes(spk.getKeyPair().getPublicKey().serialize())
        out["signed_prekey_signature"] = bytes(spk.getSignature())
        return out

    def process_bundle(
        self,
        name: str,
        device_id: int,
        bundle: Mapping[str, Any],
        *,
        pq_ratchet: str | None = None,
    ) -> None:
        self._require_self()
        if pq_ratchet is not None:
            raise PeerError("unsupported", "python-axolotl has no PQ ratchet")

        def run() -> None:
            curve = _ax("ecc.curve").Curve
            ik = _bundle_bytes(bundle, "identity_key")
            spk = _bundle_bytes(bundle, "signed_prekey_public")
            sig = _bundle_bytes(bundle, "signed_prekey_signature")
            if ik is None or spk is None or sig is None:
                raise PeerError("other", "bundle lacks identity_key / signed prekey")
            opk = _bundle_bytes(bundle, "prekey_public")
            opk_id = bundle.get("prekey_id")
            pkb = _ax("state.prekeybundle").PreKeyBundle(
                int(bundle["registration_id"]),
                int(bundle["device_id"]),
                int(opk_id) if opk_id is not None and opk is not None else None,
                curve.decodePoint(opk, 0) if opk is not None else None,
                int(bundle["signed_prekey_id"]),
                curve.decodePoint(spk, 0),
                sig,
                _ax("identitykey").IdentityKey(ik, 0),
            )
            _ax("sessionbuilder").SessionBuilder(
                self._sessions, self._prekeys, self._signed, self._identities, name, device_id
            ).processPreKeyBundle(pkb)

        self._guard(run)

    def encrypt(self, name: str, device_id: int, plaintext: bytes) -> tuple[int, bytes]:
        self._require_self()
        if not self._sessions.containsSession(name, device_id):
            raise PeerError("no_session", f"no session with {name}.{device_id}")
        msg = self._guard(self._cipher(name, device_id).encrypt, bytes(plaintext))
        return int(msg.getType()), bytes(msg.serialize())

    def decrypt(self, name: str, device_id: int, type: int, body: bytes) -> bytes:
        self._require_self()
        cipher = self._cipher(name, device_id)

        def run() -> bytes:
            if type == PREKEY_TYPE:
                msg = _ax("protocol.prekeywhispermessage").PreKeyWhisperMessage(
                    serialized=bytes(body)
                )
                return bytes(cipher.decryptPkmsg(msg))
            if type == WHISPER_TYPE:
                msg = _ax("protocol.whispermessage").WhisperMessage(serialized=bytes(body))
                return bytes(cipher.decryptMsg(msg))
            raise PeerError("invalid_message", f"unknown message type {type}")

        result: bytes = self._guard(run)
        return result

    def trust(self, name: str, device_id: int, identity_key: bytes) -> None:
        _ax("identitykey").IdentityKey(bytes(identity_key), 0)  # validate
        self._identities.known[name] = bytes(identity_key)

    def identity(self, name: str, device_id: int) -> bytes | None:
        return self._identities.known.get(name)

    def has_session(self, name: str, device_id: int) -> bool:
        if not self._sessions.containsSession(name, device_id):
            return False
        state = self._sessions.loadSession(name, device_id).getSessionState()
        return bool(state.hasSenderChain())

    def session_record(self, name: str, device_id: int) -> bytes:
        """python-axolotl's own SessionRecord protobuf (libsignal's older layout)."""
        b = self._sessions.records.get((name, device_id))
        if b is None:
            raise PeerError("no_session", f"no session with {name}.{device_id}")
        return b

    def import_session(self, name: str, device_id: int, record: bytes) -> None:
        rec = self._guard(
            lambda: _ax("state.sessionrecord").SessionRecord(serialized=bytes(record))
        )
        self._sessions.storeSession(name, device_id, rec)

    # libsignal-format sender keys / fingerprints: not available in python-axolotl.

    def group_create_distribution(self, distribution_id: str | uuid.UUID) -> bytes:
        raise PeerError("unsupported", "python-axolotl only has legacy-format sender keys")

    def group_process_distribution(self, name: str, device_id: int, skdm: bytes) -> None:
        raise PeerError("unsupported", "python-axolotl only has legacy-format sender keys")

    def group_encrypt(self, distribution_id: str | uuid.UUID, plaintext: bytes) -> bytes:
        raise PeerError("unsupported", "python-axolotl only has legacy-format sender keys")

    def group_decrypt(self, name: str, device_id: int, body: bytes) -> bytes:
        raise PeerError("unsupported", "python-axolotl only has legacy-format sender keys")

    def fingerprint(
        self,
        *,
        version: int,
        iterations: int,
        local_id: bytes,
        local_key: bytes,
        remote_id: bytes,
        remote_key: bytes,
    ) -> Fingerprint:
        raise PeerError("unsupported", "python-axolotl has no safety numbers")

    def fingerprint_compare(self, scannable: bytes, other: bytes) -> bool:
        raise PeerError("unsupported", "python-axolotl has no safety numbers")

    # Legacy (WhatsApp-era) sender keys: python-axolotl's GroupCipher.

    def _sender_key_name(self, group_id: str, name: str, device_id: int) -> Any:
        addr = _ax("axolotladdress").AxolotlAddress(name, device_id)
        return _ax("groups.senderkeyname").SenderKeyName(group_id, addr)

    def legacy_group_create_distribution(self, group_id: str) -> bytes:
        me = self._require_self()
        skn = self._sender_key_name(group_id, me["name"], me["device_id"])
        builder = _ax("groups.groupsessionbuilder").GroupSessionBuilder(self._senderkeys)
        return bytes(self._guard(builder.create, skn).serialize())

    def legacy_group_process_distribution(
        self, name: str, device_id: int, group_id: str, skdm: bytes
    ) -> None:
        def run() -> None:
            msg = _ax("protocol.senderkeydistributionmessage").SenderKeyDistributionMessage(
                serialized=bytes(skdm)
            )
            builder = _ax("groups.groupsessionbuilder").GroupSessionBuilder(self._senderkeys)
            builder.process(self._sender_key_name(group_id, name, device_id), msg)

        self._guard(run)

    def legacy_group_encrypt(self, group_id: str, plaintext: bytes) -> bytes:
        me = self._require_self()
        skn = self._sender_key_name(group_id, me["name"], me["device_id"])
        if skn.serialize() not in self._senderkeys.records:
            raise PeerError("no_session", f"no sender key for {skn.serialize()}")
        cipher = _ax("groups.groupcipher").GroupCipher(self._senderkeys, skn)
        return bytes(self._guard(cipher.encrypt, bytes(plaintext)))

    def legacy_group_decrypt(self, name: str, device_id: int, group_id: str, body: bytes) -> bytes:
        skn = self._sender_key_name(group_id, name, device_id)
        cipher = _ax("groups.groupcipher").GroupCipher(self._senderkeys, skn)
        return bytes(self._guard(cipher.decrypt, bytes(body)))
