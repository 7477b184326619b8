"""The exchange log and what auditors verify (docs/audit.md)."""
