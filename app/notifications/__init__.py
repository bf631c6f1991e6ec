"""Notifications: the outbox every change writes to, the inbox, WeChat delivery, reminders."""
