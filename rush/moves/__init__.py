"""The batch flow: the only code that moves or deletes media (apply, purge, recovery).

Why one package: every step that changes ARCHIVE/REJECTS on disk shares one lock, one
journal and one recovery.  The modules import one way only (docs/batch.md, "Modules"):
naming -> plan; journal, lock, xmp; apply and purge on those; recovery on apply and
purge; run (`exclusive_run`, `run_apply`, `run_purge`) on recovery; commands on run.
"""
