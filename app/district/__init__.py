"""Setting up and inspecting a district: its regions as an admin changes them, and the
readiness figures (八有) an inspection asks for."""
