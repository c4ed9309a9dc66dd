"""What proves, not what runs: the bounded model checker (`_checker/`), the core driver that
tests and golden traces use (`_driver.py`), and the lifecycle tables' contracts that CrossHair
checks (`_table_contracts.py`). Nothing here is imported by the core, the journal or the runtime
(spec/verification.md, LAYER-1)."""
