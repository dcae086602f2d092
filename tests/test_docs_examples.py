"""The documentation's code runs: the tutorial bot, the quick start and the import examples
(docs/tutorial_bot.py, docs/examples/*.py, shown in the site with literalinclude), and every
``textsecure.X`` that docs/API.md names exists."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import textsecure as ts
from support import REPO_ROOT

DOCS = REPO_ROOT / "docs"


def _load(path: Path) -> ModuleType:
    name = "docs_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_tutorial_bot(tmp_path: Path) -> None:
    bot = _load(DOCS / "tutorial_bot.py")
    read = bot.run(tmp_path)
    assert read == [b"echo: hello bot", b"echo: are you there?", b"echo: still there?"]


def test_quickstart() -> None:
    _load(DOCS / "examples" / "quickstart.py").main()


def _conversation() -> tuple[ts.MemoryStore, ts.MemoryStore, ts.SessionCipher]:
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 11)
    bob = ts.MemoryStore(ts.IdentityKeyPair.generate(), 22)
    to_bob = ts.SessionCipher(alice, ts.Address("bob", 1))
    to_bob.process_bundle(bob.new_bundle(1, prekey_id=5, signed_prekey_id=6, kyber=False))
    first = to_bob.encrypt(b"one")
    assert ts.SessionCipher(bob, ts.Address("alice", 1)).decrypt(first) == b"one"
    return alice, bob, to_bob


def test_import_libsignal_records(tmp_path: Path) -> None:
    ex = _load(DOCS / "examples" / "import_records.py")
    _alice, bob, to_bob = _conversation()
    bob.save_prekey(ts.PreKeyRecord.generate(7))
    bob.save_kyber_prekey(ts.KyberPreKeyRecord.generate(8, bob.identity_key_pair))
    session = bob.session(ts.Address("alice", 1))
    identity = bob.identity(ts.Address("alice", 1))
    prekey, signed, kyber = bob.load_prekey(7), bob.load_signed_prekey(6), bob.load_kyber_prekey(8)
    assert session is not None and identity is not None
    assert prekey is not None and signed is not None and kyber is not None
    old = ex.Exported(
        identity_key_pair=bytes(bob.identity_key_pair),
        registration_id=bob.registration_id,
        sessions={("alice", 1): bytes(session)},
        identities={("alice", 1): bytes(identity)},
        prekeys=[bytes(prekey)],
        signed_prekeys=[bytes(signed)],
        kyber_prekeys=[(bytes(kyber), True)],
    )
    path = str(tmp_path / "imported.db")
    ex.import_account(path, "bob", old, key=bytes(range(32)))
    with ts.SQLiteStore(path, account="bob", key=bytes(range(32))) as store:
        assert store.identity_key_pair.public_key == bob.identity_key_pair.public_key
        assert store.load_prekey(7) is not None and store.load_kyber_prekey(8) is not None
        from_alice = ts.SessionCipher(store, ts.Address("alice", 1))
        assert from_alice.decrypt(to_bob.encrypt(b"two")) == b"two"
        assert to_bob.decrypt(from_alice.encrypt(b"three")) == b"three"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # python-axolotl's protobuf 3 code
def test_import_python_axolotl_store(tmp_path: Path) -> None:
    pytest.importorskip("axolotl", reason="python-axolotl (tests/interop/requirements.txt)")
    from axolotl.state.sessionrecord import SessionRecord as AxolotlSessionRecord
    from axolotl.tests.inmemoryaxolotlstore import InMemoryAxolotlStore
    from axolotl.util.keyhelper import KeyHelper

    ex = _load(DOCS / "examples" / "import_records.py")
    old_store = InMemoryAxolotlStore()  # generates an identity and a registration id
    for record in KeyHelper.generatePreKeys(100, 3):
        old_store.storePreKey(record.getId(), record)
    signed = KeyHelper.generateSignedPreKey(old_store.getIdentityKeyPair(), 9)
    old_store.storeSignedPreKey(9, signed)
    # a v3 session with alice, as python-axolotl keeps it (the same RecordStructure bytes)
    alice = ts.MemoryStore(ts.IdentityKeyPair.generate(), 11)
    bob = ts.MemoryStore(
        ts.IdentityKeyPair.from_bytes(old_store.getIdentityKeyPair().serialize()),
        old_store.getLocalRegistrationId(),
    )
    to_bob = ts.SessionCipher(alice, ts.Address("bob", 1))
    to_bob.process_bundle(bob.new_bundle(1, prekey_id=5, signed_prekey_id=6, kyber=False))
    ts.SessionCipher(bob, ts.Address("alice", 1)).decrypt(to_bob.encrypt(b"one"))
    session = bob.session(ts.Address("alice", 1))
    assert session is not None
    old_store.storeSession("alice", 1, AxolotlSessionRecord(serialized=bytes(session)))

    old = ex.export_axolotl(old_store, contacts=["alice"], prekey_ids=range(90, 110))
    assert len(old.prekeys) == 3 and len(old.signed_prekeys) == 1
    path = str(tmp_path / "from_axolotl.db")
    ex.import_account(path, "bob", old)
    with ts.SQLiteStore(path, account="bob") as store:
        from_alice = ts.SessionCipher(store, ts.Address("alice", 1))
        assert from_alice.decrypt(to_bob.encrypt(b"two")) == b"two"
        # a new contact starts a session on the imported prekeys
        spk = store.load_signed_prekey(9)
        otk = store.load_prekey(100)
        assert spk is not None and otk is not None
        carol = ts.MemoryStore(ts.IdentityKeyPair.generate(), 33)
        to_store = ts.SessionCipher(carol, ts.Address("bob", 1))
        to_store.process_bundle(
            ts.PreKeyBundle(
                registration_id=store.registration_id,
                device_id=1,
                identity_key=store.identity_key_pair.public_key,
                signed_prekey_id=9,
                signed_prekey_public=spk.public_key,
                signed_prekey_signature=spk.signature,
                prekey_id=100,
                prekey_public=otk.public_key,
            )
        )
        first = to_store.encrypt(b"hi")
        assert ts.SessionCipher(store, ts.Address("carol", 1)).decrypt(first) == b"hi"
        assert store.load_prekey(100) is None  # used up


# -- docs/API.md promises only what exists ----------------------------------------------------

_MODULES = ("errors", "attachments", "stores", "enums", "hazmat", "testing", "_native")


def _api_names() -> set[str]:
    text = (DOCS / "API.md").read_text()
    planned = text.find("## Planned")
    if planned != -1:  # the Planned section names what does not exist yet, on purpose
        end = text.find("\n## ", planned + 1)
        text = text[:planned] + (text[end:] if end != -1 else "")
    names = set(re.findall(r"\btextsecure\.([A-Za-z_][\w.]*)", text))
    # every `Name` / `Name.attr` in backticks that starts with a capital letter is a class
    names |= {m for m in re.findall(r"`([A-Z][A-Za-z]+(?:\.[a-z_]\w*)?)", text)}
    return names


def _resolve(dotted: str) -> object:
    obj: object = ts
    parts = dotted.rstrip(".").split(".")
    for i, part in enumerate(parts):
        if not hasattr(obj, part) and i == 0 and part in _MODULES:
            obj = importlib.import_module(f"textsecure.{part}")
            continue
        if not hasattr(obj, part) and isinstance(obj, ModuleType):
            obj = importlib.import_module(f"{obj.__name__}.{part}")
            continue
        obj = getattr(obj, part)
    return obj


#: names in API.md that are not textsecure's: libsignal's protobuf messages, Python's
_FOREIGN = {"IdentityKeyPairStructure", "RecordStructure", "None", "True", "False"}
_FOREIGN |= {"OverflowError", "ValueError", "TypeError"}
#: placeholders: ``Type.from_bytes`` (any type), the ``PNI:`` prefix
_FOREIGN |= {"Type.from_bytes", "PNI"}


def _find(name: str) -> object:
    """``name`` on ``textsecure``, or on one of its modules (``UntrustedIdentity`` is
    ``textsecure.errors.UntrustedIdentity``)."""
    try:
        return _resolve(name)
    except (AttributeError, ImportError):
        # the units of work are documented as textsecure._native's, for store authors
        for module in ("errors", "enums", "stores", "attachments", "_native"):
            try:
                return _resolve(f"{module}.{name}")
            except (AttributeError, ImportError):
                pass
        raise


def test_every_name_in_api_md_exists() -> None:
    names = _api_names()
    assert {"SessionCipher", "UntrustedIdentity", "stores.StoreBackend"} <= names
    missing = []
    for name in sorted(names - _FOREIGN):
        try:
            _find(name)
        except (AttributeError, ImportError):
            missing.append(name)
    assert missing == [], f"docs/API.md names what textsecure does not have: {missing}"
