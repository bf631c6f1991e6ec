"""Personal data kept only as long as it is needed (个人信息保护法 第十九条, 第四十七条):
an order's files removed some time after it ended, the audit log pruned after its years,
accounts closed by their resident (注销) or after long disuse. docs/operations.md says
what is kept, for how long, and why."""
