"""Dispatch (派单): who handles a new order, agents' duty and leave, the town's board."""
