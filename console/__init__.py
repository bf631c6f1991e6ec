"""The town-centre console: server-rendered pages for dispatchers and district admins."""
