"""Tamper-evident audit trail: RFC 6962 Merkle tree, proofs and signed tree heads."""
