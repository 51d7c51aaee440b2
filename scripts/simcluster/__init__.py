"""Stand-ins for lainlet and backupd: real HTTP servers on loopback, used by the tests and the
local runner alike, with hooks to inject delay, errors, black-holing and restarts."""
