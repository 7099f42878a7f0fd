//! BOLT 4 onions (work in progress).
