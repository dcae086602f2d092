"""The tutorial's echo bot (docs/tutorial.md), runnable as it stands.

``python docs/tutorial_bot.py [DIR]`` runs the whole story in DIR (a temporary directory by
default); ``tests/test_docs_examples.py`` runs it on every ``make test``. A dictionary plays
the Signal server: it keeps the public prekeys the bot uploads, hands a bundle out once per
one-time prekey and carries envelopes (message type and bytes) between the parties.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import textsecure as ts

BOT = ts.Address("echo-bot", 1)
ALICE = ts.Address("alice", 1)
CAROL = ts.Address("carol", 1)


# --- a stand-in for the server ----------------------------------------------------------------


@dataclass
class Server:
    """Public keys and queued envelopes; everything in it is public or encrypted."""

    identity: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    signed_prekey: dict[str, ts.stores.UploadKey] = field(default_factory=dict)
    last_resort_kyber: dict[str, ts.stores.UploadKey] = field(default_factory=dict)
    prekeys: dict[str, list[ts.stores.UploadKey]] = field(default_factory=dict)
    kyber_prekeys: dict[str, list[ts.stores.UploadKey]] = field(default_factory=dict)
    queues: dict[ts.Address, list[tuple[ts.Address, int, bytes]]] = field(default_factory=dict)

    def register(self, name: str, identity_key: ts.IdentityKey, registration_id: int) -> None:
        self.identity[name] = (bytes(identity_key), registration_id)

    def count(self, name: str) -> int:
        return len(self.prekeys.get(name, []))

    def upload(self, name: str, upload: ts.PreKeyUpload) -> None:
        if upload.signed_prekey is not None:
            self.signed_prekey[name] = upload.signed_prekey
        if upload.last_resort_kyber_prekey is not None:
            self.last_resort_kyber[name] = upload.last_resort_kyber_prekey
        self.prekeys.setdefault(name, []).extend(upload.prekeys)
        self.kyber_prekeys.setdefault(name, []).extend(upload.kyber_prekeys)

    def bundle(self, name: str, device_id: int) -> ts.PreKeyBundle:
        """Hands out (and uses up) one one-time EC and one one-time Kyber prekey."""
        identity_key, registration_id = self.identity[name]
        signed = self.signed_prekey[name]
        assert signed.signature is not None  # a signed prekey always has one
        one_time = self.prekeys[name].pop(0) if self.prekeys[name] else None
        kyber_queue = self.kyber_prekeys[name]
        kyber = kyber_queue.pop(0) if kyber_queue else self.last_resort_kyber[name]
        return ts.PreKeyBundle(
            registration_id=registration_id,
            device_id=device_id,
            identity_key=identity_key,
            signed_prekey_id=signed.id,
            signed_prekey_public=signed.public_key,
            signed_prekey_signature=signed.signature,
            prekey_id=None if one_time is None else one_time.id,
            prekey_public=None if one_time is None else one_time.public_key,
            kyber_prekey_id=kyber.id,
            kyber_prekey_public=kyber.public_key,
            kyber_prekey_signature=kyber.signature,
        )

    def send(self, sender: ts.Address, to: ts.Address, message: object) -> None:
        assert isinstance(message, ts.SignalMessage | ts.PreKeySignalMessage)
        self.queues.setdefault(to, []).append((sender, int(message.type), bytes(message)))

    def receive(self, who: ts.Address) -> list[tuple[ts.Address, int, bytes]]:
        return self.queues.pop(who, [])


# --- 1. the account and its prekeys -------------------------------------------------------------


# [account]
def open_bot(db: Path) -> ts.SQLiteStore:
    """Opens (the first time: creates) the bot's account in the SQLite file."""
    store = ts.SQLiteStore(db, account="echo-bot")  # identity generated on first open
    with store.transaction() as tx:  # the bot's own table, in the same database
        tx.connection.execute(
            "CREATE TABLE IF NOT EXISTS echo_log (sender TEXT, body BLOB, reply BLOB)"
        )
    return store


# [account-end]


# [prekeys]
def maintain_prekeys(store: ts.SQLiteStore, server: Server) -> None:
    """Run at start-up and then periodically (e.g. daily): refill and rotate."""
    upload = store.refill_prekeys(server_count=server.count("echo-bot"))
    if upload is not None:  # fewer than 10 left on the server: a batch of 100
        server.upload("echo-bot", upload)  # the public halves only
        store.confirm_upload(upload)  # only now may they appear in a bundle
    rotated = store.rotate_signed_prekeys()  # every 2 days: signed + last-resort Kyber
    if rotated is not None:
        server.upload("echo-bot", rotated)
        store.confirm_upload(rotated)


# [prekeys-end]


# --- 2. receiving and answering, exactly once ----------------------------------------------------


# [handle]
def handle(
    store: ts.SQLiteStore, server: Server, sender: ts.Address, kind: int, body: bytes
) -> None:
    """Decrypts one envelope, logs it and encrypts the answer in ONE transaction."""
    cipher = ts.SessionCipher(store, sender)
    try:
        with store.transaction() as tx:
            text = cipher.decrypt((kind, body))  # the ratchet moves...
            reply = cipher.encrypt(b"echo: " + text)  # ...twice...
            tx.connection.execute(  # ...and the log row commits with both moves
                "INSERT INTO echo_log VALUES (?, ?, ?)", (str(sender), text, bytes(reply))
            )
    except ts.errors.DuplicateMessage:
        return  # a redelivery of an envelope already handled: nothing changed
    except ts.errors.UntrustedIdentity:
        return  # the contact reinstalled: ask a human, then store.trust(sender, key)
    server.send(BOT, sender, reply)  # after the commit (a crash before: resend from the log)


# [handle-end]


def run(directory: Path) -> list[bytes]:
    """The whole story; returns what Alice read."""
    server = Server()
    db = directory / "bot.db"

    # [start]
    bot = open_bot(db)
    server.register("echo-bot", bot.identity_key_pair.public_key, bot.registration_id)
    maintain_prekeys(bot, server)
    counts = bot.prekey_counts()
    assert counts.prekeys == 100 and counts.unconfirmed_prekeys == 0
    # [start-end]

    # [alice]
    # Alice is a client with her own account in another file (any store would do).
    alice = ts.SQLiteStore(directory / "alice.db", account="alice")
    to_bot = ts.SessionCipher(alice, BOT)
    to_bot.process_bundle(server.bundle("echo-bot", BOT.device_id))  # PQXDH
    server.send(ALICE, BOT, to_bot.encrypt(b"hello bot"))
    server.send(ALICE, BOT, to_bot.encrypt(b"are you there?"))
    # [alice-end]

    # [serve]
    for sender, kind, body in server.receive(BOT):
        handle(bot, server, sender, kind, body)
    read = [to_bot.decrypt((kind, body)) for _, kind, body in server.receive(ALICE)]
    assert read == [b"echo: hello bot", b"echo: are you there?"]
    # [serve-end]

    # [restart]
    bot.close()  # the process ends (or crashes: every commit is durable)
    server.send(ALICE, BOT, to_bot.encrypt(b"still there?"))

    bot = open_bot(db)  # a new process: the same identity, sessions and prekeys
    maintain_prekeys(bot, server)  # nothing to do: enough keys, nothing to rotate
    for sender, kind, body in server.receive(BOT):
        handle(bot, server, sender, kind, body)
    read += [to_bot.decrypt((kind, body)) for _, kind, body in server.receive(ALICE)]
    assert read[-1] == b"echo: still there?"
    # [restart-end]

    # [inbox]
    # The inbox: for applications that cannot share the store's connection.
    server.send(ALICE, BOT, to_bot.encrypt(b"via the inbox"))
    (sender, kind, body) = server.receive(BOT)[0]
    item = bot.inbox_decrypt(sender, ts.parse_message(kind, body))  # stored with the ratchet
    assert bot.inbox_decrypt(sender, ts.parse_message(kind, body)) == item  # redelivered
    assert bot.inbox_pending() == [item]  # after a crash: process these first
    bot.inbox_ack(item.hash)  # done with it
    assert bot.inbox_pending() == []
    # [inbox-end]

    # [current-bundle]
    # In tests, current_bundle() is the bundle a server would hand out for this store.
    carol = ts.SQLiteStore(directory / "alice.db", account="carol")  # a second account
    carol_to_bot = ts.SessionCipher(carol, BOT)
    carol_to_bot.process_bundle(bot.current_bundle(device_id=BOT.device_id))
    first = carol_to_bot.encrypt(b"hi, I'm carol")
    handle(bot, server, CAROL, int(first.type), bytes(first))
    (_, kind, body) = server.receive(CAROL)[0]
    assert carol_to_bot.decrypt((kind, body)) == b"echo: hi, I'm carol"
    # [current-bundle-end]

    for store in (bot, alice, carol):
        store.close()
    with closing(sqlite3.connect(db)) as conn:
        logged = conn.execute("SELECT count(*) FROM echo_log").fetchone()[0]
    assert logged == 4
    return read


def main() -> None:
    if len(sys.argv) > 1:
        directory = Path(sys.argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        print(*run(directory), sep="\n")
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(*run(Path(tmp)), sep="\n")


if __name__ == "__main__":
    main()
