"""The server config file and the TOML sections it shares with recording rules files."""
