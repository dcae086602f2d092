//! A durable store that fails the way real ones do, for the unit-of-work fuzzer
//! (`conversation_uow`): every operation runs as the stores run it (load a
//! [`Snapshot`](textsecure_core::uow::Snapshot) of the operation's needs, [`plan`], commit the
//! [`ChangeSet`] with compare-and-swap, load and plan again after a conflict), over an
//! [`InMemoryStore`], with one injected [`Fault`] per operation:
//!
//! * [`Fault::CommitFails`]: the commit fails (the transaction rolls back): nothing is written
//!   and the caller gets an error; it may retry;
//! * [`Fault::DropAfterCommit`]: the connection drops after the commit, before the caller hears
//!   of it: everything is written, the caller gets an error (the output is kept for the
//!   harness, which sees past the connection, but the caller never has it);
//! * [`Fault::LostRaceTouch`]: another writer rewrites, unchanged, every versioned record the
//!   operation read between its load and its commit (a session or sender-key row updated by
//!   another process): the stale change set must be refused ([`Conflict`]) and write nothing;
//!   the retry loop loads again;
//! * [`Fault::LostRaceRival`]: another worker runs the same operation between our load and
//!   our commit (a message picked up twice, e.g. redelivered while the first worker ran): if
//!   the rival wrote anything, our stale change set must conflict and write nothing, and our
//!   retry then runs after the rival's effects.
//!
//! Store-level invariants are checked here (a violation panics): a plan writes nothing; a
//! commit refused as a conflict leaves the store byte-for-byte and version-for-version as it
//! was; a change set read before another writer changed one of its versioned records is never
//! applied; a commit nobody raced is never refused.

use textsecure_core::store::{Address, InMemoryStore};
use textsecure_core::uow::{plan, ChangeSet, Conflict, Operation, Output};
use textsecure_core::Error;

use super::support::snapshot;

/// What goes wrong with one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The commit fails: nothing written.
    CommitFails,
    /// The connection drops after the commit: written, the caller not told.
    DropAfterCommit,
    /// Another writer rewrites the records read (unchanged) before our commit.
    LostRaceTouch,
    /// Another worker runs the same operation before our commit.
    LostRaceRival,
}

impl Fault {
    /// A fault from a schedule byte: half the operations run clean.
    pub fn from_byte(b: u8) -> Self {
        match b % 12 {
            0..=5 => Fault::None,
            6 | 7 => Fault::CommitFails,
            8 | 9 => Fault::DropAfterCommit,
            10 => Fault::LostRaceTouch,
            _ => Fault::LostRaceRival,
        }
    }
}

/// Why an operation did not hand its output to the caller.
#[derive(Debug)]
pub enum Failure {
    /// The plan failed (the protocol refused): nothing to commit, nothing written.
    Refused(Error),
    /// The commit failed: nothing written.
    CommitFailed,
    /// The connection dropped after the commit: written; the output the caller never saw.
    Dropped(Box<Output>),
}

/// The outcome of [`FlakyStore::execute`].
#[derive(Debug)]
pub struct Attempt {
    /// What the caller gets.
    pub result: Result<Output, Failure>,
    /// The rival worker's outcome ([`Fault::LostRaceRival`]).
    pub rival: Option<Result<Output, Error>>,
    /// Conflicts the retry loop went through.
    pub conflicts: u32,
}

/// Counts of the faults injected.
#[derive(Clone, Debug, Default)]
pub struct FlakyStats {
    /// Operations run.
    pub operations: u64,
    /// Commits that failed (nothing written).
    pub commit_failures: u64,
    /// Connections dropped after a commit.
    pub dropped_after_commit: u64,
    /// Stale change sets refused.
    pub conflicts: u64,
    /// Rival workers that ran the same operation first.
    pub rivals: u64,
}

impl FlakyStats {
    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &FlakyStats) {
        self.operations += o.operations;
        self.commit_failures += o.commit_failures;
        self.dropped_after_commit += o.dropped_after_commit;
        self.conflicts += o.conflicts;
        self.rivals += o.rivals;
    }
}

/// An [`InMemoryStore`] behind the unit-of-work path, with injected failures.
pub struct FlakyStore {
    /// The durable state.
    pub store: InMemoryStore,
    /// What was injected.
    pub stats: FlakyStats,
}

fn violation(what: &str) -> ! {
    panic!("flaky store invariant violated: {what}");
}

/// The versions of every versioned record a change set writes: sessions' directly, sender
/// keys' through a snapshot's `Debug` form (it shows each record's version; records show no
/// secrets in `Debug`).
fn versions(store: &InMemoryStore, changes: &ChangeSet) -> (Vec<u64>, String) {
    let v: Vec<u64> = changes
        .sessions
        .iter()
        .map(|(a, _, _)| store.session_version(a))
        .collect();
    let needs = textsecure_core::uow::Needs {
        sender_keys: changes
            .sender_keys
            .iter()
            .map(|(s, d, _, _)| (s.clone(), d.clone()))
            .collect(),
        ..Default::default()
    };
    (v, format!("{:?}", store.snapshot(&needs)))
}

fn writes_versioned(changes: &ChangeSet) -> bool {
    !changes.sessions.is_empty() || !changes.sender_keys.is_empty()
}

impl FlakyStore {
    /// A flaky store over `store`.
    pub fn new(store: InMemoryStore) -> Self {
        Self {
            store,
            stats: FlakyStats::default(),
        }
    }

    /// The plan of `op` against the current state; checks that planning wrote nothing.
    fn plan_now(&self, op: &Operation) -> Result<(Output, ChangeSet), Error> {
        let needs = op.needs()?;
        let before = snapshot(&self.store);
        let snap = self.store.snapshot(&needs);
        let r = plan(op, &snap);
        if snapshot(&self.store) != before {
            violation("planning changed the store");
        }
        r
    }

    /// `op` with no fault: load, plan, commit, again after a conflict. Returns the output and
    /// whether it wrote a versioned record.
    fn run_clean(&mut self, op: &Operation) -> (Result<Output, Error>, bool) {
        let (out, changes) = match self.plan_now(op) {
            Ok(x) => x,
            Err(e) => return (Err(e), false),
        };
        let versioned = writes_versioned(&changes);
        match self.store.apply(changes) {
            Ok(()) => (Ok(out), versioned),
            Err(Conflict) => violation("a commit nobody raced was refused"),
        }
    }

    /// Another writer rewrites every versioned record `changes` read, unchanged (records
    /// absent then are created and removed again): their versions move on, their bytes do not.
    fn touch(&mut self, changes: &ChangeSet) {
        for (a, _, _) in &changes.sessions {
            match self.store.sessions.get(a).cloned() {
                Some(r) => self.store.put_session(a, r),
                None => {
                    self.store.put_session(a, Default::default());
                    self.store.delete_session(a);
                }
            }
        }
        for (s, d, _, _) in &changes.sender_keys {
            let key: (Address, _) = (s.clone(), d.clone());
            match self.store.sender_keys.get(&key).cloned() {
                Some(r) => self.store.put_sender_key(key, r),
                None => {
                    self.store.put_sender_key(key.clone(), Default::default());
                    self.store.delete_sender_key(&key);
                }
            }
        }
    }

    /// Runs `op` the way a durable store does, with `fault` injected into its first commit.
    pub fn execute(&mut self, op: &Operation, fault: Fault) -> Attempt {
        self.stats.operations += 1;
        let mut fault = fault;
        let mut rival = None;
        let mut conflicts = 0;
        // Two rounds at most: a raced first commit, then the clean retry.
        for _ in 0..3 {
            let (out, changes) = match self.plan_now(op) {
                Ok(x) => x,
                Err(e) => {
                    return Attempt {
                        result: Err(Failure::Refused(e)),
                        rival,
                        conflicts,
                    }
                }
            };
            match fault {
                Fault::None => match self.store.apply(changes) {
                    Ok(()) => {
                        return Attempt {
                            result: Ok(out),
                            rival,
                            conflicts,
                        }
                    }
                    Err(Conflict) => violation("a commit nobody raced was refused"),
                },
                Fault::CommitFails => {
                    self.stats.commit_failures += 1;
                    drop((out, changes));
                    return Attempt {
                        result: Err(Failure::CommitFailed),
                        rival,
                        conflicts,
                    };
                }
                Fault::DropAfterCommit => {
                    if self.store.apply(changes).is_err() {
                        violation("a commit nobody raced was refused");
                    }
                    self.stats.dropped_after_commit += 1;
                    return Attempt {
                        result: Err(Failure::Dropped(Box::new(out))),
                        rival,
                        conflicts,
                    };
                }
                Fault::LostRaceTouch | Fault::LostRaceRival => {
                    let interloper_wrote = if fault == Fault::LostRaceTouch {
                        self.touch(&changes);
                        writes_versioned(&changes)
                    } else {
                        self.stats.rivals += 1;
                        let (r, wrote) = self.run_clean(op);
                        rival = Some(r);
                        wrote
                    };
                    let stale_writes_versioned = writes_versioned(&changes);
                    let before = snapshot(&self.store);
                    let before_versions = versions(&self.store, &changes);
                    match self.store.apply(changes.clone()) {
                        Err(Conflict) => {
                            if snapshot(&self.store) != before
                                || versions(&self.store, &changes) != before_versions
                            {
                                violation("a refused (conflicting) commit wrote something");
                            }
                            if !interloper_wrote && fault == Fault::LostRaceTouch {
                                violation("a commit was refused though nothing it read changed");
                            }
                            self.stats.conflicts += 1;
                            conflicts += 1;
                            fault = Fault::None;
                        }
                        Ok(()) => {
                            if interloper_wrote && stale_writes_versioned {
                                violation("a stale change set was applied over another writer's");
                            }
                            return Attempt {
                                result: Ok(out),
                                rival,
                                conflicts,
                            };
                        }
                    }
                }
            }
        }
        violation("the retry loop did not finish")
    }
}
