"""Importing an existing libsignal or python-axolotl store (docs/migrating.md).

Both keep libsignal's storage formats, so every record goes through ``from_bytes`` and the
store's ``save_*`` / ``trust`` methods. Run the import once, in one transaction, before the
application starts using the new store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import textsecure as ts


# [export]
@dataclass
class Exported:
    """An account's records as bytes, read from the old store (they are secrets)."""

    identity_key_pair: bytes  # IdentityKeyPairStructure (libsignal / axolotl serialize())
    registration_id: int
    sessions: dict[tuple[str, int], bytes] = field(default_factory=dict)  # RecordStructure
    identities: dict[tuple[str, int], bytes] = field(default_factory=dict)  # 33-byte keys
    prekeys: list[bytes] = field(default_factory=list)  # PreKeyRecordStructure
    signed_prekeys: list[bytes] = field(default_factory=list)  # SignedPreKeyRecordStructure
    kyber_prekeys: list[tuple[bytes, bool]] = field(default_factory=list)  # (record, last resort)
    sender_keys: dict[tuple[str, int, Any], bytes] = field(default_factory=dict)


# [export-end]


# [import]
def import_account(path: str, account: str, old: Exported, *, key: bytes | None = None) -> None:
    """Creates ``account`` in the SQLite file ``path`` from the exported records."""
    identity = ts.IdentityKeyPair.from_bytes(old.identity_key_pair)
    with (
        ts.SQLiteStore(
            path,
            account=account,
            identity=identity,
            registration_id=old.registration_id,
            key=key,  # 32 bytes: encrypt every record at rest
        ) as store,
        store.transaction(),  # all or nothing
    ):
        for data in old.prekeys:
            store.save_prekey(ts.PreKeyRecord.from_bytes(data))
        for data in old.signed_prekeys:
            store.save_signed_prekey(ts.SignedPreKeyRecord.from_bytes(data))
        for data, last_resort in old.kyber_prekeys:
            store.save_kyber_prekey(ts.KyberPreKeyRecord.from_bytes(data), last_resort=last_resort)
        for (name, device), key_bytes in old.identities.items():
            store.trust(ts.Address(name, device), key_bytes)
        for (name, device), data in old.sessions.items():
            store.save_session(ts.Address(name, device), ts.SessionRecord.from_bytes(data))
        for (name, device, distribution), data in old.sender_keys.items():
            record = ts.SenderKeyRecord.from_bytes(data)
            store.save_sender_key(ts.Address(name, device), distribution, record)


# [import-end]


# [axolotl]
def export_axolotl(
    axolotl_store: Any, contacts: Iterable[str], prekey_ids: Iterable[int]
) -> Exported:
    """Reads a python-axolotl ``AxolotlStore`` (yowsup's, or your own): its interface has no
    way to list prekeys or contacts, so pass the ids and names your store's tables hold."""
    old = Exported(
        identity_key_pair=axolotl_store.getIdentityKeyPair().serialize(),
        registration_id=axolotl_store.getLocalRegistrationId(),
    )
    for prekey_id in prekey_ids:
        if axolotl_store.containsPreKey(prekey_id):
            old.prekeys.append(axolotl_store.loadPreKey(prekey_id).serialize())
    for record in axolotl_store.loadSignedPreKeys():
        old.signed_prekeys.append(record.serialize())
    for name in contacts:
        for device in [1, *axolotl_store.getSubDeviceSessions(name)]:
            if axolotl_store.containsSession(name, device):
                session = axolotl_store.loadSession(name, device)
                old.sessions[(name, device)] = session.serialize()
                remote = session.getSessionState().getRemoteIdentityKey()
                if remote is not None:
                    old.identities[(name, device)] = remote.serialize()
    return old


# [axolotl-end]


def identities_by_name(old: Exported) -> Mapping[str, bytes]:
    """Remote identity keys per contact name (python-axolotl keys trust by name only)."""
    return {name: key for (name, _device), key in old.identities.items()}
