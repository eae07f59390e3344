//! Prepared statements kept for UPDATEs whose SQL never varies.
//!
//! Diesel keeps a statement prepared only when it can tell that the query's SQL is the
//! same every time, and it never says so of an UPDATE: a changeset may leave out its
//! `None` fields. So every UPDATE was parsed and planned again, on SQLite by the one
//! writer thread that every worker's row waits for; that parsing was half the thread's
//! time. [`cached`] vouches for a statement instead, and Diesel keys the prepared
//! statement by its SQL text. Only for changesets without optional fields: setting a
//! column to `None::<T>` is written `col = NULL` (a bound value), never left out.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

/// `query`, whose SQL text is always the same, with its prepared statement kept.
pub fn cached<Q>(query: Q) -> Cached<Q> {
    Cached(query)
}

pub struct Cached<Q>(Q);

impl<Q, DB> QueryFragment<DB> for Cached<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// No static id: the statement cache then keys the statement by its SQL text.
impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// A statement that returns rows (`RETURNING`) still does.
impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for Cached<Q> {}
