# Hand-written stubs for the compiled module textsecure._native (checked by mypy.stubtest).
# Users import from `textsecure`, never from `textsecure._native`.

__version__: str

# --- core: keys, records, sessions (owned by the core) ---

# --- hazmat: primitives exposed for cross-checking ---

# --- attachments ---
