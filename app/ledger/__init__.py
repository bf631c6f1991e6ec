"""The ledger (台账): the town centre's figures, monthly workbooks, exports."""
