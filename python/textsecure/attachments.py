"""Signal attachments and WhatsApp media: encryption, decryption, streaming.

Signal attachments (what Signal clients upload):

* key material: 64 random bytes (AES-256 key ‖ HMAC-SHA256 key);
* the plaintext is zero-padded to :func:`padded_size` (the true size travels in the pointer);
* blob = IV (16) ‖ AES-256-CBC/PKCS#7 ‖ HMAC-SHA256(IV ‖ ciphertext) (32);
* ``digest`` = SHA-256 of the whole blob;
* ``incremental_mac``: libsignal's incremental MAC over the blob, so a receiver can validate
  the download chunk by chunk (``chunk_size`` bytes per digest).

WhatsApp media (Baileys' ``messages-media``): a 32-byte media key, HKDF-SHA256 with info
``WhatsApp <Type> Keys`` to 112 bytes (IV, cipher key, MAC key, ref key); the file is
AES-256-CBC/PKCS#7 ‖ the first 10 bytes of HMAC-SHA256(IV ‖ ciphertext); ``file_sha256`` is
the SHA-256 of the plaintext and ``file_enc_sha256`` that of the file.

All the cryptography runs in Rust with the GIL released on sizable chunks. Decryption never
hands out unauthenticated plaintext: streaming Signal decryption releases a chunk only after
its incremental MAC verified; the other decrypting paths verify everything before any
plaintext leaves (files are written to a temporary file and renamed into place). See
``docs/attachments.md``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, NamedTuple, cast

from textsecure import _native
from textsecure.errors import InvalidArgument, InvalidKey

__all__ = [
    "KEY_SIZE",
    "MEDIA_KEY_SIZE",
    "MEDIA_TYPES",
    "Attachment",
    "AttachmentInfo",
    "EncryptingStream",
    "MediaKeys",
    "WhatsAppMedia",
    "WhatsAppMediaInfo",
    "blob_size",
    "decrypt",
    "decrypt_file",
    "decrypt_stream",
    "decrypt_whatsapp",
    "decrypt_whatsapp_file",
    "decrypt_whatsapp_stream",
    "encrypt",
    "encrypt_file",
    "encrypt_stream",
    "encrypt_whatsapp",
    "encrypt_whatsapp_file",
    "encrypt_whatsapp_stream",
    "incremental_chunk_size",
    "incremental_mac",
    "libsignal_chunk_size",
    "padded_size",
    "whatsapp_hkdf_info",
    "whatsapp_media_keys",
]

BytesLike = bytes | bytearray | memoryview
StrPath = str | os.PathLike[str]
#: What the streaming functions read from: bytes, a path, a binary file object, or an
#: iterable of bytes-like chunks.
Source = BytesLike | StrPath | IO[bytes] | Iterable[BytesLike]
#: Where the file functions write to: a path or a binary file object.
Sink = StrPath | IO[bytes]

KEY_SIZE = 64
MEDIA_KEY_SIZE = 32
#: Baileys' media type names.
MEDIA_TYPES: tuple[str, ...] = tuple(_native.whatsapp_media_types())

#: Read size of the streaming helpers (the GIL is released per chunk).
CHUNK = 1 << 20
_PATH = (str, os.PathLike)


def _b(data: BytesLike) -> bytes:
    # Only the buffer protocol: ``bytes(5)`` would silently turn an int into five zero bytes.
    return data if isinstance(data, bytes) else memoryview(data).tobytes()


def _opt_b(data: BytesLike | None) -> bytes | None:
    return None if data is None else _b(data)


def _fs(p: StrPath) -> str:
    return os.fspath(p)


def _chunks(source: Source, chunk: int = CHUNK) -> Iterator[bytes]:
    """The source as an iterator of ``bytes`` chunks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for i in range(0, len(view), chunk):
            yield bytes(view[i : i + chunk])
        return
    if isinstance(source, _PATH):
        with open(source, "rb") as f:
            yield from _read_chunks(f, chunk)
        return
    if hasattr(source, "read"):
        yield from _read_chunks(cast(IO[bytes], source), chunk)
        return
    for piece in source:
        if piece:
            yield _b(piece)


def _read_chunks(f: IO[bytes], chunk: int) -> Iterator[bytes]:
    while True:
        piece = f.read(chunk)
        if not piece:
            return
        yield _b(piece)


def _known_size(source: Source) -> int | None:
    """The number of bytes the source will yield, when it can be known without reading."""
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    if isinstance(source, memoryview):
        return source.nbytes
    if isinstance(source, _PATH):
        return os.stat(source).st_size
    if hasattr(source, "seek") and hasattr(source, "tell"):
        f = cast(IO[bytes], source)
        try:
            if not f.seekable():
                return None
            here = f.tell()
            end = f.seek(0, os.SEEK_END)
            f.seek(here)
            return end - here
        except (OSError, ValueError):
            return None
    return None


def _write_all(chunks: Iterable[bytes], dst: Sink) -> None:
    if isinstance(dst, _PATH):
        with open(dst, "wb") as f:
            for c in chunks:
                f.write(c)
    else:
        out: IO[bytes] = dst
        for c in chunks:
            out.write(c)


class _nullctx:
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f

    def __enter__(self) -> IO[bytes]:
        return self.f

    def __exit__(self, *exc: object) -> None:
        return None


def _threads(threads: int | None) -> int | None:
    if threads is not None and threads < 1:
        raise InvalidArgument("threads must be at least 1")
    return threads


def _check_key(key: BytesLike, size: int, what: str) -> bytes:
    k = _b(key)
    if len(k) != size:
        raise InvalidKey(f"{what} must be {size} bytes, got {len(k)}")
    return k


# --- Signal attachments -------------------------------------------------------------------


def padded_size(size: int) -> int:
    """Signal's padded size (Signal-Android's ``PaddingInputStream.getPaddedSize``).

    Above 2**31 - 1 bytes, where Android's formula no longer covers the size, nothing is padded.
    """
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    return _native.attachment_padded_size(size)


def blob_size(size: int) -> int:
    """Length of the encrypted blob for a plaintext of ``size`` bytes."""
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    return _native.attachment_blob_len(size)


def incremental_chunk_size(size: int) -> int:
    """The incremental-MAC chunk size for a plaintext of ``size`` bytes.

    libsignal's rule (64 KiB up to 16 MiB, then size/256, at most 2 MiB) applied to the blob
    length, as Signal-Android does with the upload length.
    """
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    return _native.attachment_chunk_size(size)


def libsignal_chunk_size(data_size: int) -> int:
    """libsignal's ``inferChunkSize`` rule for ``data_size`` MACed bytes."""
    if data_size < 0:
        raise InvalidArgument("data_size must be non-negative")
    return _native.incremental_chunk_size(data_size)


def incremental_mac(mac_key: BytesLike, data: BytesLike, chunk_size: int) -> bytes:
    """libsignal's incremental MAC digest list of ``data`` (boundary digests, then the HMAC)."""
    if chunk_size <= 0:
        raise InvalidArgument("chunk_size must be positive")
    return _native.incremental_mac(_b(mac_key), _b(data), chunk_size)


@dataclass(frozen=True)
class AttachmentInfo:
    """What goes into Signal's AttachmentPointer (everything but the blob)."""

    key: bytes = field(repr=False)
    """64 bytes: AES-256 key ‖ HMAC-SHA256 key."""
    digest: bytes
    """SHA-256 of the blob."""
    plaintext_size: int
    incremental_mac: bytes
    chunk_size: int
    """Incremental MAC chunk size (``incrementalMacChunkSize``)."""
    blob_size: int


@dataclass(frozen=True)
class Attachment(AttachmentInfo):
    """An encrypted attachment held in memory."""

    blob: bytes = field(repr=False, default=b"")


def _new_key(key: BytesLike | None) -> bytes:
    return secrets.token_bytes(KEY_SIZE) if key is None else _check_key(key, KEY_SIZE, "key")


def _info(key: bytes, r: tuple[bytes, bytes, int, int, int]) -> AttachmentInfo:
    digest, inc, chunk, size, blen = r
    return AttachmentInfo(key, digest, size, inc, chunk, blen)


def encrypt(
    data: BytesLike,
    *,
    key: BytesLike | None = None,
    iv: BytesLike | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> Attachment:
    """Encrypts ``data`` as a Signal attachment (random key and IV unless given).

    ``threads``: 1 keeps all the work on the calling thread; 2 or more runs the hashes on a
    helper thread beside AES-CBC; ``None`` (the default) uses two for 4 MiB and more when the
    machine has more than one CPU. The result is the same either way.
    """
    k = _new_key(key)
    v = secrets.token_bytes(16) if iv is None else _b(iv)
    blob, r = _native.attachment_encrypt(_b(data), k, v, chunk_size, _threads(threads))
    info = _info(k, r)
    return Attachment(
        info.key,
        info.digest,
        info.plaintext_size,
        info.incremental_mac,
        info.chunk_size,
        info.blob_size,
        blob,
    )


def decrypt(
    blob: BytesLike,
    *,
    key: BytesLike,
    digest: BytesLike | None,
    size: int,
    incremental_mac: BytesLike | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> bytes:
    """Decrypts a Signal attachment: checks the MAC, the digest (when not ``None``) and the
    incremental MAC (when given), removes the padding and returns ``size`` bytes.

    ``threads`` as for :func:`encrypt`. Raises :class:`~textsecure.errors.InvalidMessage` on
    any tampering.
    """
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    return _native.attachment_decrypt(
        _b(blob),
        _check_key(key, KEY_SIZE, "key"),
        _opt_b(digest),
        size,
        _opt_b(incremental_mac),
        chunk_size,
        _threads(threads),
    )


class EncryptingStream(Iterator[bytes]):
    """An iterator over the blob of an attachment being encrypted.

    Iterate it to get the blob chunk by chunk; once exhausted, :attr:`info` holds the pointer
    fields (digest, incremental MAC...). Memory stays bounded by the chunk size.
    """

    def __init__(
        self, source: Source, key: bytes, iv: bytes, chunk_size: int, chunk: int = CHUNK
    ) -> None:
        self.key = key
        self._enc = _native.AttachmentEncryptor(key, iv, chunk_size)
        self._src = _chunks(source, chunk)
        self._chunk = chunk
        self._stage = 0  # 0: data, 1: padding, 2: done
        self._info: AttachmentInfo | None = None

    @property
    def info(self) -> AttachmentInfo:
        """The pointer fields; available once the stream is exhausted."""
        if self._info is None:
            raise InvalidArgument("the stream is not exhausted yet")
        return self._info

    def __iter__(self) -> EncryptingStream:
        return self

    def __next__(self) -> bytes:
        while True:
            if self._stage == 0:
                piece = next(self._src, None)
                if piece is None:
                    self._stage = 1
                    continue
                out = self._enc.update(piece)
                if out:
                    return out
            elif self._stage == 1:
                out, done = self._enc.pad(self._chunk)
                if done:
                    tail, r = self._enc.finalize()
                    self._info = _info(self.key, r)
                    self._stage = 2
                    out += tail
                if out:
                    return out
            else:
                raise StopIteration


def encrypt_stream(
    source: Source,
    *,
    key: BytesLike | None = None,
    size: int | None = None,
    chunk_size: int | None = None,
    iv: BytesLike | None = None,
) -> EncryptingStream:
    """Encrypts from bytes, a path, a binary file or an iterable of chunks, lazily.

    ``size`` (the plaintext size) picks Signal's incremental-MAC chunk size; it is found by
    itself for bytes, paths and seekable files. For other iterables pass ``size`` or
    ``chunk_size`` (otherwise the smallest chunk size, 64 KiB, is used).
    """
    k = _new_key(key)
    v = secrets.token_bytes(16) if iv is None else _b(iv)
    if chunk_size is None:
        n = size if size is not None else _known_size(source)
        chunk_size = incremental_chunk_size(n if n is not None else 0)
    return EncryptingStream(source, k, v, chunk_size)


def encrypt_file(
    src: Source,
    dst: Sink,
    *,
    key: BytesLike | None = None,
    chunk_size: int | None = None,
    iv: BytesLike | None = None,
) -> AttachmentInfo:
    """Encrypts ``src`` (path, file or any :data:`Source`) into ``dst`` (path or file).

    Path to path runs entirely in Rust (1 MiB buffers, GIL released).
    """
    k = _new_key(key)
    v = secrets.token_bytes(16) if iv is None else _b(iv)
    if isinstance(src, _PATH) and isinstance(dst, _PATH):
        r = _native.attachment_encrypt_file(_fs(src), _fs(dst), k, v, chunk_size)
        return _info(k, r)
    stream = encrypt_stream(src, key=k, chunk_size=chunk_size, iv=v)
    _write_all(stream, dst)
    return stream.info


def _decrypt_verified_chunks(
    source: Source,
    key: bytes,
    digest: bytes | None,
    size: int,
    incremental_mac: bytes,
    chunk_size: int,
    blob_len: int | None,
) -> Iterator[bytes]:
    dec = _native.AttachmentDecryptor(key, size, digest, incremental_mac, chunk_size, blob_len)
    # Feed at most one chunk per call, so every verified chunk is yielded before a later
    # chunk's failure raises.
    for piece in _chunks(source, max(CHUNK // chunk_size, 1) * chunk_size):
        for off in range(0, len(piece), chunk_size):
            out = dec.update(piece if len(piece) <= chunk_size else piece[off : off + chunk_size])
            if out:
                yield out
    out = dec.finalize()
    if out:
        yield out


def _via_tempfile(
    source: Source, decrypt_path: Callable[[str, str], object], dst: Sink | None
) -> Iterator[bytes]:
    """Runs a path-to-path decryption (which verifies everything before the output appears)
    and streams or copies its output."""
    with tempfile.TemporaryDirectory(prefix="textsecure-") as tmp:
        if isinstance(source, _PATH):
            src_path = os.fspath(source)
        else:
            src_path = os.path.join(tmp, "blob")
            _write_all(_chunks(source), src_path)
        out_path = os.path.join(tmp, "plain")
        decrypt_path(src_path, out_path)
        with open(out_path, "rb") as f:
            if dst is not None:
                if isinstance(dst, _PATH):
                    shutil.copyfile(out_path, dst)
                else:
                    shutil.copyfileobj(f, dst, CHUNK)
                return
            yield from _read_chunks(f, CHUNK)


def decrypt_stream(
    source: Source,
    *,
    key: BytesLike,
    digest: BytesLike | None,
    size: int,
    incremental_mac: BytesLike | None = None,
    chunk_size: int | None = None,
) -> Iterator[bytes]:
    """Decrypts from bytes, a path, a binary file or an iterable of chunks, lazily.

    With ``incremental_mac`` and ``chunk_size``, plaintext is yielded chunk by chunk as soon as
    each chunk's incremental MAC verified, and nothing of a chunk that failed is ever yielded;
    the MAC and digest of the whole blob are checked at the end (the iterator then raises).
    Without an incremental MAC the blob is verified completely (through a temporary file)
    before the first byte is yielded.
    """
    k = _check_key(key, KEY_SIZE, "key")
    d = _opt_b(digest)
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    if (incremental_mac is None) != (chunk_size is None):
        raise InvalidArgument("incremental_mac and chunk_size go together")
    if incremental_mac is not None and chunk_size is not None:
        return _decrypt_verified_chunks(
            source, k, d, size, _b(incremental_mac), chunk_size, _known_size(source)
        )

    def run(src: str, out: str) -> None:
        _native.attachment_decrypt_file(src, out, k, d, size)

    return _via_tempfile(source, run, None)


def decrypt_file(
    src: Source,
    dst: Sink,
    *,
    key: BytesLike,
    digest: BytesLike | None,
    size: int,
    incremental_mac: BytesLike | None = None,
    chunk_size: int | None = None,
) -> None:
    """Decrypts ``src`` into ``dst`` (path or file).

    A path destination appears (atomically, by rename) only after every check passed; a file
    object destination receives nothing unless every check passed.
    """
    k = _check_key(key, KEY_SIZE, "key")
    d = _opt_b(digest)
    if size < 0:
        raise InvalidArgument("size must be non-negative")
    inc = _opt_b(incremental_mac)
    if isinstance(src, _PATH) and isinstance(dst, _PATH):
        _native.attachment_decrypt_file(_fs(src), _fs(dst), k, d, size, inc, chunk_size)
        return

    def run(s: str, o: str) -> None:
        _native.attachment_decrypt_file(s, o, k, d, size, inc, chunk_size)

    for _ in _via_tempfile(src, run, dst):
        pass


# --- WhatsApp media -----------------------------------------------------------------------


class MediaKeys(NamedTuple):
    """The 112-byte HKDF expansion of a WhatsApp media key, split."""

    iv: bytes
    cipher_key: bytes
    mac_key: bytes
    ref_key: bytes


def whatsapp_hkdf_info(media_type: str) -> str:
    """The HKDF info of a Baileys media type, e.g. ``"WhatsApp Image Keys"``."""
    return _native.whatsapp_hkdf_info(media_type)


def whatsapp_media_keys(media_key: BytesLike, media_type: str) -> MediaKeys:
    """HKDF-SHA256(media_key, no salt, ``WhatsApp <Type> Keys``, 112 bytes), split."""
    k = _check_key(media_key, MEDIA_KEY_SIZE, "media_key")
    return MediaKeys(*_native.whatsapp_media_keys(k, media_type))


@dataclass(frozen=True)
class WhatsAppMediaInfo:
    """What goes into a WhatsApp media message (besides the upload path)."""

    media_key: bytes = field(repr=False)
    media_type: str
    file_sha256: bytes
    file_enc_sha256: bytes
    file_length: int


@dataclass(frozen=True)
class WhatsAppMedia(WhatsAppMediaInfo):
    """Encrypted WhatsApp media held in memory: ``blob`` = ciphertext ‖ 10-byte MAC."""

    blob: bytes = field(repr=False, default=b"")


def _media_key(media_key: BytesLike | None) -> bytes:
    if media_key is None:
        return secrets.token_bytes(MEDIA_KEY_SIZE)
    return _check_key(media_key, MEDIA_KEY_SIZE, "media_key")


def encrypt_whatsapp(
    data: BytesLike,
    media_type: str,
    *,
    media_key: BytesLike | None = None,
    threads: int | None = None,
) -> WhatsAppMedia:
    """Encrypts WhatsApp media (random media key unless given); ``threads`` as for
    :func:`encrypt`."""
    mk = _media_key(media_key)
    blob, (sha, enc_sha, n) = _native.whatsapp_encrypt(_b(data), media_type, mk, _threads(threads))
    return WhatsAppMedia(mk, media_type, sha, enc_sha, n, blob)


def decrypt_whatsapp(
    blob: BytesLike,
    media_type: str,
    media_key: BytesLike,
    *,
    file_sha256: BytesLike | None = None,
    file_enc_sha256: BytesLike | None = None,
    threads: int | None = None,
) -> bytes:
    """Decrypts WhatsApp media; checks the MAC, and the hashes when given; ``threads`` as for
    :func:`encrypt`."""
    return _native.whatsapp_decrypt(
        _b(blob),
        media_type,
        _check_key(media_key, MEDIA_KEY_SIZE, "media_key"),
        _opt_b(file_sha256),
        _opt_b(file_enc_sha256),
        _threads(threads),
    )


def encrypt_whatsapp_stream(
    source: Source, media_type: str, *, media_key: BytesLike | None = None
) -> Generator[bytes, None, WhatsAppMediaInfo]:
    """Encrypts lazily; the generator's return value (``StopIteration.value``) is the
    :class:`WhatsAppMediaInfo`. Use :func:`encrypt_whatsapp_file` to get it directly."""
    mk = _media_key(media_key)
    enc = _native.WhatsAppMediaEncryptor(mk, media_type)
    return _wa_enc_gen(enc, source, mk, media_type)


def _wa_enc_gen(
    enc: _native.WhatsAppMediaEncryptor, source: Source, mk: bytes, media_type: str
) -> Generator[bytes, None, WhatsAppMediaInfo]:
    for piece in _chunks(source):
        out = enc.update(piece)
        if out:
            yield out
    tail, (sha, enc_sha, n) = enc.finalize()
    yield tail
    return WhatsAppMediaInfo(mk, media_type, sha, enc_sha, n)


def encrypt_whatsapp_file(
    src: Source, dst: Sink, media_type: str, *, media_key: BytesLike | None = None
) -> WhatsAppMediaInfo:
    """Encrypts ``src`` into ``dst`` (path to path runs entirely in Rust)."""
    mk = _media_key(media_key)
    if isinstance(src, _PATH) and isinstance(dst, _PATH):
        sha, enc_sha, n = _native.whatsapp_encrypt_file(_fs(src), _fs(dst), media_type, mk)
        return WhatsAppMediaInfo(mk, media_type, sha, enc_sha, n)
    gen = encrypt_whatsapp_stream(src, media_type, media_key=mk)
    out: IO[bytes]
    with open(dst, "wb") if isinstance(dst, _PATH) else _nullctx(dst) as out:
        while True:
            try:
                out.write(next(gen))
            except StopIteration as stop:
                info: WhatsAppMediaInfo = stop.value
                return info


def decrypt_whatsapp_file(
    src: Source,
    dst: Sink,
    media_type: str,
    media_key: BytesLike,
    *,
    file_sha256: BytesLike | None = None,
    file_enc_sha256: BytesLike | None = None,
) -> int:
    """Decrypts ``src`` into ``dst``; nothing reaches ``dst`` unless the MAC and the given
    hashes check. Returns the plaintext length."""
    mk = _check_key(media_key, MEDIA_KEY_SIZE, "media_key")
    sha, enc_sha = _opt_b(file_sha256), _opt_b(file_enc_sha256)
    if isinstance(src, _PATH) and isinstance(dst, _PATH):
        return _native.whatsapp_decrypt_file(_fs(src), _fs(dst), media_type, mk, sha, enc_sha)
    lengths: list[int] = []

    def run(s: str, o: str) -> None:
        lengths.append(_native.whatsapp_decrypt_file(s, o, media_type, mk, sha, enc_sha))

    for _ in _via_tempfile(src, run, dst):
        pass
    return lengths[0]


def decrypt_whatsapp_stream(
    source: Source,
    media_type: str,
    media_key: BytesLike,
    *,
    file_sha256: BytesLike | None = None,
    file_enc_sha256: BytesLike | None = None,
) -> Iterator[bytes]:
    """Decrypts lazily. WhatsApp media has no incremental MAC, so the whole file is verified
    (through a temporary file) before the first plaintext byte is yielded."""
    mk = _check_key(media_key, MEDIA_KEY_SIZE, "media_key")
    sha, enc_sha = _opt_b(file_sha256), _opt_b(file_enc_sha256)

    def run(s: str, o: str) -> None:
        _native.whatsapp_decrypt_file(s, o, media_type, mk, sha, enc_sha)

    return _via_tempfile(source, run, None)
