//! What this process holds in each app database: the names of the indexes open in it (one
//! handle per index), and the thread inside an hnswdb write transaction on it.
//!
//! redb lets one process open a database file (it locks it), so claims within the process are
//! enough. The second is there because redb's `begin_write` waits for the current write
//! transaction: a thread holding a [`WriteTxn`](crate::WriteTxn) of one index that starts a
//! write on another index of the same database would wait for itself;
//! [`Error::WriteInProgress`] says so instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use redb::{Database, WriteTransaction};

use crate::error::{Error, Location, Result};
use crate::store;

/// A number for the calling thread, unique in the process and never 0.
pub(crate) fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    TAG.with(|tag| *tag)
}

/// A database, by the address of its `Database`. A claim is let go before the handle holding
/// it lets go of the database, so a claim never outlives its database.
type DatabaseId = usize;

#[derive(Default)]
struct DatabaseClaims {
    open: BTreeSet<String>,
    /// The [`thread_tag`] of the thread in an hnswdb write transaction, else 0.
    writer: u64,
}

static CLAIMS: Mutex<Option<HashMap<DatabaseId, DatabaseClaims>>> = Mutex::new(None);

fn with_claims<T>(f: impl FnOnce(&mut HashMap<DatabaseId, DatabaseClaims>) -> T) -> T {
    let mut claims = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
    let claims = claims.get_or_insert_with(HashMap::new);
    let result = f(claims);
    claims.retain(|_, c| !c.open.is_empty() || c.writer != 0);
    result
}

fn id_of(db: &Database) -> DatabaseId {
    db as *const Database as DatabaseId
}

/// The index `name` of a database, held open by one handle (or by `delete_index` while it
/// deletes); let go when dropped.
pub(crate) struct NameClaim {
    db: DatabaseId,
    name: String,
}

impl NameClaim {
    /// Claims `name` in `db`: [`Error::InUse`] if a handle of this process holds it.
    pub(crate) fn take(db: &Database, name: &str) -> Result<NameClaim> {
        with_claims(|claims| {
            let open = &mut claims.entry(id_of(db)).or_default().open;
            if !open.insert(name.to_owned()) {
                return Err(Error::InUse {
                    index: Location::Named(name.to_owned()),
                });
            }
            Ok(NameClaim {
                db: id_of(db),
                name: name.to_owned(),
            })
        })
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        with_claims(|claims| {
            if let Some(c) = claims.get_mut(&self.db) {
                c.open.remove(&self.name);
            }
        });
    }
}

/// Marks the calling thread as the one in an hnswdb write transaction of a database; let go
/// when dropped.
pub(crate) struct WriterClaim {
    db: DatabaseId,
}

impl WriterClaim {
    /// Claims the writer's place in `db` for the calling thread: [`Error::WriteInProgress`] if
    /// this thread holds it already. Another thread holding it is no error: the caller's redb
    /// `begin_write` waits for that one to end.
    fn take(db: &Database) -> Result<WriterClaim> {
        let me = thread_tag();
        let id = id_of(db);
        with_claims(|claims| {
            let c = claims.entry(id).or_default();
            if c.writer == me {
                return Err(Error::WriteInProgress);
            }
            Ok(())
        })?;
        Ok(WriterClaim { db: id })
    }

    /// Records that the write transaction began (the caller now holds redb's writer lock).
    fn began(&self) {
        let me = thread_tag();
        with_claims(|claims| claims.entry(self.db).or_default().writer = me);
    }
}

impl Drop for WriterClaim {
    fn drop(&mut self) {
        let me = thread_tag();
        with_claims(|claims| {
            if let Some(c) = claims.get_mut(&self.db) {
                if c.writer == me {
                    c.writer = 0;
                }
            }
        });
    }
}

/// Begins a redb write transaction on `db` for hnswdb, with the claim that makes a second one
/// on this thread [`Error::WriteInProgress`] instead of a wait for itself. Keep the claim until
/// the transaction ends.
pub(crate) fn begin_write(db: &Database) -> Result<(WriteTransaction, WriterClaim)> {
    let claim = WriterClaim::take(db)?;
    let txn = store::guarded("write", || Ok(db.begin_write()?))?;
    claim.began();
    Ok((txn, claim))
}
