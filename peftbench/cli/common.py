"""What every command module shares. Stdlib only: importing the CLI must stay cheap."""

EPILOG = "Exit codes: 0 success, 1 a run failed (recorded), 2 usage or input error, 130 interrupted."
