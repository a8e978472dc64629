"""Turning rows from where the business keeps them (export files, the ERP database's change
events) into the events of DOMAIN.md §3."""
