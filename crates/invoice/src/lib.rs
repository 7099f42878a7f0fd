//! BOLT 11 invoices (work in progress).
