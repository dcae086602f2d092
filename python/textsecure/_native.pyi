# Hand-written stubs for the compiled module textsecure._native (checked by mypy.stubtest).
# Users import from `textsecure`, never from `textsecure._native`.

__version__: str

# --- core: keys, records, sessions (owned by the core) ---

# --- hazmat: primitives exposed for cross-checking ---

# --- attachments ---
# Signal attachments
def attachment_padded_size(size: int) -> int: ...
def attachment_blob_len(size: int) -> int: ...
def attachment_chunk_size(size: int) -> int: ...
def incremental_chunk_size(data_size: int) -> int: ...
def incremental_mac(key: bytes, data: bytes, chunk_size: int) -> bytes: ...

_SignalInfo = tuple[bytes, bytes, int, int, int]  # digest, incremental_mac, chunk, size, blob_len

def attachment_encrypt(
    data: bytes, key: bytes, iv: bytes, chunk_size: int | None = None
) -> tuple[bytes, _SignalInfo]: ...
def attachment_decrypt(
    blob: bytes,
    key: bytes,
    digest: bytes | None,
    size: int,
    incremental_mac: bytes | None = None,
    chunk_size: int | None = None,
) -> bytes: ...
def attachment_encrypt_file(
    src: str,
    dst: str,
    key: bytes,
    iv: bytes,
    chunk_size: int | None = None,
) -> _SignalInfo: ...
def attachment_decrypt_file(
    src: str,
    dst: str,
    key: bytes,
    digest: bytes | None,
    size: int,
    incremental_mac: bytes | None = None,
    chunk_size: int | None = None,
) -> None: ...

class AttachmentEncryptor:
    def __new__(cls, key: bytes, iv: bytes, chunk_size: int) -> AttachmentEncryptor: ...
    def update(self, data: bytes) -> bytes: ...
    def pad(self, max: int) -> tuple[bytes, bool]: ...
    def finalize(self) -> tuple[bytes, _SignalInfo]: ...

class AttachmentDecryptor:
    def __new__(
        cls,
        key: bytes,
        size: int,
        digest: bytes | None,
        incremental_mac: bytes | None = None,
        chunk_size: int | None = None,
        blob_len: int | None = None,
    ) -> AttachmentDecryptor: ...
    def update(self, data: bytes) -> bytes: ...
    def finalize(self) -> bytes: ...

# WhatsApp media
_WaInfo = tuple[bytes, bytes, int]  # file_sha256, file_enc_sha256, file_length

def whatsapp_media_types() -> list[str]: ...
def whatsapp_hkdf_info(media_type: str) -> str: ...
def whatsapp_media_keys(media_key: bytes, media_type: str) -> tuple[bytes, bytes, bytes, bytes]: ...
def whatsapp_encrypt(data: bytes, media_type: str, media_key: bytes) -> tuple[bytes, _WaInfo]: ...
def whatsapp_decrypt(
    blob: bytes,
    media_type: str,
    media_key: bytes,
    file_sha256: bytes | None = None,
    file_enc_sha256: bytes | None = None,
) -> bytes: ...
def whatsapp_encrypt_file(src: str, dst: str, media_type: str, media_key: bytes) -> _WaInfo: ...
def whatsapp_decrypt_file(
    src: str,
    dst: str,
    media_type: str,
    media_key: bytes,
    file_sha256: bytes | None = None,
    file_enc_sha256: bytes | None = None,
) -> int: ...

class WhatsAppMediaEncryptor:
    def __new__(cls, media_key: bytes, media_type: str) -> WhatsAppMediaEncryptor: ...
    def update(self, data: bytes) -> bytes: ...
    def finalize(self) -> tuple[bytes, _WaInfo]: ...

class WhatsAppMediaDecryptor:
    def __new__(
        cls,
        media_key: bytes,
        media_type: str,
        file_sha256: bytes | None = None,
        file_enc_sha256: bytes | None = None,
        enc_len: int | None = None,
    ) -> WhatsAppMediaDecryptor: ...
    def update(self, data: bytes) -> bytes: ...
    def finalize(self) -> tuple[bytes, int]: ...
