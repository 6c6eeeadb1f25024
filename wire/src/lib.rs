//! `nodus-wire`: placeholder, filled by the wire work of the foundation issue.
