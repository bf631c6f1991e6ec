"""HTTP for the mini-program: one router per role, msgspec request and response Structs."""
