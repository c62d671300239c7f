//! Storage: the only place that names redb tables or rkyv types.

mod codec;
mod file;
mod schema;
mod tables;

pub(crate) use codec::{Header, NodeRecord};
pub(crate) use file::{
    begin_read, check_storage, copy_all, create_database, create_in_memory, delete_tables, guarded,
    has_other_tables, held, index_exists, index_names, init_tables, open_database, read_free_ids,
    read_header, rename_tables, table_bytes, update_free_ids, write_header, Db, PANIC_MARK,
    REDB_MAGIC,
};
pub(crate) use schema::{check_name, link_key, split_link_key, TableNames};
pub(crate) use tables::{ReadTables, Tables, WriteTables};
